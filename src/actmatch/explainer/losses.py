"""The loss terms of method.md §3, one function each, every one returning per-image values ``(B,)``.

Notation: z_x, z_e logits of the image and the explanation; y = argmax z_x; T the temperature;
p^T = softmax(z / T). Priors (``area``, ``bin``, ``tv``) act on the soft mask p; everything that
feeds the classifier uses the hard (STE) mask m.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from actmatch.classifiers.taps import as_positions

__all__ = ["ShardedGenerator", "DISTANCES", "activation_distance", "act_loss", "ce_loss", "kl_loss", "area_loss", "bin_loss", "tv_loss",
           "rob_backgrounds", "nec_loss", "tempered_kl"]

DISTANCES = ("cosine", "zmse", "kl")


def activation_distance(a_x: torch.Tensor, a_e: torch.Tensor, kind: str, eps: float = 1e-5) -> torch.Tensor:
    """d(φ(x), φ(e)) per image ``(B,)`` for conv maps ``(B, C, H, W)`` or tokens ``(B, N, C)``.

    ``cosine``: 1 − mean over positions of the cosine between channel vectors;
    ``zmse``: z-score each channel over positions, then mean squared error;
    ``kl``: KL(softmax_c(φ(x)) ‖ softmax_c(φ(e))) at each position, averaged over positions."""
    px, pe = as_positions(a_x), as_positions(a_e)  # (B, P, C)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(px, pe, dim=-1, eps=1e-8).mean(dim=1)
    if kind == "zmse":
        def z(a: torch.Tensor) -> torch.Tensor:
            return (a - a.mean(dim=1, keepdim=True)) / (a.std(dim=1, keepdim=True, unbiased=False) + eps)
        return (z(px) - z(pe)).pow(2).mean(dim=(1, 2))
    if kind == "kl":
        lx, le = F.log_softmax(px, dim=-1), F.log_softmax(pe, dim=-1)
        return (lx.exp() * (lx - le)).sum(dim=-1).mean(dim=1)
    raise ValueError(f"unknown activation distance {kind!r}; allowed: {', '.join(DISTANCES)}")


def act_loss(acts_x: Sequence[torch.Tensor], acts_e: Sequence[torch.Tensor], distances: Sequence[str],
             alphas: Sequence[float]) -> torch.Tensor:
    """Σ_ℓ α_ℓ d_ℓ(φ_ℓ(x), φ_ℓ(e)) over the tapped layers, per image ``(B,)``."""
    if not (len(acts_x) == len(acts_e) == len(distances) == len(alphas)):
        raise ValueError(f"act: {len(acts_x)} taps but {len(distances)} distances and {len(alphas)} alphas")
    return sum(a * activation_distance(ax, ae, d) for ax, ae, d, a in zip(acts_x, acts_e, distances, alphas))


def ce_loss(z_e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE(z_e, y) per image."""
    return F.cross_entropy(z_e, y, reduction="none")


def tempered_kl(z_x: torch.Tensor, z_e: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(p_x^T ‖ p_e^T) per image (Hinton et al.'s scaling keeps gradients comparable across T)."""
    lx = F.log_softmax(z_x / temperature, dim=-1)
    le = F.log_softmax(z_e / temperature, dim=-1)
    return temperature ** 2 * (lx.exp() * (lx - le)).sum(dim=-1)


kl_loss = tempered_kl


def area_loss(p: torch.Tensor) -> torch.Tensor:
    """mean(p) per image; p is the soft mask ``(B, 1, H, W)``."""
    return p.mean(dim=(1, 2, 3))


def bin_loss(p: torch.Tensor) -> torch.Tensor:
    """mean(p (1 − p)) per image: 0 for a binary mask, 0.25 for p = 0.5 everywhere."""
    return (p * (1.0 - p)).mean(dim=(1, 2, 3))


def tv_loss(p: torch.Tensor, neighbours: int = 8) -> torch.Tensor:
    """Total variation of the soft mask per image. 4-neighbour: mean|Δv| + mean|Δh|; 8-neighbour adds
    (mean|Δdiag| + mean|Δanti|)/√2."""
    if neighbours not in (4, 8):
        raise ValueError(f"tv neighbours must be 4 or 8, got {neighbours}")
    dims = (1, 2, 3)
    tv = (p[..., 1:, :] - p[..., :-1, :]).abs().mean(dim=dims) + (p[..., :, 1:] - p[..., :, :-1]).abs().mean(dim=dims)
    if neighbours == 8:
        diag = (p[..., 1:, 1:] - p[..., :-1, :-1]).abs().mean(dim=dims)
        anti = (p[..., 1:, :-1] - p[..., :-1, 1:]).abs().mean(dim=dims)
        tv = tv + (diag + anti) / math.sqrt(2.0)
    return tv


@dataclass(frozen=True)
class ShardedGenerator:
    """A generator shared by data-parallel ranks: every rank draws the noise of the whole global
    batch (``global_batch`` rows) and keeps its ``rows``, so the backgrounds equal one process's."""

    generator: torch.Generator
    global_batch: int
    rows: slice


def rob_backgrounds(x: torch.Tensor, kinds: Sequence[str],
                    generator: torch.Generator | Sequence[torch.Generator] | ShardedGenerator | None
                    ) -> list[torch.Tensor]:
    """Replacement backgrounds r in normalized space: ``zero`` (0), ``gaussian`` N(0, 1), ``uniform`` U(−1, 1).
    With one generator per image (the batched per-image regime), image i's noise comes from its own."""
    def draw(fn) -> torch.Tensor:
        if isinstance(generator, ShardedGenerator):
            full = fn((generator.global_batch, *x.shape[1:]), generator=generator.generator, device="cpu")
            return full[generator.rows].to(x)
        if isinstance(generator, Sequence):
            if len(generator) != x.shape[0]:
                raise ValueError(f"{len(generator)} generators for {x.shape[0]} images")
            return torch.cat([fn(x[i:i + 1].shape, generator=g, device="cpu") for i, g in enumerate(generator)]).to(x)
        return fn(x.shape, generator=generator, device="cpu").to(x)

    out = []
    for kind in kinds:
        if kind == "zero":
            out.append(torch.zeros_like(x))
        elif kind == "gaussian":
            out.append(draw(torch.randn))
        elif kind == "uniform":
            out.append(draw(torch.rand) * 2.0 - 1.0)
        else:
            raise ValueError(f"unknown rob background {kind!r}; allowed: zero, gaussian, uniform")
    return out


def nec_loss(z_x: torch.Tensor, z_c: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, margin − (z_x[y] − z_c[y])) per image: the complement c must lose at least ``margin``
    of the label's logit (abductive necessity)."""
    drop = z_x.gather(1, y[:, None])[:, 0] - z_c.gather(1, y[:, None])[:, 0]
    return F.relu(margin - drop)
