"""Sufficiency under perturbation (method.md §5): the kept pixels alone must carry the decision
whatever surrounds them. Label kept on m ⊙ x + (1 − m) ⊙ r for backgrounds r:

* ``gaussian``: N(0, 1) in the classifier's normalized space (the data mean ± one std);
* ``uniform``: U(−1, 1) in normalized space;
* ``other``: another evaluated image whose target label differs (NaN for an image when every
  evaluated image has its label, e.g. a single image).

``draws`` backgrounds of each kind per image, from a seeded generator; the score per image and
kind is the share of draws on which f keeps ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from actmatch.core.masks import apply_mask
from actmatch.metrics.fidelity import Model, predict_logits

__all__ = ["sufficiency", "KINDS"]

KINDS = ("gaussian", "uniform", "other")


def _background(kind: str, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One background per image; for ``other``, images without a differently-labelled partner get NaN."""
    if kind == "gaussian":
        return torch.randn(x.shape, generator=g).to(x)
    if kind == "uniform":
        return (torch.rand(x.shape, generator=g) * 2.0 - 1.0).to(x)
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
                draws: int = 5, seed: int = 0, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Per kind, the share of ``draws`` on which the label is kept ``(B,)`` (NaN where undefined)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for kind in kinds:
        kept = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for _ in range(draws):
            r = _background(kind, x, y, g)
            undefined = r.flatten(1).isnan().any(1)
            e = apply_mask(x, masks, torch.nan_to_num(r))
            kept += (predict_logits(model, e, batch_size).argmax(1) == y).to(x.dtype)
        out[kind] = torch.where(undefined, torch.full_like(kept, float("nan")), kept / draws)
    return out
