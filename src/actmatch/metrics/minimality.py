"""Minimality (method.md §5): how little of the image the explanation keeps.

* area = mean(m) of the hard mask;
* crispness = mean p(1 − p) of the soft mask before thresholding (0 = binary, 0.25 = flat 0.5);
* minimal sufficient budget p* = the smallest fraction in ``budgets`` at which the top-ranked
  pixels of the soft map alone still keep the label (1.0 when none does);
* the preservation curve: at each budget b, whether the top-b pixels of the soft map keep the label
  (``kept@b``) and how much of its probability (``p_ratio@b`` = p_e(y) / p_x(y)): every method ranks
  pixels, so the curve compares them at 1–20 % of the pixels whatever area each chose (issue 19);
* removable-patch test: 1 when the hard mask keeps the label and some 8-connected piece of it can
  be dropped with the label still kept — i.e. a sufficient mask that was not minimal. A mask that does
  not keep the label is never "removable" (dropping a piece that carried counter-evidence could restore
  the label, but that says the mask was wrong, not too large). To bound the cost, only the
  ``max_pieces`` smallest pieces of each mask are tried (small pieces are the likeliest to be
  removable); a mask with no piece scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from actmatch.core.masks import apply_mask
from actmatch.metrics.curves import top_fraction_masks
from actmatch.metrics.fidelity import Model, predict_logits

__all__ = ["area", "crispness", "minimal_budget", "preservation", "removable_patch", "BUDGETS"]

BUDGETS = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01)


def area(masks: torch.Tensor) -> torch.Tensor:
    """Fraction of kept pixels ``(B,)``."""
    return masks.float().mean((1, 2, 3))


def crispness(soft: torch.Tensor) -> torch.Tensor:
    """mean p(1 − p) ``(B,)``; lower is crisper."""
    return (soft * (1.0 - soft)).mean((1, 2, 3))


def minimal_budget(model: Model, x: torch.Tensor, ranks: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
                   budgets: Sequence[float] = BUDGETS, batch_size: int = 256) -> torch.Tensor:
    """p* ``(B,)``: the smallest budget whose top-ranked pixels keep label ``y``; 1.0 if none does."""
    best = torch.ones(len(x), dtype=x.dtype, device=x.device)
    for b in budgets:
        e = apply_mask(x, top_fraction_masks(ranks, b), baseline)
        kept = predict_logits(model, e, batch_size).argmax(1) == y
        best = torch.where(kept, torch.minimum(best, torch.full_like(best, b)), best)
    return best


def preservation(model: Model, x: torch.Tensor, ranks: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
                 budgets: Sequence[float] = BUDGETS, batch_size: int = 256,
                 zx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per budget b: ``kept@b`` (1.0 when the top-b pixels of the ranking keep ``y``) and ``p_ratio@b``
    (p_e(y) / p_x(y)), each ``(B,)``, and ``p_star`` (as :func:`minimal_budget`), from one forward pass
    per budget. ``zx``: x's logits when already computed."""
    zx = predict_logits(model, x, batch_size) if zx is None else zx
    px = zx.softmax(1).gather(1, y[:, None])[:, 0]
    out: dict[str, torch.Tensor] = {}
    best = torch.ones(len(x), dtype=x.dtype, device=x.device)
    for b in budgets:
        z = predict_logits(model, apply_mask(x, top_fraction_masks(ranks, b), baseline), batch_size)
        kept = z.argmax(1) == y
        out[f"kept@{b:g}"] = kept.to(x.dtype)
        out[f"p_ratio@{b:g}"] = z.softmax(1).gather(1, y[:, None])[:, 0] / px
        best = torch.where(kept, torch.minimum(best, torch.full_like(best, b)), best)
    out["p_star"] = best
    return out


def _pieces(mask: np.ndarray, max_pieces: int) -> list[np.ndarray]:
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = np.argsort(sizes, kind="stable")[:max_pieces] + 1
    return [labels == k for k in keep]


def removable_patch(model: Model, x: torch.Tensor, masks: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
                    max_pieces: int = 16, batch_size: int = 256) -> torch.Tensor:
    """1.0 per image ``(B,)`` when the hard mask keeps ``y`` and so does the mask without one of its
    8-connected pieces; 0.0 otherwise (also for a mask that does not keep ``y``, or has no piece)."""
    out = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    hard = masks[:, 0].detach().cpu().numpy() > 0.5
    for i in range(len(x)):
        pieces = _pieces(hard[i], max_pieces)
        if not pieces:
            continue
        piece = torch.from_numpy(np.stack(pieces)).to(x)[:, None]         # (P, 1, H, W)
        m = masks[i:i + 1] * torch.cat([torch.ones_like(piece[:1]), 1.0 - piece])  # the whole mask, then one piece less
        e = apply_mask(x[i:i + 1].expand(len(m), -1, -1, -1), m, baseline[i:i + 1].expand(len(m), -1, -1, -1))
        kept = predict_logits(model, e, batch_size).argmax(1) == y[i]
        out[i] = float(bool(kept[0]) and bool(kept[1:].any()))
    return out
