"""The twin surrogate of our GLANCE reconstruction (Kori, Glocker, Toni, arXiv 2207.01917;
method.md §8.2). Only the abstract is public in detail, so every piece here is ours, after it:

- an **encoder** from the frozen classifier's penultimate features (the input of its last linear
  layer) to z = [aligned dims, one per context feature; free dims];
- a small **style-modulated generator** (StyleGAN2-style weight modulation and demodulation,
  Karras et al. 2020): a mapping MLP z → w, a learned 7×7 constant, modulated 3×3 convolutions at
  7, 14 and 28 px with per-pixel noise, a modulated 1×1 convolution to the image, sigmoid to [0, 1];
- a **discriminator** (strided convolutions, a linear logit) with the R1 penalty (Mescheder et
  al. 2018) on real images.

Losses, one function each (weights in params): L1 reconstruction; feature matching (MSE) of the
classifier's activations at a tapped layer; KL between the classifier's softmax on x and on the
reconstruction at temperature T (× T²); non-saturating GAN; alignment MSE between the aligned
dims and the standardized context features; decorrelation of z (mean squared off-diagonal
correlation over the batch). Written here: no maintained package ships a modulated-conv
generator small enough for 28-px digits without its training framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["penultimate", "Encoder", "ModulatedConv2d", "StyleGenerator", "Discriminator", "SurrogateWeights",
           "l1_reconstruction", "feature_matching", "logit_kl", "gan_generator", "gan_discriminator", "r1_penalty",
           "alignment", "decorrelation"]


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear layer; its penultimate features are undefined")
    return linears[-1]


def penultimate(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The input of ``model``'s last linear layer (flattened, ``(B, F)``) and the logits, one forward."""
    seen: list[torch.Tensor] = []
    handle = _last_linear(model).register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return seen[-1].flatten(1), logits


class Encoder(nn.Module):
    """Penultimate features ``(B, F)`` → z ``(B, aligned + free)``; the first ``aligned`` dims are the
    ones aligned with the context features."""

    def __init__(self, in_features: int, aligned: int, free: int, hidden: int = 128) -> None:
        super().__init__()
        self.aligned, self.free = aligned, free
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, aligned + free))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: the weight scaled per input channel by an affine map of w,
    then (``demodulate``) renormalized per output channel; one grouped convolution for the batch."""

    def __init__(self, cin: int, cout: int, kernel: int, style_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.affine = nn.Linear(style_dim, cin)
        nn.init.zeros_(self.affine.weight)
        nn.init.ones_(self.affine.bias)  # starts as an ordinary convolution
        self.demodulate, self.pad = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, cin, h, wd = x.shape
        s = self.affine(w)                                              # (B, Cin)
        weight = self.weight[None] * s[:, None, :, None, None]          # (B, Cout, Cin, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        cout, k = weight.shape[1], weight.shape[-1]
        out = F.conv2d(x.reshape(1, b * cin, h, wd), weight.reshape(b * cout, cin, k, k), padding=self.pad, groups=b)
        return out.reshape(b, cout, h, wd) + self.bias.view(1, -1, 1, 1)


class StyleGenerator(nn.Module):
    """z ``(B, latent)`` → image ``(B, C, S, S)`` in [0, 1]; S divisible by 4 (28: 7 → 14 → 28)."""

    def __init__(self, latent: int, channels: int = 1, size: int = 28, width: int = 64, style_dim: int = 64) -> None:
        super().__init__()
        if size % 4:
            raise ValueError(f"generator size must be divisible by 4, got {size}")
        base = size // 4
        self.mapping = nn.Sequential(nn.Linear(latent, style_dim), nn.LeakyReLU(0.2), nn.Linear(style_dim, style_dim),
                                     nn.LeakyReLU(0.2))
        self.const = nn.Parameter(torch.randn(1, width, base, base))
        widths = [width, width, max(width // 2, 1), max(width // 4, 1)]
        self.convs = nn.ModuleList(ModulatedConv2d(widths[i], widths[i + 1], 3, style_dim) for i in range(3))
        self.noise_scale = nn.ParameterList(nn.Parameter(torch.zeros(1, widths[i + 1], 1, 1)) for i in range(3))
        self.to_img = ModulatedConv2d(widths[-1], channels, 1, style_dim, demodulate=False)

    def forward(self, z: torch.Tensor, noise: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        w = self.mapping(z)
        x = self.const.expand(len(z), -1, -1, -1)
        for i, (conv, scale) in enumerate(zip(self.convs, self.noise_scale)):
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = conv(x, w)
            if noise:
                n = torch.randn(len(x), 1, *x.shape[-2:], generator=generator, device="cpu").to(x)
                x = x + scale * n
            x = F.leaky_relu(x, 0.2)
        return torch.sigmoid(self.to_img(x, w))


class Discriminator(nn.Module):
    """Image ``(B, C, S, S)`` → one logit per image (S divisible by 4)."""

    def __init__(self, channels: int = 1, size: int = 28, widths: tuple[int, int] = (32, 64)) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(widths[0], widths[1], 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(widths[1] * (size // 4) ** 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


@dataclass(frozen=True)
class SurrogateWeights:
    rec: float
    feat: float
    kl: float
    gan: float
    align: float
    decor: float
    r1: float            # the R1 penalty's weight (γ/2 in Mescheder et al.'s notation)
    temperature: float


def l1_reconstruction(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel difference."""
    return (x_hat - x).abs().mean()


def feature_matching(a_hat: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """MSE between the classifier's activations on the reconstruction and on the input."""
    return F.mse_loss(a_hat, a)


def logit_kl(logits_x: torch.Tensor, logits_hat: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · mean over images of KL(softmax(l_x / T) ‖ softmax(l_hat / T))."""
    p_log = F.log_softmax(logits_x / temperature, 1)
    q_log = F.log_softmax(logits_hat / temperature, 1)
    return temperature ** 2 * (p_log.exp() * (p_log - q_log)).sum(1).mean()


def gan_generator(d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: mean softplus(−D(x̂))."""
    return F.softplus(-d_fake).mean()


def gan_discriminator(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """mean softplus(−D(x)) + mean softplus(D(x̂))."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def r1_penalty(D: nn.Module, x_real: torch.Tensor) -> torch.Tensor:
    """mean over images of ‖∇_x D(x)‖² on real images (multiply by the weight γ/2)."""
    x = x_real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def alignment(z_aligned: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """MSE between the aligned dims ``(B, A)`` and the standardized context features ``(B, A)``."""
    return F.mse_loss(z_aligned, context)


def decorrelation(z: torch.Tensor) -> torch.Tensor:
    """Mean squared off-diagonal Pearson correlation of z's dims over the batch (0 when uncorrelated)."""
    zc = z - z.mean(0, keepdim=True)
    cov = zc.T @ zc
    d = torch.sqrt(torch.diagonal(cov).clamp_min(1e-12))
    corr = cov / (d[:, None] * d[None, :])
    k = z.shape[1]
    off = corr - torch.diag(torch.diagonal(corr))
    return off.pow(2).sum() / max(k * (k - 1), 1)
