"""One ablation variant (issue: ablation grid): train an amortized U-Net under a loss variant and
score its masks with the evaluation's metric code (method.md §5), so Table 2 compares variants
image by image on the same held-out images.

The variant reuses the U-Net, fill and evaluation images of the amortized run that explains the
same classifier on the same dataset; only the loss (and the shorter ``ablation.train``) differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from actmatch.classifiers import Classifier
from actmatch.config import AmortizedParams, ExplainerRun, LossConfig
from actmatch.explainer.outputs import eval_split
from actmatch.explainer.train import predict_masks, train_amortized
from actmatch.explainer.unet import UNet, fill_values
from actmatch.metrics.aggregate import mean_ci
from actmatch.metrics.fidelity import predict_logits
from actmatch.metrics.suite import ScoreSettings, score_masks

__all__ = ["ABLATION_METRICS", "run_variant", "summarize_variant"]

# the columns Table 2 shows (every metric of the suite is kept in per_image.csv)
ABLATION_METRICS = ("kept", "area", "flip", "act_sim", "insertion_auc", "deletion_auc", "crispness", "p_star",
                    "removable", "suff_gaussian")


def run_variant(clf: Classifier, ds, run: ExplainerRun, loss: LossConfig, train: AmortizedParams, eval_images: int,
                score: ScoreSettings, seed: int, state_path: Path | None = None, progress: bool = True,
                ) -> tuple[UNet, list[str], torch.Tensor, pd.DataFrame, dict[str, list[float]]]:
    """Train the variant and score it. Returns the net, the evaluation ids, the soft masks
    ``(N, 1, H, W)`` (CPU), the per-image table (``id, label, y`` + every metric) and the training
    curves. Training resumes by epoch from ``state_path``."""
    device = next(clf.model.parameters()).device
    tr = ds.split_indices("train")[: train.max_train]
    x_train = clf.preprocess_batch([ds.images[i] for i in tr]).to(device)
    net, curves = train_amortized(clf, x_train, loss, run.unet, train, run.fill, seed, state_path=state_path,
                                  progress=progress)
    del x_train
    idx = eval_split(ds, eval_images, seed)
    ids = [str(ds.index["id"].iloc[i]) for i in idx]
    x = clf.preprocess_batch([ds.images[i] for i in idx]).to(device)
    with torch.no_grad():
        soft = predict_masks(clf, net, x, loss, run.fill, seed).soft
        hard = (soft > 0.5).float()
        baseline = fill_values(x, run.fill, clf.mean, clf.std)
        blurred = fill_values(x, "blur", clf.mean, clf.std, blur_sigma=clf.input_size / 10.0)
        y = predict_logits(clf.model, x, score.batch_size).argmax(1)
        boxes = None
        if ds.boxes is not None:
            scale = clf.input_size / ds.images[idx[0]].shape[0]
            boxes = torch.from_numpy(np.round(ds.boxes[idx] * scale).astype(np.int64)).to(device)
        cols, _ = score_masks(clf.model, clf.taps, x, y, soft.to(device), hard.to(device), baseline, blurred, score,
                              boxes)
    table = pd.DataFrame({"id": ids, "label": ds.labels[idx], "y": y.cpu().numpy(), **cols})
    return net, ids, soft, table, curves


def summarize_variant(table: pd.DataFrame, n_resamples: int, seed: int) -> dict[str, dict[str, float]]:
    """``{metric: {mean, lo, hi, n}}`` over the per-image table (95 % percentile bootstrap)."""
    skip = {"id", "label", "y"}
    return {c: mean_ci(table[c].to_numpy(), n_resamples, seed) for c in table.columns if c not in skip}
