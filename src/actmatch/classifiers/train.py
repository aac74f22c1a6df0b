"""Supervised training of the small classifiers, their checkpoints, and loading them frozen.

Adam with cosine decay to 0, random integer translations (``augment_shift`` pixels) filled with
the background; inputs normalized by the train split's per-channel mean and std, which the
checkpoint carries with the architecture, so :func:`load_trained` needs nothing else.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from actmatch.classifiers.registry import Classifier, freeze
from actmatch.classifiers.small import SMALL_TAPS, build_small
from actmatch.config.classifiers import TrainRunConfig
from actmatch.data.store import ImageDataset
from actmatch.core.io import save_torch

__all__ = ["train_classifier", "save_trained", "load_trained", "random_shift", "accuracy"]

log = logging.getLogger(__name__)


def random_shift(x: torch.Tensor, max_shift: int, fill: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of ``x`` (B, C, H, W) by its own integer (dy, dx) in [-max_shift, max_shift],
    filling uncovered pixels with ``fill`` (C,). Returns a new tensor."""
    if max_shift == 0:
        return x.clone()
    b, c, h, w = x.shape
    s = max_shift
    padded = fill.view(1, c, 1, 1).expand(b, c, h + 2 * s, w + 2 * s).clone()
    padded[:, :, s:s + h, s:s + w] = x
    d = torch.randint(0, 2 * s + 1, (b, 2), generator=generator).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + d[:, :1])  # (B, H)
    cols = (torch.arange(w, device=x.device)[None, :] + d[:, 1:])  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (in its current mode) on normalized ``x`` (N, C, H, W)."""
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / max(len(x), 1)


def _to_tensor(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.from_numpy(mean).view(1, -1, 1, 1)) / torch.from_numpy(std).view(1, -1, 1, 1)


def train_classifier(cfg: TrainRunConfig, ds: ImageDataset, device: torch.device, live: Any = None,
                     progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``cfg.arch`` on ``ds``'s train split; returns the model (eval mode) and its numbers.

    ``live`` is an optional ``dvclive.Live`` that gets per-epoch loss and accuracies."""
    if not isinstance(ds.images, np.ndarray):
        raise ValueError(f"{ds.name}: small classifiers need a same-size dataset (storage 'array')")
    tr, te = ds.split_indices("train"), ds.split_indices("test")
    labels = ds.labels
    num_classes = len(ds.class_names or []) or int(labels.max()) + 1
    imgs = ds.images[tr].astype(np.float64) / 255.0
    mean = imgs.mean(axis=(0, 1, 2)).astype(np.float32)
    std = np.maximum(imgs.std(axis=(0, 1, 2)), 1e-3).astype(np.float32)
    x_tr, y_tr = _to_tensor(ds.images[tr], mean, std).to(device), torch.from_numpy(labels[tr]).to(device)
    x_te, y_te = _to_tensor(ds.images[te], mean, std).to(device), torch.from_numpy(labels[te]).to(device)
    fill = torch.from_numpy(-mean / std).to(device)  # a black pixel, normalized

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    in_ch, size = ds.images.shape[3], ds.images.shape[1]
    model = build_small(cfg.arch, in_ch, size, num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(tr) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    start = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=f"train {cfg.name}", disable=not progress)
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(tr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size].to(device)
            xb = random_shift(x_tr[idx], cfg.augment_shift, fill, gen)
            logits = model(xb)
            loss = F.cross_entropy(logits, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y_tr[idx]).sum().item()
            total += len(idx)
        model.eval()
        test_acc = accuracy(model, x_te, y_te)
        bar.set_postfix(loss=f"{loss_sum / total:.3f}", test_acc=f"{test_acc:.4f}")
        if live is not None:
            live.log_metric("train/loss", loss_sum / total)
            live.log_metric("train/accuracy", correct / total)
            live.log_metric("test/accuracy", test_acc)
            live.next_step()
    seconds = time.perf_counter() - start
    model.eval()
    metrics = {"test_accuracy": accuracy(model, x_te, y_te), "train_accuracy": accuracy(model, x_tr, y_tr),
               "n_train": int(len(tr)), "n_test": int(len(te))}
    log.info("%s: test accuracy %.4f in %.1f s", cfg.name, metrics["test_accuracy"], seconds)
    info = {"seconds": seconds, "mean": mean.tolist(), "std": std.tolist(), "input_size": int(size),
            "in_channels": int(in_ch), "num_classes": num_classes, "class_names": ds.class_names}
    return model, {**metrics, "_info": info}


def save_trained(path: str | Path, model: nn.Module, cfg: TrainRunConfig, info: dict[str, Any],
                 metrics: dict[str, Any]) -> None:
    """Checkpoint that carries its config: architecture, normalization, class names, metrics."""
    ckpt = {"format": "actmatch-classifier-v1", "config": cfg.model_dump(), "state_dict": model.state_dict(),
            "taps": list(SMALL_TAPS[cfg.arch]), "metrics": metrics, **{k: v for k, v in info.items() if k != "seconds"}}
    save_torch(ckpt, path)


def load_trained(path: str | Path) -> Classifier:
    """Load a checkpoint written by :func:`save_trained` as a frozen :class:`Classifier` (on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier checkpoint {path} not found; run `dvc repro` to train it")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which and why
        raise ValueError(f"{path} is not a readable actmatch classifier checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != "actmatch-classifier-v1":
        raise ValueError(f"{path} is not an actmatch classifier checkpoint (format 'actmatch-classifier-v1')")
    cfg = ckpt["config"]
    model = build_small(cfg["arch"], ckpt["in_channels"], ckpt["input_size"], ckpt["num_classes"])
    model.load_state_dict(ckpt["state_dict"])
    names = ckpt["class_names"] or [str(i) for i in range(ckpt["num_classes"])]
    return Classifier(f"{cfg['arch']}-{cfg['dataset']}", freeze(model), ckpt["input_size"], ckpt["in_channels"],
                      tuple(ckpt["mean"]), tuple(ckpt["std"]), tuple(ckpt["taps"]), names)
