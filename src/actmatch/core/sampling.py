"""Seeded, class-stratified samples. Datasets are stored sorted by class, so "the first N images of a
split" would be a few classes only: every subset of a split in this project comes from here."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_sample"]


def stratified_sample(indices: np.ndarray, labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """``n`` of ``indices`` (rows of a dataset) drawn without replacement, each class represented in
    proportion to its share (largest remainders; every class present gets at least one row when
    ``n`` ≥ the number of classes), in a seeded random order. ``labels`` is indexed by row. With
    ``n`` None or ≥ len(indices): all of them, in a seeded random order.

    Returns int64 row indices, shape ``(min(n, len(indices)),)``."""
    indices = np.asarray(indices, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if n is None or n >= len(indices):
        return rng.permutation(indices)
    if n < 1:
        raise ValueError(f"a sample needs n >= 1, got {n}")
    y = np.asarray(labels)[indices]
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n / len(indices)
    take = np.floor(quota).astype(int)
    if n >= len(classes):
        take = np.maximum(take, 1)
    # hand out what is left by largest remainder (ties: the rarer class first, then class order)
    order = np.lexsort((classes, counts, -(quota - np.floor(quota))))
    i = 0
    while take.sum() < n:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    while take.sum() > n:  # only when n < len(classes) forced minimums: drop from the largest
        take[np.argmax(take)] -= 1
    picked = [rng.permutation(indices[y == c])[:k] for c, k in zip(classes, take)]
    return rng.permutation(np.concatenate(picked))
