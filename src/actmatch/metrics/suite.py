"""Every metric of method.md §5 for one method's masks, as one per-image table.

:func:`score_masks` is what the evaluate stage calls for our regimes and for every baseline
alike, so all methods are judged by the same code under the same removal operator. It has two halves
(issue 27): :func:`score_soft`, the metrics that depend only on the soft map's ranking (preservation
curve and p*, insertion / deletion, crispness, pointing), computed once per map, and :func:`score_hard`,
the metrics of one hard mask (fidelity and kept, p_ratio, act_sim, area, removable, complement flip,
sufficiency, IoU), computed once per binarization, so a baseline's map is ranked once and binarized at
each seed's areas. The unmasked images' forward pass (logits and tapped activations) is computed once
(:func:`clean_pass`) and read by every metric that needs f(x): the values are the same, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from actmatch.metrics.curves import auc, deletion_insertion, pixel_ranks
from actmatch.metrics.fidelity import IMAGE_COLUMNS, activation_similarity, clean_forward, fidelity
from actmatch.metrics.localization import iou_with_boxes, pointing_game
from actmatch.metrics.minimality import BUDGETS, area, crispness, preservation, removable_patch
from actmatch.metrics.necessity import complement_scores
from actmatch.metrics.perturbation import sufficiency

__all__ = ["ScoreSettings", "Clean", "clean_pass", "score_masks", "score_soft", "score_hard", "combine", "METRICS",
           "IMAGE_COLUMNS", "KEY_COLUMNS", "RAW_COLUMNS", "metric_columns"]

# The per-image columns, in table order (act_sim_<tap> columns follow act_sim).
METRICS = ("kept", "kl", "kl_norm", "conf_change", "p_ratio", "act_sim", "area", "crispness", "p_star", "removable",
           "flip", "drop", "suff_gaussian", "suff_uniform", "suff_other", "insertion_auc", "deletion_auc",
           "pointing", "iou")
KEY_COLUMNS = ("method", "seed", "id")  # which row a value belongs to
RAW_COLUMNS = ("p_e",)  # p_e(y) per image, read through p_ratio and conf_change; never averaged on its own
_HARD_TAIL = ("removable", "flip", "drop", "suff_gaussian", "suff_uniform", "suff_other")
_SOFT_TAIL = ("deletion_auc", "insertion_auc", "pointing")


def metric_columns(columns: Iterable[str]) -> list[str]:
    """The columns of a per-image table that are a method's metrics (averaged over images and seeds):
    all but the row keys, :data:`IMAGE_COLUMNS` (properties of the image and the classifier, not of a
    mask) and :data:`RAW_COLUMNS`. The evaluate and ablate summaries both use it."""
    skip = set(KEY_COLUMNS) | set(IMAGE_COLUMNS) | set(RAW_COLUMNS)
    return [c for c in columns if c not in skip]


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


@dataclass(frozen=True)
class Clean:
    """f(x) of the images being scored, computed once: logits ``(B, K)`` and each tap's activations
    flattened ``(B, D_t)`` (:func:`~actmatch.metrics.fidelity.clean_forward`)."""

    logits: torch.Tensor
    acts: list[torch.Tensor]


def clean_pass(model: nn.Module, taps: Sequence[str], x: torch.Tensor, cfg: ScoreSettings) -> Clean:
    """The unmasked images' forward pass, in the scoring's chunks of ``cfg.batch_size`` (so every value is
    bit for bit the one each metric would compute itself on the same ``x``)."""
    return Clean(*clean_forward(model, taps, x, cfg.batch_size))


def _numpy(cols: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in cols.items()}


@torch.no_grad()
def score_soft(model: nn.Module, x: torch.Tensor, y: torch.Tensor, soft: torch.Tensor, baseline: torch.Tensor,
               blurred: torch.Tensor, cfg: ScoreSettings, clean: Clean | None = None,
               boxes: torch.Tensor | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The metrics of the soft map's ranking, per image: ``crispness``, the preservation curve (``kept@b``,
    ``p_ratio@b``) and ``p_star``, ``deletion_auc`` / ``insertion_auc`` with their curves
    ``(B, curve_steps + 1)``, and with ``boxes`` ``pointing``. None depends on a binarization."""
    bs = cfg.batch_size
    ranks = pixel_ranks(soft, cfg.seed)
    cols: dict[str, torch.Tensor] = {"crispness": crispness(soft)}
    cols.update(preservation(model, x, ranks, baseline, y, cfg.budgets, bs,
                             zx=None if clean is None else clean.logits))  # p_star and kept@b, p_ratio@b
    dele, ins = deletion_insertion(model, x, ranks, baseline, blurred, y, cfg.curve_steps, bs)
    cols["deletion_auc"], cols["insertion_auc"] = auc(dele), auc(ins)
    if boxes is not None:
        cols["pointing"] = pointing_game(ranks, boxes)
    return _numpy(cols), {"deletion": dele.cpu().numpy(), "insertion": ins.cpu().numpy()}


@torch.no_grad()
def score_hard(model: nn.Module, taps: Sequence[str], x: torch.Tensor, y: torch.Tensor, hard: torch.Tensor,
               baseline: torch.Tensor, cfg: ScoreSettings, clean: Clean | None = None,
               boxes: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """The metrics of one hard mask per image: fidelity (``kept``, ``kl``, ``p_ratio``, …, and the image's
    own ``p_x``, ``margin_x``), ``act_sim`` (and per tap), ``area``, ``removable``, ``flip`` / ``drop``, the
    sufficiency scores, and with ``boxes`` ``iou``."""
    bs = cfg.batch_size
    zx, acts = (None, None) if clean is None else (clean.logits, clean.acts)
    cols: dict[str, torch.Tensor] = dict(fidelity(model, x, hard, baseline, y, bs, zx=zx))
    sim = activation_similarity(model, taps, x, hard, baseline, bs, acts_x=acts)
    cols["act_sim"] = sim.mean(1)
    cols.update({f"act_sim_{i}": sim[:, i] for i in range(sim.shape[1])})
    cols["area"] = area(hard)
    cols["removable"] = removable_patch(model, x, hard, baseline, y, cfg.max_pieces, bs)
    cols.update(complement_scores(model, x, hard, baseline, y, bs, zx=zx))
    pixel_noise = x.shape[1] == 1 and cfg.mean is not None and cfg.std is not None
    suff = sufficiency(model, x, hard, y, draws=cfg.perturb_draws, seed=cfg.seed, batch_size=bs,
                       mean=cfg.mean if pixel_noise else None, std=cfg.std if pixel_noise else None)
    cols.update({f"suff_{k}": v for k, v in suff.items()})
    if boxes is not None:
        cols["iou"] = iou_with_boxes(hard, boxes)
    return _numpy(cols)


def combine(hard: dict[str, np.ndarray], soft: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One per-image column dict from :func:`score_hard`'s and :func:`score_soft`'s, in the table's order
    (fidelity, act_sim, area, crispness, preservation and p*, removable, necessity, sufficiency, the
    curves' AUCs, pointing, IoU)."""
    out = {k: v for k, v in hard.items() if k not in _HARD_TAIL and k != "iou"}
    out.update({k: v for k, v in soft.items() if k not in _SOFT_TAIL})
    out.update({k: v for k, v in hard.items() if k in _HARD_TAIL})
    out.update({k: soft[k] for k in _SOFT_TAIL if k in soft})
    if "iou" in hard:
        out["iou"] = hard["iou"]
    return out


@torch.no_grad()
def score_masks(model: nn.Module, taps: Sequence[str], x: torch.Tensor, y: torch.Tensor, soft: torch.Tensor,
                hard: torch.Tensor, baseline: torch.Tensor, blurred: torch.Tensor, cfg: ScoreSettings,
                boxes: torch.Tensor | None = None,
                clean: Clean | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-image metrics (column → ``(B,)`` array) and the per-image deletion / insertion curves
    (``(B, curve_steps + 1)``) for hard masks ``hard`` and the soft maps ``soft`` that rank pixels.

    ``baseline`` is the removal fill (fidelity, p*, removable, necessity, deletion); ``blurred`` only the
    start of the insertion curve; ``boxes`` ``(B, 4)`` (x0, y0, x1, y1) add ``pointing`` and ``iou``;
    ``clean``: :func:`clean_pass` of ``x`` when the caller already has it."""
    clean = clean_pass(model, taps, x, cfg) if clean is None else clean
    soft_cols, curves = score_soft(model, x, y, soft, baseline, blurred, cfg, clean, boxes)
    return combine(score_hard(model, taps, x, y, hard, baseline, cfg, clean, boxes), soft_cols), curves
