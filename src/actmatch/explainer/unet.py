"""The mask network and the mask operations (method.md §2).

U-Net: DoubleConv blocks (conv3x3-ReLU-conv3x3-ReLU, no BatchNorm), max-pool down,
ConvTranspose 2×2 up, skip concatenation, 1×1 conv to one logit channel. The paper's net for
224 px has widths 32-64-128-256 and a 512 bottleneck; depth and widths are parameters.

Deviation, stated (method.md §9), and an option: with ``init_area`` the 1×1 head's bias starts at
``logit(init_area)``, so that the first soft mask is ≈ ``init_area`` everywhere rather than a flat
0.5 whose hard threshold is decided by noise. ``init_area = None`` keeps PyTorch's default (random)
bias, the authors' code: then the first hard mask is decided by the initial weights.

A second option, ours: ``grid`` K > 1 gives the mask one free value per K×K cell (the head's logits
averaged over each cell, ``ceil_mode``, and upsampled bilinearly back to H×W), a coarser mask that the
photo probes tried (docs/results.md); K = 1, the default, is the per-pixel mask, computed as before.

``padding``: how the 3×3 convolutions pad (``zeros``, the default and the authors' code; ``reflect``,
``replicate``). Zero padding tells the net where the border is: on a flat image its logits differ from the
interior's only along the border (tools/border_probe.py), so when the classifier gives the mask nothing to
follow, an area constraint is met with a border strip (issue 29). The photo run uses ``reflect``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "PADDINGS"]

PADDINGS = ("zeros", "reflect", "replicate")


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, padding_mode: str = "zeros") -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, padding_mode=padding_mode), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Maps an image ``(B, C, H, W)`` (any H, W) to mask logits ``(B, 1, H, W)``."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (32, 64, 128, 256), bottleneck: int = 512,
                 init_area: float | None = None, padding: str = "zeros", grid: int = 1) -> None:
        super().__init__()
        if grid < 1:
            raise ValueError(f"grid must be >= 1, got {grid}")
        self.grid = grid
        if not widths:
            raise ValueError("widths must name at least one level")
        if init_area is not None and not 0.0 < init_area < 1.0:
            raise ValueError(f"init_area must be in (0, 1), got {init_area}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        self.depth = len(widths)
        self.downs = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.downs.append(DoubleConv(cin, w, padding))
            cin = w
        self.bottleneck = DoubleConv(cin, bottleneck, padding)
        self.ups = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        cin = bottleneck
        for w in reversed(widths):
            self.ups.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.up_convs.append(DoubleConv(2 * w, w, padding))
            cin = w
        self.head = nn.Conv2d(cin, 1, 1)
        if init_area is not None:
            nn.init.constant_(self.head.bias, math.log(init_area / (1.0 - init_area)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        k = 2 ** self.depth
        ph, pw = (-h) % k, (-w) % k
        if ph or pw:  # pad to a multiple of 2^depth, crop back at the end
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, conv, skip in zip(self.ups, self.up_convs, reversed(skips)):
            x = conv(torch.cat([up(x), skip], dim=1))
        z = self.head(x)[..., :h, :w]
        if self.grid > 1:
            z = F.interpolate(F.avg_pool2d(z, self.grid, ceil_mode=True), size=(h, w), mode="bilinear",
                              align_corners=False)
        return z
