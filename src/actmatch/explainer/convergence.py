"""A convergence mark per run (issue 27): did an explainer run end with a decided mask and a settled
objective? A run that did not is marked ``not converged`` in its table row and left out of claims.

Two tests, our reading rules (stated here and in docs/results.md):

* **undecided**: the final soft mask's mean p(1 − p) over images and pixels (the ``bin`` term,
  :func:`~actmatch.explainer.losses.bin_loss`: 0 for a binary mask, 0.25 for p = 0.5 everywhere) is
  within :data:`BAND` (5 %) of 0.25, i.e. ≥ 0.2375: the hard mask is the sign of noise around 0.5;
* **still moving**: the mean objective over the last :data:`WINDOW` (10 %) of the logged points (steps of
  a per-image regime, averaged over images; epochs of an amortized one) differs from its mean over the
  10 % before by more than :data:`MOVING` (5 %) of the latter. With fewer than two points the objective
  is not judged.

The explain stages write the verdict of each regime into the seed folder (``convergence.json``);
its content depends only on the run's numbers (no wall time), so an unchanged run rewrites it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["UNDECIDED", "BAND", "WINDOW", "MOVING", "verdict"]

UNDECIDED = 0.25  # mean p(1 - p) of a soft mask at 0.5 everywhere
BAND = 0.05       # within 5 % of it: undecided
WINDOW = 0.10     # the objective's last 10 % of points against the 10 % before
MOVING = 0.05     # relative change above 5 %: still moving


def verdict(final_soft: torch.Tensor, total: Sequence[float]) -> dict[str, float | int | bool | None]:
    """The convergence verdict of one run from its final soft masks ``(N, 1, H, W)`` in [0, 1] and the
    objective's logged curve ``total`` (one mean per step or epoch): ``final_bin``, ``objective_change``
    (None when not judged), ``points``, ``undecided``, ``moving``, ``converged``."""
    p = final_soft.detach().double()
    final_bin = float((p * (1.0 - p)).mean()) if p.numel() else float("nan")
    t = np.asarray(total, dtype=np.float64)
    k = max(1, int(round(WINDOW * len(t))))
    change = None
    if len(t) >= 2 * k:
        last, prev = float(t[-k:].mean()), float(t[-2 * k:-k].mean())
        change = abs(last - prev) / max(abs(prev), 1e-12)
    undecided = bool(math.isfinite(final_bin) and final_bin >= UNDECIDED * (1.0 - BAND))
    moving = bool(change is not None and change > MOVING)
    return {"final_bin": round(final_bin, 6), "objective_change": None if change is None else round(change, 6),
            "points": int(len(t)), "undecided": undecided, "moving": moving, "converged": not (undecided or moving)}
