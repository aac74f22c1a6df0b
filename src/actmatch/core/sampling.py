"""Seeded, class-stratified samples. Datasets are stored sorted by class, so "the first N images of a
split" would be a few classes only: every subset of a split in this project comes from here."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_sample", "class_interleaved"]


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


def class_interleaved(indices: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """All of ``indices`` in a seeded order whose every prefix is class-stratified: a seeded random
    permutation, then stably sorted by each row's rank within its class, so the first images are one of
    each class (in the order the classes first appear), then a second of each, and so on. The first ``n``
    hold ⌈n / k⌉ or ⌊n / k⌋ of each of k classes while every class has rows left (2 per class for 20
    digits, at least one per class whenever n ≥ k), and a shorter prefix is a subset of a longer one, so a
    regime explaining fewer images explains a subset of another's (the evaluation pairs them by id).
    ``labels`` is indexed by row. Returns int64 row indices, shape ``(len(indices),)``."""
    perm = np.random.default_rng(seed).permutation(np.asarray(indices, dtype=np.int64))
    y = np.asarray(labels)[perm]
    rank = np.zeros(len(perm), dtype=np.int64)
    seen: dict = {}
    for j, c in enumerate(y.tolist()):
        rank[j] = seen.get(c, 0)
        seen[c] = rank[j] + 1
    return perm[np.argsort(rank, kind="stable")]
