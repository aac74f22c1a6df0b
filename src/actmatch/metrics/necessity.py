"""Necessity (method.md §5): does removing the evidence change the decision?

The complement c = (1 − m) ⊙ x + m ⊙ b keeps everything but the explanation. Per image:
``flip`` = 1 when argmax f(c) ≠ y, ``drop`` = p_x(y) − p_c(y). (Deletion AUC, the graded
version, is in :mod:`actmatch.metrics.curves`.)
"""

from __future__ import annotations

import torch

from actmatch.core.masks import apply_mask
from actmatch.metrics.fidelity import Model, predict_proba

__all__ = ["complement_scores"]


def complement_scores(model: Model, x: torch.Tensor, masks: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 256, zx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``flip`` and ``drop`` ``(B,)`` on the complement of the hard mask; ``zx``: x's logits when already
    computed."""
    c = apply_mask(x, 1.0 - masks, baseline)
    px = (predict_proba(model, x, batch_size) if zx is None else zx.softmax(1)).gather(1, y[:, None])[:, 0]
    pc = predict_proba(model, c, batch_size)
    return {"flip": (pc.argmax(1) != y).float(), "drop": px - pc.gather(1, y[:, None])[:, 0]}
