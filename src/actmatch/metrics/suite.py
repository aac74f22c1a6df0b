"""Every metric of method.md §5 for one method's masks, as one per-image table.

:func:`score_masks` is what the evaluate stage calls for our regimes and for every baseline
alike, so all methods are judged by the same code under the same removal operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from actmatch.metrics.curves import auc, deletion_insertion, pixel_ranks
from actmatch.metrics.fidelity import activation_similarity, fidelity
from actmatch.metrics.localization import iou_with_boxes, pointing_game
from actmatch.metrics.minimality import BUDGETS, area, crispness, preservation, removable_patch
from actmatch.metrics.necessity import complement_scores
from actmatch.metrics.perturbation import sufficiency

__all__ = ["ScoreSettings", "score_masks", "METRICS"]

# The per-image columns, in table order (act_sim_<tap> columns follow act_sim).
METRICS = ("kept", "kl", "kl_norm", "conf_change", "p_ratio", "act_sim", "area", "crispness", "p_star", "removable",
           "flip", "drop", "suff_gaussian", "suff_uniform", "suff_other", "insertion_auc", "deletion_auc",
           "pointing", "iou")


@dataclass(frozen=True)
class ScoreSettings:
    """How the metrics are run. ``mean`` / ``std``: the classifier's normalization; given, the Gaussian
    and uniform sufficiency backgrounds of single-channel inputs are drawn in pixel space (see
    :mod:`actmatch.metrics.perturbation`); None keeps every draw in normalized space."""

    batch_size: int = 256
    curve_steps: int = 50
    perturb_draws: int = 5
    budgets: Sequence[float] = BUDGETS
    max_pieces: int = 16
    seed: int = 0  # tie order of pixel rankings and the perturbation draws
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@torch.no_grad()
def score_masks(model: nn.Module, taps: Sequence[str], x: torch.Tensor, y: torch.Tensor, soft: torch.Tensor,
                hard: torch.Tensor, baseline: torch.Tensor, blurred: torch.Tensor, cfg: ScoreSettings,
                boxes: torch.Tensor | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-image metrics (column → ``(B,)`` array) and the per-image deletion / insertion curves
    (``(B, curve_steps + 1)``) for hard masks ``hard`` and the soft maps ``soft`` that rank pixels.

    ``baseline`` is the removal fill (fidelity, p*, removable, necessity, deletion); ``blurred`` only the
    start of the insertion curve; ``boxes`` ``(B, 4)`` (x0, y0, x1, y1) add ``pointing`` and ``iou``."""
    bs = cfg.batch_size
    ranks = pixel_ranks(soft, cfg.seed)
    cols: dict[str, torch.Tensor] = {k: v for k, v in fidelity(model, x, hard, baseline, y, bs).items()}
    sim = activation_similarity(model, taps, x, hard, baseline, bs)
    cols["act_sim"] = sim.mean(1)
    cols.update({f"act_sim_{i}": sim[:, i] for i in range(sim.shape[1])})
    cols["area"], cols["crispness"] = area(hard), crispness(soft)
    cols.update(preservation(model, x, ranks, baseline, y, cfg.budgets, bs))  # p_star and kept@b, p_ratio@b
    cols["removable"] = removable_patch(model, x, hard, baseline, y, cfg.max_pieces, bs)
    cols.update(complement_scores(model, x, hard, baseline, y, bs))
    pixel_noise = x.shape[1] == 1 and cfg.mean is not None and cfg.std is not None
    suff = sufficiency(model, x, hard, y, draws=cfg.perturb_draws, seed=cfg.seed, batch_size=bs,
                       mean=cfg.mean if pixel_noise else None, std=cfg.std if pixel_noise else None)
    cols.update({f"suff_{k}": v for k, v in suff.items()})
    dele, ins = deletion_insertion(model, x, ranks, baseline, blurred, y, cfg.curve_steps, bs)
    cols["deletion_auc"], cols["insertion_auc"] = auc(dele), auc(ins)
    if boxes is not None:
        cols["pointing"], cols["iou"] = pointing_game(ranks, boxes), iou_with_boxes(hard, boxes)
    out = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in cols.items()}
    return out, {"deletion": dele.cpu().numpy(), "insertion": ins.cpu().numpy()}
