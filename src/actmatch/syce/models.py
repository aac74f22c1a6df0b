"""Generator and discriminator of the conditional-generator explanations (method.md §8.1).

Architectures follow Charachon et al.'s public Keras code (arXiv 2106.10947) as method.md §8.1
summarizes it:

- generator: a U-Net with filters 16-32-64; each level is two conv blocks
  (BatchNorm → ReLU → conv 3×3) with dropout 0.2 and a residual add of the level's input
  (projected by a 1×1 conv where the width changes); max-pool down, upsample + concat up;
  a 1×1 conv to the image channels; output clipped to [0, 1]. Images are in pixel space
  [0, 1], not the classifier's normalization.
- discriminator: strided 3×3 convs 32-64-96 with LeakyReLU(0.2), no normalization (WGAN-GP
  forbids batch norm in the critic), a dense layer to one logit.

``PerClass`` holds one network per class (the authors' binary setting: G_c and D_c per
predicted class c) and routes each sample to its own class's network. ``Conditioned`` is our
10-class extension: one network whose input carries the one-hot class as extra constant
channels (labelled as ours in method.md §8.1 and the report).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CEGenerator", "CEDiscriminator", "PerClass", "Conditioned", "Translator", "build_syce"]


class _Level(nn.Module):
    """``h = proj(x); h + body(h)``, body = 2 × (BN → ReLU → conv3×3) with dropout between."""

    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.body = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1),
                                  nn.Dropout2d(dropout), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return h + self.body(h)


class CEGenerator(nn.Module):
    """``(B, C_in, S, S)`` in [0, 1] (plus condition channels) → ``(B, C_out, S, S)`` in [0, 1].

    S must be divisible by 2 ** (len(widths) - 1) (28 px with 16-32-64: 28 → 14 → 7)."""

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, ...] = (16, 32, 64),
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_Level(cin, w, dropout))
            cin = w
        self.up = nn.ModuleList(_Level(widths[i + 1] + widths[i], widths[i], dropout)
                                for i in reversed(range(len(widths) - 1)))
        self.out = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for i, level in enumerate(self.down):
            if i:
                h = F.max_pool2d(h, 2)
            h = level(h)
            skips.append(h)
        for level, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = level(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.out(h).clamp(0.0, 1.0)


class CEDiscriminator(nn.Module):
    """``(B, C_in, S, S)`` → ``(B,)`` critic score (a WGAN critic: unbounded, no sigmoid)."""

    def __init__(self, in_channels: int, input_size: int, widths: tuple[int, ...] = (32, 64, 96)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, side = in_channels, input_size
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin, side = w, (side + 1) // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


class PerClass(nn.Module):
    """One network per class; sample i goes through ``nets[cls[i]]`` (the authors' G_c / D_c)."""

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        parts = []
        for k in torch.unique(cls).tolist():
            idx = (cls == k).nonzero(as_tuple=True)[0]
            parts.append((idx, self.nets[k](x[idx])))
        out = parts[0][1].new_zeros((len(x), *parts[0][1].shape[1:]))
        for idx, y in parts:
            out = out.index_put((idx,), y)  # out of place: autograd reaches every class's network
        return out


class Conditioned(nn.Module):
    """One network for all classes; the class enters as ``num_classes`` one-hot constant channels (ours)."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes = net, num_classes

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(cls, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.net(torch.cat([x, onehot], 1))


class Translator(nn.Module):
    """``G(x, c, t)``: moves class-c images to class t. ``by="source"`` routes by c (the authors'
    binary G_c, whose target is always 1 − c); ``by="target"`` conditions on t (our 10-class extension)."""

    def __init__(self, net: nn.Module, by: str) -> None:
        super().__init__()
        if by not in ("source", "target"):
            raise ValueError(f"by must be 'source' or 'target', got {by!r}")
        self.net, self.by = net, by

    def forward(self, x: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x, c if self.by == "source" else t)


def build_syce(kind: str, channels: int, size: int, num_classes: int, g_widths: tuple[int, ...],
             d_widths: tuple[int, ...], dropout: float) -> tuple[Translator, nn.Module]:
    """The generator and critic of a run. ``binary``: per class a G_c and a D_c (the authors'; needs
    ``num_classes == 2``); ``conditional``: one of each, the class as one-hot input channels (ours)."""
    if kind == "binary":
        if num_classes != 2:
            raise ValueError(f"the binary (authors') setting needs a 2-class classifier, got {num_classes} classes")
        gen = PerClass([CEGenerator(channels, channels, g_widths, dropout) for _ in range(2)])
        crit = PerClass([CEDiscriminator(channels, size, d_widths) for _ in range(2)])
        return Translator(gen, "source"), crit
    if kind == "conditional":
        gen = Conditioned(CEGenerator(channels + num_classes, channels, g_widths, dropout), num_classes)
        crit = Conditioned(CEDiscriminator(channels + num_classes, size, d_widths), num_classes)
        return Translator(gen, "target"), crit
    raise ValueError(f"kind must be 'binary' or 'conditional', got {kind!r}")
