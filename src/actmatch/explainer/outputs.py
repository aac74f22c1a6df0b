"""Writing an explainer run's outputs (masks, per-image summary, resolved config, training ids) and
choosing its images: the evaluation set and the training subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from actmatch.config.explainer import ExplainerRun, LossConfig
from actmatch.core.sampling import class_interleaved, stratified_sample

__all__ = ["write_masks", "write_config", "write_summary", "write_ids", "eval_split", "train_subset", "seed_dir"]


def seed_dir(root: Path, seed: int) -> Path:
    """Where one seed's outputs of a regime live: ``<root>/seed<seed>``."""
    return Path(root) / f"seed{seed}"


def eval_split(ds, n: int, seed: int, per_class: int | None = None) -> np.ndarray:
    """The evaluation images: the first ``n`` test images of a seeded, class-interleaved order
    (:func:`~actmatch.core.sampling.class_interleaved`: one image of each class, then a second of each, …;
    issue 27), the same for every method; their ids are listed in every output. So 20 digits are 2 of each
    class, every class is present whenever n ≥ the number of classes, and a smaller set is a subset of a
    larger one with the same seed. A set with one label only (the photos: all unlabelled, -1) keeps the seeded
    random order. With ``per_class`` only the first ``per_class`` of each label are kept (then at most
    ``n``)."""
    idx = class_interleaved(ds.split_indices("test"), ds.labels, seed)
    if per_class is not None:
        labels = np.asarray(ds.labels)[idx]
        rank = np.zeros(len(idx), dtype=int)
        seen: dict[int, int] = {}
        for j, y in enumerate(labels):
            rank[j] = seen.get(int(y), 0)
            seen[int(y)] = rank[j] + 1
        idx = idx[rank < per_class]
    return idx[:n]


def train_subset(ds, n: int | None, seed: int) -> np.ndarray:
    """The training images of an explainer: a seeded, class-stratified sample of ``n`` train images
    (all of them for None), never the first N in storage order (datasets are stored sorted by class).
    Returned in storage order (the trainer shuffles), so ``n = None`` is the whole split as stored."""
    return np.sort(stratified_sample(ds.split_indices("train"), ds.labels, n, seed))


def write_masks(path: Path, ids: list[str], **soft: torch.Tensor) -> None:
    """``masks.npz``: ``ids`` and, per regime, ``<regime>_soft`` float32 and ``<regime>_hard`` bool (N, H, W).
    Float32, not float16: ranking metrics order pixels by the soft mask, and float16 turns near-equal
    values into ties (a test checks that the top-``area`` pixels of the soft map are the hard mask)."""
    arrays: dict[str, np.ndarray] = {"ids": np.asarray(ids)}
    for name, s in soft.items():
        arrays[f"{name}_soft"] = s[:, 0].numpy().astype(np.float32)
        arrays[f"{name}_hard"] = (s[:, 0] > 0.5).numpy()
    np.savez_compressed(path, **arrays)


def write_ids(path: Path, ds, idx: np.ndarray) -> None:
    """``train_ids.csv`` (columns id, label): the images an explainer trained on, so anyone can check
    its class coverage."""
    pd.DataFrame({"id": ds.index["id"].to_numpy()[idx].astype(str), "label": ds.labels[idx]}).to_csv(path, index=False)


def write_config(path: Path, run: ExplainerRun, loss: LossConfig, **extra: object) -> None:
    path.write_text(yaml.safe_dump({"run": run.model_dump(), "loss": loss.model_dump(), **extra}, sort_keys=True))


def write_summary(path: Path, frames: list[pd.DataFrame]) -> None:
    pd.concat(frames, ignore_index=True).to_csv(path, index=False, float_format="%.6g")
