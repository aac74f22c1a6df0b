"""Mask operations shared by every method and metric (method.md §2): soft and hard masks, what a
removed pixel becomes (the fill), and the masked image e = m ⊙ x + (1 − m) ⊙ baseline."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from actmatch.core.fills import FILLS

__all__ = ["FILLS", "soft_mask", "hard_mask", "fill_values", "apply_mask", "ranking_gap"]


def soft_mask(logits: torch.Tensor) -> torch.Tensor:
    """p = sigmoid(logits), in [0, 1], same shape."""
    return torch.sigmoid(logits)


def hard_mask(p: torch.Tensor, ste: bool = True) -> torch.Tensor:
    """Binary mask at 0.5. With ``ste`` the gradient passes straight through to ``p``:
    ``m = p + ((p > 0.5) - p).detach()``; without it the result is a constant (no gradient)."""
    hard = (p > 0.5).to(p.dtype)
    return p + (hard - p).detach() if ste else hard.detach()


def fill_values(x: torch.Tensor, fill: str, mean: Sequence[float], std: Sequence[float],
                blur_sigma: float = 10.0) -> torch.Tensor:
    """What a removed pixel becomes, in the classifier's normalized space, shape like ``x``.

    ``normalized_zero``: 0, i.e. the dataset mean colour (the paper's code); ``black``: pixel
    value 0; ``blur``: a Gaussian blur of ``x`` (σ = ``blur_sigma`` px); ``mean``: the image's own
    mean colour."""
    if fill == "normalized_zero":
        return torch.zeros_like(x)
    if fill == "black":
        m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return ((0.0 - m) / s).expand_as(x).clone()
    if fill == "blur":
        from torchvision.transforms.v2.functional import gaussian_blur
        k = int(2 * round(3 * blur_sigma) + 1)
        return gaussian_blur(x, [k, k], [blur_sigma, blur_sigma])
    if fill == "mean":
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x).clone()
    raise ValueError(f"unknown fill {fill!r}; allowed: {', '.join(FILLS)}")


def apply_mask(x: torch.Tensor, m: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """e = m ⊙ x + (1 − m) ⊙ baseline; ``m`` is ``(B, 1, H, W)`` and broadcasts over channels."""
    return m * x + (1.0 - m) * baseline


def ranking_gap(m: torch.Tensor, areas: torch.Tensor | float) -> torch.Tensor:
    """Fong, Patrick, Vedaldi 2019's area constraint, per image ``(B,)``: mean((sort(m) − r_a)²) over the
    pixels of ``m`` ``(B, 1, H, W)``, r_a the ascending reference whose last round(a·H·W) entries are 1 and
    the rest 0; ``areas`` a per-image ``(B,)`` tensor or one float. Zero exactly for a binary mask of area a.
    (The extremal-perturbation baselines and our explainer's target-area mode use this one definition.)"""
    flat = m.flatten(1)
    n = flat.shape[1]
    a = torch.as_tensor(areas, dtype=torch.float64, device=m.device).reshape(-1)
    k = torch.round(a * n).long().expand(flat.shape[0])
    reference = (torch.arange(n, device=m.device)[None] >= (n - k)[:, None]).to(flat.dtype)
    return (flat.sort(dim=1).values - reference).pow(2).mean(dim=1)
