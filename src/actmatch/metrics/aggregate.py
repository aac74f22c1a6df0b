"""Aggregates over images (method.md §5): mean, 95 % bootstrap interval and n for each metric.

The interval is scipy's percentile bootstrap over images (BCa is undefined for the constant
columns that are common here, e.g. a label kept on every image); NaN values are dropped first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["mean_ci", "aggregate", "aggregate_seeds", "is_collapsed"]


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


def is_collapsed(area: np.ndarray, share: float = 0.95) -> bool:
    """A run collapsed when its hard masks are all empty or all full (area 0 or 1) on at least ``share``
    of the images (method.md §5): its numbers say nothing about the loss terms, so they are reported
    by name and never averaged into an effect."""
    a = np.asarray(area, dtype=np.float64)
    return bool(len(a)) and float(np.mean((a <= 0.0) | (a >= 1.0))) >= share


def aggregate_seeds(per_image: pd.DataFrame, metrics: list[str], n_resamples: int = 1000,
                    seed: int = 0, collapse_on: str = "area") -> dict[str, dict]:
    """Per method (a ``method`` column) over seeds (a ``seed`` column) and images (``id``):

    ``{method: {"seeds": k, "collapsed": [seeds], "metrics": {metric: {mean, lo, hi, n, sd, min, max}}}}``.
    A seed whose masks collapsed (:func:`is_collapsed` on the ``collapse_on`` column: ``area``, or
    ``area_own`` for the ablation's equal-area rows, whose ``area`` is the target by construction) is
    listed and left out of every number; when every seed collapsed each metric is NaN with n = 0. ``mean`` is the mean over the remaining seeds of each seed's mean over images; ``sd``,
    ``min``, ``max`` the spread of those seed means (sd 0 for one seed); ``lo``/``hi`` the 95 %
    bootstrap interval over images of each image's mean over those seeds; ``n`` the images."""
    out: dict[str, dict] = {}
    for method, g in per_image.groupby("method", sort=False):
        seeds = sorted(int(s) for s in g["seed"].unique())
        collapsed = [s for s in seeds
                     if collapse_on in g and is_collapsed(g.loc[g["seed"] == s, collapse_on].to_numpy())]
        live = g[~g["seed"].isin(collapsed)]
        entry: dict = {"seeds": len(seeds), "collapsed": collapsed, "metrics": {}}
        for m in metrics:
            if m not in g:
                continue
            if live.empty:
                entry["metrics"][m] = {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0,
                                       "sd": float("nan"), "min": float("nan"), "max": float("nan")}
                continue
            by_seed = live.groupby("seed")[m].mean().to_numpy(dtype=np.float64)
            per_img = live.groupby("id", sort=False)[m].mean().to_numpy()
            ci = mean_ci(per_img, n_resamples, seed)
            fin = by_seed[np.isfinite(by_seed)]
            entry["metrics"][m] = {**ci, "mean": float(fin.mean()) if len(fin) else float("nan"),
                                   "sd": float(fin.std(ddof=1)) if len(fin) > 1 else 0.0,
                                   "min": float(fin.min()) if len(fin) else float("nan"),
                                   "max": float(fin.max()) if len(fin) else float("nan")}
        out[str(method)] = entry
    return out
