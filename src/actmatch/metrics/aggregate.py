"""Aggregates over images and seeds (method.md §5): mean, 95 % bootstrap interval and n for each metric,
and the rules that decide which runs and images a claim may rest on (issue 27).

The interval is scipy's percentile bootstrap over images (BCa is undefined for the constant
columns that are common here, e.g. a label kept on every image); NaN values are dropped first.

Reading rules, stated here once:

* a run (method, seed) **collapsed** when its hard masks are empty or full on ≥ 95 % of the images
  (:func:`is_collapsed`); its direction is ``empty``, ``full`` or ``mixed`` (:func:`collapse_direction`);
* a **class** of a run collapsed when the same holds on the images of that class (the label explained,
  ``y``: the classifier's own top-1 on x), judged on classes of at least :data:`MIN_CLASS_IMAGES` images;
  a collapsed class is named and its images are left out of that run's claim (:func:`class_collapse`);
* an image is **trivial** when the classifier's prediction on the fill alone (``null_y``, the explanation
  of an empty mask) is already y: an empty mask "keeps" it, so ``kept`` is reported over the non-trivial
  images (``kept_nontrivial``) and claims never count trivial images;
* a **full** mask (area 1: every pixel, e.g. the photo ladder's last rung on an image it could not explain)
  keeps the label and explains nothing: like the empty mask it is never a success, so it counts as not kept
  in ``kept_nontrivial`` and in the claim (the all-image ``kept`` stays the classifier's raw agreement);
* the **claim** of a method (:func:`claim_summary`): kept and area over its non-collapsed, converged seeds,
  on the non-trivial images outside collapsed classes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["mean_ci", "aggregate", "aggregate_seeds", "is_collapsed", "collapse_direction", "class_collapse",
           "claim_summary", "success", "paired_seed_means", "seed_image_bootstrap", "COLLAPSE_SHARE", "MIN_CLASS_IMAGES"]

COLLAPSE_SHARE = 0.95  # a run (or a class of it) is collapsed when this share of its hard masks is empty or full
MIN_CLASS_IMAGES = 5   # per-class collapse is judged on classes with at least this many images


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


def is_collapsed(area: np.ndarray, share: float = COLLAPSE_SHARE) -> bool:
    """A run collapsed when its hard masks are all empty or all full (area 0 or 1) on at least ``share``
    of the images (method.md §5): its numbers say nothing about the loss terms, so they are reported
    by name and never averaged into an effect."""
    a = np.asarray(area, dtype=np.float64)
    return bool(len(a)) and float(np.mean((a <= 0.0) | (a >= 1.0))) >= share


def collapse_direction(area: np.ndarray, share: float = COLLAPSE_SHARE) -> str | None:
    """``"empty"`` when at least ``share`` of the hard masks are empty, ``"full"`` when that share is full,
    ``"mixed"`` when empty and full together reach it, None when the masks did not collapse."""
    a = np.asarray(area, dtype=np.float64)
    if not len(a):
        return None
    empty, full = float(np.mean(a <= 0.0)), float(np.mean(a >= 1.0))
    if empty >= share:
        return "empty"
    if full >= share:
        return "full"
    return "mixed" if empty + full >= share else None


def class_collapse(g: pd.DataFrame, seeds: list[int] | None = None, column: str = "area", by: str = "y",
                   share: float = COLLAPSE_SHARE, min_images: int = MIN_CLASS_IMAGES) -> list[dict]:
    """Per class (column ``by``: y, the label explained) of one method's per-image rows ``g`` (columns
    ``seed``, ``by``, ``column``), the seeds whose masks of that class collapsed, with the direction:
    ``[{"class", "direction", "seeds"}]`` sorted by class then direction. Classes with fewer than
    ``min_images`` images in a seed are not judged in that seed."""
    if by not in g or column not in g:
        return []
    found: dict[tuple, list[int]] = {}
    for s in (sorted(int(v) for v in g["seed"].unique()) if seeds is None else seeds):
        for c, gc in g[g["seed"] == s].groupby(by):
            d = collapse_direction(gc[column].to_numpy(), share) if len(gc) >= min_images else None
            if d is not None:
                found.setdefault((int(c), d), []).append(int(s))
    return [{"class": c, "direction": d, "seeds": v} for (c, d), v in sorted(found.items())]


def success(g: pd.DataFrame, area: str = "area") -> pd.Series:
    """``kept`` as a success: NaN on a trivial image (it says nothing) and 0 where the mask is full
    (``area`` ≥ 1: it keeps the label by being the image)."""
    kept = g["kept"].astype(np.float64)
    if area in g:
        kept = kept.where(g[area] < 1.0, 0.0)
    return kept.where(g["trivial"] == 0) if "trivial" in g else kept


def _success_all(g: pd.DataFrame) -> pd.Series:
    """:func:`success` without the trivial rule (the caller chose the images): a full mask is not kept."""
    return success(g.drop(columns=["trivial"], errors="ignore"))


def _claim_rows(g: pd.DataFrame, seed: int, classes: list[dict], area: str = "area") -> pd.DataFrame:
    """One seed's rows a claim may rest on: non-trivial images outside the classes collapsed in that seed,
    ``kept`` read as a success (:func:`success`: a full mask is not kept)."""
    d = g[g["seed"] == seed]
    if "kept" in d:
        d = d.assign(kept=success(d, area))
    if "trivial" in d:
        d = d[d["trivial"] == 0]
    dead = {c["class"] for c in classes if seed in c["seeds"]}
    return d[~d["y"].isin(dead)] if dead and "y" in d else d


def claim_summary(g: pd.DataFrame, collapsed: list[int], classes: list[dict],
                  not_converged: list[int] = (), area: str = "area") -> dict:
    """What one method's claim rests on: its seeds that neither collapsed nor failed to converge, and in each
    the non-trivial images outside its collapsed classes. ``kept`` and ``area`` are the mean over those
    seeds of each seed's mean over those images (with min–max across seeds); ``n`` the (seed, image) pairs;
    ``left_out`` what was excluded and why. No seed left: the values are NaN."""
    all_seeds = sorted(int(s) for s in g["seed"].unique())
    seeds = [s for s in all_seeds if s not in set(collapsed) and s not in set(not_converged)]
    rows = {s: _claim_rows(g, s, classes, area) for s in seeds}
    out: dict = {"seeds": [s for s in seeds if len(rows[s])], "n": int(sum(len(r) for r in rows.values()))}
    for m in ("kept", "area"):
        by_seed = np.array([float(r[m].mean()) for r in rows.values() if len(r) and m in r], dtype=np.float64)
        out[m] = float(by_seed.mean()) if len(by_seed) else float("nan")
        out[f"{m}_min"] = float(by_seed.min()) if len(by_seed) else float("nan")
        out[f"{m}_max"] = float(by_seed.max()) if len(by_seed) else float("nan")
    trivial = int(g.loc[g["seed"].isin(seeds), "trivial"].sum()) if "trivial" in g else 0
    out["left_out"] = {"seeds_collapsed": sorted(collapsed), "seeds_not_converged": sorted(int(s) for s in not_converged),
                       "trivial_pairs": trivial, "classes": [c for c in classes if set(c["seeds"]) & set(seeds)]}
    return out


def paired_seed_means(per_image: pd.DataFrame, a: str, b: str, metric: str, seeds: list[int] | None = None,
                      nontrivial: bool = True) -> pd.DataFrame:
    """Methods ``a`` and ``b`` paired within a seed: per seed both have (``seeds``: only those), the mean of
    ``metric`` over the images both have (non-trivial ones only with ``nontrivial`` and a ``trivial``
    column; ``kept`` read as a success: a full mask is not kept). Columns ``seed``, ``a``, ``b``, ``n``; one
    row per seed. Comparing a method with another at its own areas is only fair seed by seed: a baseline
    binarized at seed k's areas against seed k."""
    rows = []
    da, db = per_image[per_image["method"] == a], per_image[per_image["method"] == b]
    shared = sorted(set(da["seed"]) & set(db["seed"]))
    for s in shared if seeds is None else [s for s in shared if s in set(seeds)]:
        x, y = da[da["seed"] == s].set_index("id"), db[db["seed"] == s].set_index("id")
        ids = x.index.intersection(y.index)
        if nontrivial and "trivial" in x:
            ids = ids[(x.loc[ids, "trivial"] == 0).to_numpy()]
        if len(ids):
            va, vb = (_success_all(d.loc[ids]) if metric == "kept" else d.loc[ids, metric] for d in (x, y))
            rows.append({"seed": int(s), "a": float(va.mean()), "b": float(vb.mean()), "n": int(len(ids))})
    return pd.DataFrame(rows, columns=["seed", "a", "b", "n"])


def seed_image_bootstrap(per_seed: list[np.ndarray], n_resamples: int = 1000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float]:
    """A two-level percentile bootstrap of a mean effect whose replicate is the training run: each resample
    draws k seeds with replacement from the k, then, independently for each drawn seed, its images with
    replacement, and averages the drawn seeds' means. ``per_seed``: one array of per-image values (e.g.
    differences variant − base) per seed; NaN dropped. Returns the ``level`` interval; NaN with fewer than
    two seeds (one run says nothing about a training effect)."""
    groups = [np.asarray(v, dtype=np.float64) for v in per_seed]
    groups = [v[np.isfinite(v)] for v in groups]
    groups = [v for v in groups if len(v)]
    k = len(groups)
    if k < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, (n_resamples, k))                       # which seed fills each slot
    means = np.stack([g[rng.integers(0, len(g), (n_resamples, k, len(g)))].mean(-1) for g in groups])  # (k, R, k)
    stats_ = means[picks, np.arange(n_resamples)[:, None], np.arange(k)[None, :]].mean(1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(stats_, alpha)), float(np.quantile(stats_, 1.0 - alpha))


def aggregate_seeds(per_image: pd.DataFrame, metrics: list[str], n_resamples: int = 1000,
                    seed: int = 0, collapse_on: str = "area",
                    not_converged: dict[str, list[int]] | None = None) -> dict[str, dict]:
    """Per method (a ``method`` column) over seeds (a ``seed`` column) and images (``id``):

    ``{method: {"seeds": k, "collapsed": [seeds], "collapsed_direction": {seed: dir}, "class_collapsed":
    [...], "trivial": share, "claim": {...}, "metrics": {metric: {mean, lo, hi, n, sd, min, max}}}}``.
    A seed whose masks collapsed (:func:`is_collapsed` on the ``collapse_on`` column: ``area``, or
    ``area_own`` for the ablation's equal-area rows, whose ``area`` is the target by construction) is
    listed with its direction and left out of every number; when every seed collapsed each metric is NaN
    with n = 0. ``mean`` is the mean over the remaining seeds of each seed's mean over images; ``sd``,
    ``min``, ``max`` the spread of those seed means (sd 0 for one seed); ``lo``/``hi`` the 95 %
    bootstrap interval over images of each image's mean over those seeds; ``n`` the images. With a
    ``trivial`` column: ``trivial`` is the share of the method's images that are trivial and the metric
    ``kept_nontrivial`` is ``kept`` over the non-trivial images, a full mask counting as not kept (:func:`success`). ``class_collapsed``
    (:func:`class_collapse`, over the non-collapsed seeds) and ``claim`` (:func:`claim_summary`; seeds in
    ``not_converged[method]`` left out) say what a claim may rest on."""
    out: dict[str, dict] = {}
    not_converged = not_converged or {}
    for method, g in per_image.groupby("method", sort=False):
        seeds = sorted(int(s) for s in g["seed"].unique())
        collapsed = [s for s in seeds
                     if collapse_on in g and is_collapsed(g.loc[g["seed"] == s, collapse_on].to_numpy())]
        if "trivial" in g and "kept" in g:
            g = g.assign(kept_nontrivial=success(g, collapse_on))
        live = g[~g["seed"].isin(collapsed)]
        classes = class_collapse(live, [s for s in seeds if s not in collapsed], collapse_on)
        entry: dict = {"seeds": len(seeds), "collapsed": collapsed,
                       "collapsed_direction": {str(s): collapse_direction(g.loc[g["seed"] == s, collapse_on].to_numpy())
                                               for s in collapsed},
                       "class_collapsed": classes, "metrics": {}}
        if "trivial" in g:
            entry["trivial"] = float(g.drop_duplicates("id")["trivial"].mean())
        entry["claim"] = claim_summary(g, collapsed, classes, not_converged.get(str(method), []), collapse_on)
        for m in list(metrics) + (["kept_nontrivial"] if "kept_nontrivial" in g and "kept" in metrics else []):
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
