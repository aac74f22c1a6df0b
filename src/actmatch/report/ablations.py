"""Table 2 (ablations) from ``results/ablations/<classifier>-<dataset>/`` (method.md §5).

Each variant has a summary ``<variant>.json`` (``seeds``, ``collapsed``, ``metrics``: mean over the
non-collapsed seeds ± sd, min–max, per-image 95 % interval) and per seed ``<variant>/seed<k>/``
(``per_image.csv``, ``masks.npz``, ``config.yaml``). The *matched* rows (``matched/<variant>.json`` and
``matched/<variant>/seed<k>/``) were trained with the area term as a target at the base's median area
and binarized at exactly that area (``area_own``: their own soft > 0.5 area).

A variant against the base, per metric (issue 27: the replicate of a loss-term effect is the training
run, not the image): the seeds both have non-collapsed are paired (seed k with seed k); per paired seed
Δ_k = the variant's mean minus the base's over the images both have; the table shows the mean of the
Δ_k ± their sd, a 95 % interval from a two-level bootstrap (seeds with replacement, then images with
replacement within each drawn seed: :func:`~actmatch.metrics.aggregate.seed_image_bootstrap`; none with
fewer than two paired seeds), and ``sign``, how many paired seeds agree with the sign of the mean. No
p-value: a test over images would treat the images of a few runs as independent replicates of the loss
variant. The variant's value beside Δ is over the same paired seeds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from actmatch.metrics.aggregate import seed_image_bootstrap
from actmatch.report.tables import collapse_label, collapsed_cell, notes_cell, spread_cell

__all__ = ["ABLATION_COLUMNS", "Variant", "load_ablations", "paired", "seed_effect", "ablation_table", "sweeps"]

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


def paired(var: Variant, base: Variant, metric: str) -> tuple[list[int], np.ndarray, list[np.ndarray]]:
    """The seeds both have non-collapsed, the per-seed mean differences variant − base over the images
    both have (one per paired seed), and per paired seed the per-image differences."""
    seeds = sorted(set(var.live) & set(base.live))
    if not seeds or metric not in var.per_image or metric not in base.per_image:
        return seeds, np.array([]), []

    def wide(v: Variant) -> pd.DataFrame:
        d = v.per_image[v.per_image["seed"].isin(seeds)]
        return d.pivot(index="id", columns="seed", values=metric).astype(float)

    a, b = wide(var), wide(base)
    ids = a.index.intersection(b.index)
    diff = a.loc[ids, seeds] - b.loc[ids, seeds]
    return seeds, diff.mean(axis=0).to_numpy(), [diff[s].to_numpy() for s in seeds]


def seed_effect(per_seed: np.ndarray, per_image: list[np.ndarray], n_resamples: int = 1000,
                seed: int = 0) -> dict[str, float | int]:
    """Δ over paired seeds: ``mean`` and ``sd`` of the per-seed differences, the two-level bootstrap
    interval ``lo``/``hi`` (NaN with one seed), ``agree`` (seeds whose Δ has the mean's sign) of ``k``."""
    d = np.asarray(per_seed, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return {"mean": float("nan"), "sd": float("nan"), "lo": float("nan"), "hi": float("nan"), "agree": 0, "k": 0}
    mean = float(d.mean())
    lo, hi = seed_image_bootstrap(per_image, n_resamples, seed)
    return {"mean": mean, "sd": float(d.std(ddof=1)) if len(d) > 1 else float("nan"), "lo": lo, "hi": hi,
            "agree": int(np.sum(np.sign(d) == np.sign(mean))), "k": int(len(d))}


def _value(v: Variant, metric: str, seeds: list[int]) -> tuple[float, float]:
    """The variant's value over ``seeds``: the mean of the per-seed means over images, and their sd."""
    d = v.per_image[v.per_image["seed"].isin(seeds)]
    if metric not in d or d.empty:
        return float("nan"), float("nan")
    by_seed = d.groupby("seed")[metric].mean().to_numpy(np.float64)
    by_seed = by_seed[np.isfinite(by_seed)]
    if not len(by_seed):
        return float("nan"), float("nan")
    return float(by_seed.mean()), float(by_seed.std(ddof=1)) if len(by_seed) > 1 else float("nan")


def _delta_cell(e: dict) -> str:
    if not np.isfinite(e["mean"]):
        return "–"
    out = spread_cell(e["mean"], e["sd"], e["k"], DIGITS, sign=True)
    return out + (f" [{e['lo']:+.{DIGITS}f}, {e['hi']:+.{DIGITS}f}]" if np.isfinite(e["lo"]) else "")


def ablation_table(variants: dict[str, Variant], base: str, metrics: Sequence[str] = ABLATION_COLUMNS,
                   area_target: bool = False, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table 2: the base first, then the variants by name. Per variant: seeds run, the collapsed ones with
    their direction, the seeds paired with the base; per metric the variant's value over the paired seeds
    (the base: over its non-collapsed seeds), ``Δ`` = mean ± sd over the paired seeds of the per-seed
    differences with the two-level bootstrap interval, and ``sign`` = paired seeds agreeing with the sign
    of the mean Δ (e.g. ``2/3``). A variant with every seed collapsed shows ``collapsed (<direction>)``;
    ``notes`` names classes that collapsed within a seed."""
    if base not in variants:
        raise KeyError(f"base variant {base!r} has no results; found {sorted(variants)}")
    ref = variants[base]
    names = [base] + sorted(k for k in variants if k != base)
    rows = []
    for name in names:
        v = variants[name]
        seeds = list(v.live) if name == base else sorted(set(v.live) & set(ref.live))
        row: dict[str, object] = {"variant": name, "seeds": len(v.seeds), "collapsed": collapsed_cell(v.summary),
                                  "paired seeds": ", ".join(map(str, seeds)) or "–",
                                  "n": int(v.summary.get("n", v.per_image["id"].nunique()))}
        if area_target:
            t = v.summary.get("area_target")
            row["area target"] = f"{t:.3f}" if t is not None else "–"
        gone = collapse_label(v.summary) if v.all_collapsed else ""
        for m in metrics:
            mean, sd = _value(v, m, seeds)
            row[m] = gone or ("–" if m not in v.per_image else spread_cell(mean, sd, len(seeds), DIGITS))
            row[f"Δ {m}"], row[f"sign {m}"] = "–", "–"
            if name != base and not gone:
                _, per_seed, per_image = paired(v, ref, m)
                e = seed_effect(per_seed, per_image, n_resamples, seed)
                row[f"Δ {m}"] = _delta_cell(e)
                row[f"sign {m}"] = f"{e['agree']}/{e['k']}" if e["k"] else "–"
        row["notes"] = notes_cell(v.summary)
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.drop(columns="notes") if not df["notes"].astype(bool).any() else df


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
