"""Evaluation metrics of method.md §5, as pure functions of (classifier, images, masks, target).

Conventions shared by every function here:

* ``model`` maps normalized images ``(B, C, H, W)`` float to logits ``(B, K)``; it is called
  under ``torch.no_grad`` in chunks of ``batch_size`` (results do not depend on the chunking).
* ``x`` are normalized images, ``masks`` hard masks ``(B, 1, H, W)`` in {0, 1}, ``soft`` soft
  maps ``(B, 1, H, W)`` in [0, 1], ``baseline`` what a removed pixel becomes (``(B, C, H, W)``,
  :func:`actmatch.core.masks.fill_values`), ``y`` the target labels ``(B,)`` long — the
  classifier's own top-1 label on ``x`` unless said otherwise.
* Inputs are never modified in place; outputs live on the inputs' device, one value per image.
"""

from actmatch.metrics.curves import auc, deletion_insertion, pixel_ranks, top_fraction_masks
from actmatch.metrics.fidelity import activation_similarity, fidelity, predict_proba
from actmatch.metrics.localization import box_masks, iou_with_boxes, pointing_game
from actmatch.metrics.minimality import area, crispness, minimal_budget, removable_patch
from actmatch.metrics.necessity import complement_scores
from actmatch.metrics.perturbation import sufficiency
from actmatch.metrics.suite import METRICS, ScoreSettings, score_masks

__all__ = ["predict_proba", "fidelity", "activation_similarity", "area", "crispness", "minimal_budget",
           "removable_patch", "complement_scores", "sufficiency", "pixel_ranks", "top_fraction_masks",
           "deletion_insertion", "auc", "pointing_game", "iou_with_boxes", "box_masks",
           "ScoreSettings", "score_masks", "METRICS"]
