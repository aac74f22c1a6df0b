"""Aggregates over images (method.md §5): mean, 95 % bootstrap interval and n for each metric.

The interval is scipy's percentile bootstrap over images (BCa is undefined for the constant
columns that are common here, e.g. a label kept on every image); NaN values are dropped first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["mean_ci", "aggregate"]


def mean_ci(values: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """``{"mean", "lo", "hi", "n"}`` of the finite values; an empty input gives NaNs and n = 0."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    mean = float(v.mean())
    if len(v) == 1 or np.all(v == v[0]):
        return {"mean": mean, "lo": mean, "hi": mean, "n": int(len(v))}
    res = stats.bootstrap((v,), np.mean, n_resamples=n_resamples, confidence_level=0.95, method="percentile",
                          rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return {"mean": mean, "lo": float(ci.low), "hi": float(ci.high), "n": int(len(v))}


def aggregate(per_image: pd.DataFrame, metrics: list[str], n_resamples: int = 1000,
              seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {metric: mean_ci}}`` from a per-image table with a ``method`` column."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method, g in per_image.groupby("method", sort=False):
        out[str(method)] = {m: mean_ci(g[m].to_numpy(), n_resamples, seed) for m in metrics if m in g}
    return out
