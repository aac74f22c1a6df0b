"""A binary task from two classes of a labelled set: SyCE/CyCE's MNIST "3 vs 8" (method.md §8.1).

The digits of ``classes[0]`` get label 0 and those of ``classes[1]`` label 1; the split, ids and
pixels are the source's, so the pair's test digits are a subset of mnist's test digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actmatch.config.data import MnistPairParams
from actmatch.data.store import ImageDataset, write_array_dataset

__all__ = ["build_pair"]


def build_pair(source: ImageDataset, cfg: MnistPairParams, name: str, out: str | Path) -> None:
    """Keep the images of the two classes of ``cfg``, relabelled 0 and 1 in that order."""
    if not isinstance(source.images, np.ndarray):
        raise ValueError(f"{name} needs an in-memory array dataset, got {source.name}")
    a, b = cfg.classes
    labels = source.labels
    n_classes = len(source.class_names or []) or int(labels.max()) + 1
    if max(a, b) >= n_classes:
        raise ValueError(f"{name}: classes {cfg.classes} are not classes of {source.name} (0..{n_classes - 1})")
    keep = np.flatnonzero((labels == a) | (labels == b))
    index = source.index.iloc[keep].reset_index(drop=True).copy()
    index["source_label"] = index["label"]
    index["label"] = (index["source_label"] == b).astype(np.int64)
    names = source.class_names or [str(k) for k in range(n_classes)]
    meta = {"name": name, "source": f"built from data/{source.name}: classes {a} (label 0) and {b} (label 1)",
            "class_names": [names[a], names[b]], "classes": [a, b]}
    write_array_dataset(out, source.images[keep], index, meta)
