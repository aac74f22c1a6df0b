"""Table 2 (ablations) from ``results/ablations/<classifier>-<dataset>/`` (method.md §5).

Each variant has a summary ``<variant>.json`` (``seeds``, ``collapsed``, ``metrics``: mean over the
non-collapsed seeds ± sd, min–max, per-image 95 % interval) and per seed ``<variant>/seed<k>/``
(``per_image.csv``, ``masks.npz``, ``config.yaml``). The *matched* rows (``matched/<variant>.json`` and
``matched/<variant>/seed<k>/``) were trained with the area term as a target at the base's median area
and binarized at exactly that area (``area_own``: their own soft > 0.5 area).

The test of a variant against the base, per metric: the seeds both have non-collapsed are paired
(seed k with seed k); per image, the differences variant − base are averaged over those seeds; a
two-sided Wilcoxon signed-rank test (scipy) over images of those averages; Holm's correction across
the variants tested. With fewer than two paired seeds there is no p-value: a test over one training
run's images says nothing about the loss variant, only about that run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from actmatch.report.tables import COLLAPSED, spread_cell

__all__ = ["ABLATION_COLUMNS", "Variant", "load_ablations", "paired", "holm", "ablation_table", "sweeps"]

# the metrics Table 2 shows (every metric is in the summaries and per_image.csv)
ABLATION_COLUMNS: tuple[str, ...] = ("kept", "p_ratio", "area", "flip", "act_sim", "insertion_auc", "deletion_auc")
DIGITS = 3


@dataclass
class Variant:
    """One ablation variant: its summary, its per-image table over seeds (column ``seed``), its folder
    of seed folders and the first seed's resolved config."""

    name: str
    summary: dict
    per_image: pd.DataFrame
    folder: Path
    config: dict = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.summary.get("per_seed", {})) or sorted(
            int(s) for s in self.per_image["seed"].unique())

    @property
    def live(self) -> list[int]:
        """Seeds that did not collapse."""
        dead = {int(s) for s in self.summary.get("collapsed", [])}
        return [s for s in self.seeds if s not in dead]

    @property
    def all_collapsed(self) -> bool:
        return not self.live

    def seed_folder(self, seed: int | None = None) -> Path:
        """``<variant>/seed<k>/``: the given seed or the first one."""
        return self.folder / f"seed{self.seeds[0] if seed is None else seed}"


def _seed_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("seed*") if p.name[4:].isdigit() and (p / "per_image.csv").is_file()),
                  key=lambda p: int(p.name[4:]))


def _variants(folder: Path, names: list[str] | None = None) -> dict[str, Variant]:
    """The variants summarized in ``folder/*.json`` (only ``names`` when given: the grid params.yaml
    declares, so a summary left over from an earlier grid never reaches a table). A matched row whose
    base collapsed was not run (its summary says ``skipped``) and is left out."""
    out = {}
    files = sorted(folder.glob("*.json")) if names is None else [folder / f"{n}.json" for n in names]
    for summary in files:
        if not summary.is_file():
            raise FileNotFoundError(f"{summary} not found: run its ablation stage (dvc repro)")
        if "skipped" in json.loads(summary.read_text()):
            continue
        sub = folder / summary.stem
        dirs = _seed_dirs(sub)
        if not dirs:
            raise FileNotFoundError(f"{summary} has no seed folders {sub}/seed<k>/per_image.csv; rerun its stage")
        per_image = pd.concat([pd.read_csv(d / "per_image.csv", dtype={"id": str}) for d in dirs], ignore_index=True)
        cfg = yaml.safe_load((dirs[0] / "config.yaml").read_text()) if (dirs[0] / "config.yaml").is_file() else {}
        out[summary.stem] = Variant(summary.stem, json.loads(summary.read_text()), per_image, sub, cfg)
    return out


def load_ablations(folder: Path, grid: dict[str, tuple[list[str], list[str]]] | None = None
                   ) -> dict[str, dict[str, dict[str, Variant]]]:
    """``{pair: {"variants": {name: Variant}, "matched": {name: Variant}}}`` for every ``folder/<pair>/``
    holding variant summaries, or exactly the pairs and (variants, matched) names of ``grid``."""
    out = {}
    if grid is not None:
        for pair, (variants, matched) in grid.items():
            out[pair] = {"variants": _variants(Path(folder) / pair, variants),
                         "matched": _variants(Path(folder) / pair / "matched", matched) if matched else {}}
        return out
    for pair in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        variants = _variants(pair)
        if variants:
            out[pair.name] = {"variants": variants,
                              "matched": _variants(pair / "matched") if (pair / "matched").is_dir() else {}}
    return out


def paired(var: Variant, base: Variant, metric: str) -> tuple[list[int], np.ndarray, pd.Series]:
    """The seeds both have non-collapsed, the per-seed mean differences variant − base over the images
    both have (one per paired seed), and per image the difference averaged over those seeds."""
    seeds = sorted(set(var.live) & set(base.live))
    if not seeds or metric not in var.per_image or metric not in base.per_image:
        return seeds, np.array([]), pd.Series(dtype=float)

    def wide(v: Variant) -> pd.DataFrame:
        d = v.per_image[v.per_image["seed"].isin(seeds)]
        return d.pivot(index="id", columns="seed", values=metric).astype(float)

    a, b = wide(var), wide(base)
    ids = a.index.intersection(b.index)
    diff = a.loc[ids, seeds] - b.loc[ids, seeds]
    return seeds, diff.mean(axis=0).to_numpy(), diff.mean(axis=1).dropna()


def wilcoxon_p(diffs: np.ndarray, seeds: int) -> float:
    """Two-sided Wilcoxon signed-rank p over images; NaN with fewer than two paired seeds, fewer than
    two images or no nonzero difference."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    if seeds < 2 or len(d) < 2 or np.all(d == 0):
        return float("nan")
    return float(stats.wilcoxon(d).pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of the finite p-values (NaN stays NaN): the i-th smallest of m becomes
    max over j ≤ i of min(1, (m − j + 1) · p_(j))."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    idx = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - rank) * p[i]))
        out[i] = running
    return out


def ablation_table(variants: dict[str, Variant], base: str, metrics: Sequence[str] = ABLATION_COLUMNS,
                   area_target: bool = False) -> pd.DataFrame:
    """Table 2: the base first, then the variants by name. Per metric: the variant's value (mean over
    non-collapsed seeds ± sd across them), Δ = variant − base (mean ± sd over the paired seeds of the
    per-seed differences) and p_Holm (Wilcoxon over images of the seed-averaged differences, Holm
    across the variants with a p for that metric). Collapsed variants: "collapsed", no Δ, no p."""
    if base not in variants:
        raise KeyError(f"base variant {base!r} has no results; found {sorted(variants)}")
    ref = variants[base]
    names = [base] + sorted(k for k in variants if k != base)
    rows, raw = [], {m: [] for m in metrics}
    for name in names:
        v = variants[name]
        row: dict[str, object] = {"variant": name, "seeds": len(v.seeds), "collapsed": len(v.seeds) - len(v.live),
                                  "n": int(v.summary.get("n", v.per_image["id"].nunique()))}
        if area_target:
            t = v.summary.get("area_target")
            row["area target"] = f"{t:.3f}" if t is not None else "–"
        for m in metrics:
            s = v.summary.get("metrics", {}).get(m)
            row[m] = COLLAPSED if v.all_collapsed else "–" if s is None else spread_cell(s["mean"], s["sd"],
                                                                                          len(v.live), DIGITS)
            delta, p = "–", float("nan")
            if name != base and not v.all_collapsed:
                seeds, per_seed, per_image = paired(v, ref, m)
                if len(per_seed) and np.isfinite(per_seed).any():
                    fin = per_seed[np.isfinite(per_seed)]
                    delta = spread_cell(float(fin.mean()), float(fin.std(ddof=1)) if len(fin) > 1 else float("nan"),
                                        len(fin), DIGITS, sign=True)
                p = wilcoxon_p(per_image.to_numpy(), len(seeds))
            row[f"Δ {m}"] = delta
            raw[m].append(p)
        rows.append(row)
    for m in metrics:
        adj = holm(raw[m])
        for row, q in zip(rows, adj):
            row[f"p_Holm {m}"] = q
    cols = list(rows[0].keys())
    order = [c for c in cols if c not in {f"p_Holm {m}" for m in metrics}]
    for m in metrics:  # value, Δ, p next to each other
        i = order.index(f"Δ {m}") + 1
        order.insert(i, f"p_Holm {m}")
    return pd.DataFrame(rows)[order]


def sweeps(variants: dict[str, Variant | dict], base: str) -> dict[str, list[tuple[float, str]]]:
    """Weights swept one at a time: ``{term: [(weight, variant), ...]}`` sorted by weight, made of the
    variants whose loss differs from the base's in that one weight only (the base included)."""
    if base not in variants:
        return {}

    def loss(v: Variant | dict) -> dict:
        return (v.config if isinstance(v, Variant) else v["config"])["loss"]

    bl = loss(variants[base])
    found: dict[str, list[tuple[float, str]]] = {}
    for name, v in variants.items():
        lv = loss(v)
        if name == base or {k: x for k, x in lv.items() if k != "weights"} != {k: x for k, x in bl.items()
                                                                             if k != "weights"}:
            continue
        diff = [k for k in bl["weights"] if lv["weights"][k] != bl["weights"][k]]
        if len(diff) == 1:
            found.setdefault(diff[0], []).append((lv["weights"][diff[0]], name))
    return {t: sorted(pts + [(bl["weights"][t], base)]) for t, pts in found.items() if len(pts) >= 2}
