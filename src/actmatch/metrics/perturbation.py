"""Sufficiency under perturbation (method.md §5): the kept pixels alone must carry the decision
whatever surrounds them. Label kept on m ⊙ x + (1 − m) ⊙ r for backgrounds r:

* ``gaussian``: N(0, 1) in the classifier's normalized space (the data mean ± one std), or, when the
  classifier's ``mean`` and ``std`` are given, N(0.5, 0.25²) in pixel space clipped to [0, 1];
* ``uniform``: U(−1, 1) in normalized space, or U(0, 1) in pixel space when ``mean`` and ``std`` are given;
* ``other``: another evaluated image whose target label differs (NaN for an image when every
  evaluated image has its label, e.g. a single image).

Pixel-space noise is then normalized like an image, (r − mean) / std. Our choice, stated: method.md §5
names the noise kinds but not their space. In normalized space an RGB background is already pixel noise
around the data mean, but on single-channel MNIST-like data (mean ≈ 0.13, std ≈ 0.31) N(0, 1) is
0.13 ± 0.31 in pixels, a third of it darker than black paper, and U(−1, 1) likewise: a trained classifier
maps such backgrounds to one class whatever the kept pixels show, so the test could not discriminate.
:func:`actmatch.metrics.suite.score_masks` therefore passes ``mean`` / ``std`` for single-channel inputs
only (RGB numbers are unchanged).

``draws`` backgrounds of each kind per image, from one seeded generator (the pixel-space draws consume
it exactly like the normalized ones); the score per image and kind is the share of draws on which f
keeps ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from actmatch.core.masks import apply_mask
from actmatch.metrics.fidelity import Model, predict_logits

__all__ = ["sufficiency", "KINDS"]

KINDS = ("gaussian", "uniform", "other")


def _normalize(r: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=r.dtype).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=r.dtype).view(1, -1, 1, 1)
    return (r - m) / s


def _background(kind: str, x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
                norm: tuple[Sequence[float], Sequence[float]] | None = None) -> torch.Tensor:
    """One background per image, normalized; ``norm`` = (mean, std) draws the noise kinds in pixel space.
    For ``other``, images without a differently-labelled partner get NaN."""
    if kind == "gaussian":
        r = torch.randn(x.shape, generator=g)
        return (r if norm is None else _normalize((0.5 + 0.25 * r).clamp(0.0, 1.0), *norm)).to(x)
    if kind == "uniform":
        r = torch.rand(x.shape, generator=g)
        return (r * 2.0 - 1.0 if norm is None else _normalize(r, *norm)).to(x)
    if kind == "other":
        ycpu = y.cpu()
        out = torch.full_like(x, float("nan"))
        for i in range(len(x)):
            pool = torch.nonzero(ycpu != ycpu[i])[:, 0]
            if len(pool):
                out[i] = x[int(pool[torch.randint(len(pool), (1,), generator=g)])]
        return out
    raise ValueError(f"unknown background {kind!r}; allowed: {', '.join(KINDS)}")


def sufficiency(model: Model, x: torch.Tensor, masks: torch.Tensor, y: torch.Tensor, kinds: Sequence[str] = KINDS,
                draws: int = 5, seed: int = 0, batch_size: int = 256, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """Per kind, the share of ``draws`` on which the label is kept ``(B,)`` (NaN where undefined).
    ``mean`` and ``std`` (the classifier's, one value per channel): draw the Gaussian and uniform
    backgrounds in pixel space [0, 1] and normalize them; without them, draw in normalized space."""
    if (mean is None) != (std is None):
        raise ValueError("sufficiency: give both mean and std (pixel-space noise) or neither (normalized space)")
    norm = None if mean is None else (tuple(mean), tuple(std))
    if norm is not None and not (len(norm[0]) == len(norm[1]) == x.shape[1]):
        raise ValueError(f"sufficiency: mean {norm[0]} and std {norm[1]} need one value per channel ({x.shape[1]})")
    g = torch.Generator().manual_seed(seed)
    out = {}
    for kind in kinds:
        kept = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for _ in range(draws):
            r = _background(kind, x, y, g, norm)
            undefined = r.flatten(1).isnan().any(1)
            e = apply_mask(x, masks, torch.nan_to_num(r))
            kept += (predict_logits(model, e, batch_size).argmax(1) == y).to(x.dtype)
        out[kind] = torch.where(undefined, torch.full_like(kept, float("nan")), kept / draws)
    return out
