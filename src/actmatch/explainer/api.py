"""A small API for using the explainer outside the pipeline, and the per-image summary table.

    from actmatch.classifiers import load_classifier_dir
    from actmatch.explainer.api import load_explainer, masks_for
    clf = load_classifier_dir("results/classifiers/mnist_cnn-mnist/model")
    net, meta = load_explainer("results/explainers/mnist_cnn-mnist/amortized/seed0/explainer.pt", clf)
    soft, hard = masks_for(clf, net, images)          # uint8 images → (N, 1, S, S) masks
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from actmatch.classifiers.registry import Classifier
from actmatch.config.explainer import ExplainerRun, LossConfig
from actmatch.explainer.unet import UNet
from actmatch.core.masks import apply_mask, fill_values
from actmatch.core.io import save_torch

__all__ = ["save_explainer", "load_explainer", "masks_for", "summarize"]

FORMAT = "actmatch-explainer-v1"


def save_explainer(path: str | Path, net: UNet, run: ExplainerRun, loss: LossConfig, clf: Classifier,
                   extra: dict[str, Any] | None = None) -> None:
    """A checkpoint that carries its config: the run, the resolved loss, and the classifier it explains."""
    ckpt = {"format": FORMAT, "state_dict": net.state_dict(), "run": run.model_dump(), "loss": loss.model_dump(),
            "classifier": clf.name, "input_size": clf.input_size, "in_channels": clf.in_channels, **(extra or {})}
    save_torch(ckpt, path)


def load_explainer(path: str | Path, clf: Classifier | None = None) -> tuple[UNet, dict[str, Any]]:
    """Load an amortized explainer; with ``clf`` also check it was trained for that classifier and size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"explainer checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable actmatch explainer checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not an actmatch explainer checkpoint (format {FORMAT!r})")
    if clf is not None and (ckpt["classifier"] != clf.name or ckpt["input_size"] != clf.input_size):
        raise ValueError(f"{path} explains {ckpt['classifier']} at {ckpt['input_size']} px, not {clf.name} at "
                         f"{clf.input_size} px")
    u = ckpt["run"]["unet"]
    net = UNet(ckpt["in_channels"], u["widths"], u["bottleneck"], u["init_area"], grid=u.get("grid", 1),
               padding=u.get("padding", "zeros"))
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}


@torch.no_grad()
def masks_for(clf: Classifier, net: UNet, images: list[np.ndarray] | np.ndarray,
              batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft and hard masks ``(N, 1, S, S)`` for uint8 images, in one forward pass per batch."""
    x = clf.preprocess_batch(images)
    dev = next(net.parameters()).device
    soft = torch.cat([torch.sigmoid(net(x[i:i + batch_size].to(dev))).cpu() for i in range(0, len(x), batch_size)])
    return soft, (soft > 0.5).float()


@torch.no_grad()
def summarize(clf: Classifier, x: torch.Tensor, soft: torch.Tensor, fill: str, ids: list[str],
              labels: np.ndarray, final: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per image: the classifier's label y on x, p_x(y), p_e(y) with the hard mask, its area,
    whether the label is kept, and the final loss terms."""
    soft = soft.to(x.device)
    hard = (soft > 0.5).to(x.dtype)
    e = apply_mask(x, hard, fill_values(x, fill, clf.mean, clf.std))
    px, pe = clf(x).softmax(1), clf(e).softmax(1)
    y = px.argmax(1)
    df = pd.DataFrame({"id": ids, "label": labels, "y": y.cpu().numpy(),
                       "class_name": [clf.class_names[int(k)] for k in y.cpu()],
                       "p_x": px.gather(1, y[:, None])[:, 0].cpu().numpy(),
                       "p_e": pe.gather(1, y[:, None])[:, 0].cpu().numpy(),
                       "y_e": pe.argmax(1).cpu().numpy(), "area": hard.mean((1, 2, 3)).cpu().numpy(),
                       "soft_area": soft.mean((1, 2, 3)).cpu().numpy()})
    df["kept"] = (df["y"] == df["y_e"]).astype(int)
    for k, v in (final or {}).items():
        if k not in ("area_hard", "kept"):
            df[f"loss_{k}"] = v
    return df
