"""Tables built from ``results/`` only (method.md §5), as DataFrames rendered to Markdown and LaTeX.

Table 1 (main results, one per evaluated group): methods × metrics from ``results/metrics/<group>.json``.
A cell is the mean over the method's non-collapsed seeds of each seed's mean over images, ``± sd
(min–max)`` across those seeds, then ``[lo, hi]``, the 95 % bootstrap interval over images of the
per-image means over seeds; a method with one run shows ``mean [lo, hi]``. ``top-1 kept`` is over the
non-trivial images (issue 27: an image whose label the fill alone already gets is "kept" by an empty
mask), ``kept (all)`` beside it over every image, and ``trivial`` the share of trivial images.
Beside ``kept``: the confidence retention p_ratio = p_e(y) / p_x(y) (median and share ≥ 0.5 over every
(non-collapsed seed, image) pair of ``per_image.csv``) and a flag where the label is kept on most
images but with under a tenth of its confidence. A method whose every seed collapsed shows
"collapsed (<direction>)", never a number; ``notes`` names the classes that collapsed within a seed and
the seeds that did not converge. Table 2 (ablations) is in :mod:`actmatch.report.ablations`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from actmatch.baselines import BASELINES

__all__ = ["MAIN_COLUMNS", "SYCE_COLUMNS", "KEPT_HIGH", "LOW_RATIO", "main_table", "ratio_stats", "method_label",
           "ordered", "seed_cell", "spread_cell", "live_seeds", "headline_table", "syce_table", "glance_table",
           "to_markdown", "to_latex", "cells", "render", "collapsed_cell", "notes_cell", "seeds_text", "class_name",
           "collapse_label"]

# metric key → column title, in table order (after kept and the p_ratio columns); "kept" is over the
# non-trivial images (metric kept_nontrivial), "kept (all)" over every image
MAIN_COLUMNS: dict[str, str] = {"kept": "top-1 kept", "area": "area", "flip": "compl. flip",
                                "insertion_auc": "ins. AUC", "deletion_auc": "del. AUC", "act_sim": "act. sim.",
                                "p_star": "p*", "pointing": "pointing", "iou": "IoU"}
DIGITS = {"area": 3}  # areas near the paper's 2–5 % need a third decimal
KEPT_HIGH = 0.9       # the flag: kept on at least this share of images ...
LOW_RATIO = 0.1       # ... but p_ratio below this on more than half of the (seed, image) pairs
FLAG = "⚠ kept, p_ratio < 0.1"
COLLAPSED = "collapsed"
# Table order comes from the registries, not a list (ordered()): our regimes, the other frameworks, the
# baselines in BASELINES' order, the controls (baselines marked ``control``) last.
CONTROLS = tuple(n for n, cls in BASELINES.items() if cls.control)
OUR_REGIMES = ("amortized", "finetune", "per_image")  # then the per_image_<variant> regimes, in their given order


def _f(x: float, digits: int, sign: bool = False) -> str:
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _num(x: float, digits: int = 2) -> str:
    return _f(x, digits) if np.isfinite(x) else "–"


def live_seeds(entry: dict) -> int:
    """Seeds that count: run minus collapsed."""
    return int(entry.get("seeds", 1)) - len(entry.get("collapsed", []))


def seed_cell(s: dict[str, float], seeds: int, digits: int = 2) -> str:
    """``mean ± sd (min–max) [lo, hi]`` (``mean [lo, hi]`` with one seed); "–" without finite values."""
    if not s or s.get("n", 0) == 0 or not np.isfinite(s["mean"]):
        return "–"
    out = _f(s["mean"], digits)
    if seeds > 1:
        out += f" ± {_f(s['sd'], digits)} ({_f(s['min'], digits)}–{_f(s['max'], digits)})"
    return out + f" [{_f(s['lo'], digits)}, {_f(s['hi'], digits)}]"


def spread_cell(mean: float, sd: float, seeds: int, digits: int = 2, sign: bool = False) -> str:
    """``mean ± sd`` across seeds (``mean`` alone with one seed); "–" when not finite."""
    if not np.isfinite(mean):
        return "–"
    return _f(mean, digits, sign) + (f" ± {_f(sd, digits)}" if seeds > 1 and np.isfinite(sd) else "")


def ordered(names: Sequence[str]) -> list[str]:
    """Table order from the registries: ours first (``OUR_REGIMES``, then the other per-image regimes), then
    the other frameworks (a name that is neither ours nor a registered baseline: SyCE/CyCE, GLANCE), then the
    baselines in :data:`actmatch.baselines.BASELINES` order, the controls last; ties keep the given order, and
    every ``X_last`` comes right after ``X`` (the selected row and what selection buys side by side). A new
    baseline lands among the baselines by registering it."""
    names = list(names)
    controls = [n for n, cls in BASELINES.items() if cls.control]  # plugins register after import: read now
    rank_b = {n: i for i, n in enumerate([n for n in BASELINES if n not in controls] + controls)}

    def key(m: str) -> tuple[int, int, int]:
        base = m.removesuffix("_last")
        if m.startswith("ours:"):
            regime = base.removeprefix("ours:")
            return 0, OUR_REGIMES.index(regime) if regime in OUR_REGIMES else len(OUR_REGIMES), names.index(m)
        if base not in BASELINES:
            return 1, 0, names.index(m)
        return (3 if base in controls else 2), rank_b[base], names.index(m)

    out = sorted(names, key=key)
    for m in [m for m in out if m.endswith("_last") and m.removesuffix("_last") in out]:
        out.remove(m)
        out.insert(out.index(m.removesuffix("_last")) + 1, m)
    return out


def method_label(name: str, methods: dict[str, dict]) -> str:
    """The method's name, marked "(selected on kept)" or, for the last mask of such a row, "(last mask)"."""
    if methods[name].get("selected_on_kept"):
        return f"{name} (selected on kept)"
    base = name.removesuffix("_last")
    if name != base and methods.get(base, {}).get("selected_on_kept"):
        return f"{name} (last mask)"
    return name


def ratio_stats(per_image: pd.DataFrame | None, method: str, collapsed: Sequence[int] = ()) -> dict[str, float]:
    """p_ratio over every (seed, image) pair of ``method`` whose seed did not collapse: ``median``,
    ``share_half`` (share ≥ 0.5), ``share_low`` (share < :data:`LOW_RATIO`) and ``n`` pairs."""
    nan = {"median": float("nan"), "share_half": float("nan"), "share_low": float("nan"), "n": 0}
    if per_image is None or "p_ratio" not in per_image:
        return nan
    d = per_image[per_image["method"] == method]
    if "seed" in d:
        d = d[~d["seed"].isin(list(collapsed))]
    r = d["p_ratio"].to_numpy(np.float64)
    r = r[np.isfinite(r)]
    if not len(r):
        return nan
    return {"median": float(np.median(r)), "share_half": float(np.mean(r >= 0.5)),
            "share_low": float(np.mean(r < LOW_RATIO)), "n": int(len(r))}


def _n_images(entry: dict, per_image: pd.DataFrame | None, name: str) -> int:
    """Images scored: from ``per_image.csv`` (counts a row whose seeds all collapsed too), else the metrics' n."""
    if per_image is not None and "id" in per_image and (per_image["method"] == name).any():
        return int(per_image.loc[per_image["method"] == name, "id"].nunique())
    return max([int(v["n"]) for v in entry["metrics"].values()] or [0])


def seeds_text(seeds: Sequence[int]) -> str:
    """``"seed 0"`` or ``"seeds 0, 2"``."""
    seeds = list(seeds)
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def class_name(c: int, names: Sequence[str] | None) -> str:
    return str(names[c]) if names is not None and 0 <= c < len(names) else str(c)


def collapse_label(entry: dict) -> str:
    """``collapsed (empty)`` / ``collapsed (full)`` / ``collapsed (mixed)``, or both directions when the seeds
    differ (``collapsed (empty: seed 0; full: seeds 1, 2)``); plain ``collapsed`` when the direction is unknown."""
    dirs = {int(k): v for k, v in entry.get("collapsed_direction", {}).items() if v}
    if not dirs:
        return COLLAPSED
    kinds = sorted(set(dirs.values()))
    if len(kinds) == 1:
        return f"{COLLAPSED} ({kinds[0]})"
    return f"{COLLAPSED} (" + "; ".join(f"{k}: {seeds_text([s for s, v in sorted(dirs.items()) if v == k])}"
                                        for k in kinds) + ")"


def collapsed_cell(entry: dict) -> object:
    """The seeds that collapsed: ``0``, or their count with each seed's direction (``1 (seed 0 empty)``)."""
    dead = [int(s) for s in entry.get("collapsed", [])]
    if not dead:
        return 0
    dirs = entry.get("collapsed_direction", {})
    if not dirs:
        return len(dead)
    return f"{len(dead)} (" + ", ".join(f"seed {s} {dirs.get(str(s)) or ''}".strip() for s in dead) + ")"


def notes_cell(entry: dict, names: Sequence[str] | None = None) -> str:
    """What a row's claim leaves out beyond whole collapsed seeds: classes collapsed within a seed
    (``class 3 empty, seeds 0, 2``) and seeds whose run did not converge (``not converged: seeds 0, 1, 2``)."""
    parts = [f"class {class_name(int(c['class']), names)} {c['direction']}, {seeds_text(c['seeds'])}"
             for c in entry.get("class_collapsed", [])]
    if entry.get("not_converged"):
        parts.append(f"not converged: {seeds_text(entry['not_converged'])}")
    return "; ".join(parts)


def _share(entry: dict) -> str:
    t = entry.get("trivial")
    return "–" if t is None or not np.isfinite(t) else f"{t:.2f}"


def main_table(metrics: dict, cost: dict | None = None, per_image: pd.DataFrame | None = None,
               columns: dict[str, str] = MAIN_COLUMNS, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 1: one row per method of an evaluate metrics file (``{"methods": {m: {"seeds", "collapsed",
    "collapsed_direction", "class_collapsed", "not_converged", "trivial", "selected_on_kept", "metrics":
    {metric: {mean, lo, hi, n, sd, min, max}}}}}``), its cost (``{m: {"ms_per_explanation"}}``) and its
    ``per_image.csv`` (for p_ratio). ``top-1 kept`` is the metric ``kept_nontrivial`` and ``kept (all)`` the
    metric ``kept`` (a file written before trivial images were told apart has ``kept`` alone, shown as it is). Metrics no method has (pointing without boxes)
    are left out; a metric one method lacks is "–". ``class_names`` name the classes in ``notes``."""
    methods = metrics["methods"]
    present = [k for k in columns if any(k in v["metrics"] for v in methods.values())]
    trivial = any("trivial" in v for v in methods.values())
    nontrivial = any("kept_nontrivial" in v["metrics"] for v in methods.values())  # absent: a file from before
    rows = []
    for name in ordered(list(methods)):
        e = methods[name]
        seeds, dead = live_seeds(e), seeds_all_collapsed(e)
        gone = collapse_label(e) if dead else ""
        rs = ratio_stats(per_image, name, e.get("collapsed", []))
        row: dict[str, object] = {"method": method_label(name, methods), "seeds": int(e.get("seeds", 1)),
                                  "collapsed": collapsed_cell(e), "n": _n_images(e, per_image, name)}
        if trivial:
            row["trivial"] = _share(e)
        for k in present:
            cell = (gone if dead else seed_cell(e["metrics"][k], seeds, DIGITS.get(k, 2))
                    if k in e["metrics"] else "–")
            if k == "kept":
                row[columns[k]] = gone if dead else seed_cell(e["metrics"].get("kept_nontrivial", {}), seeds) \
                    if nontrivial else cell
                if nontrivial:
                    row["kept (all)"] = cell
                row["p_ratio med."] = gone if dead else _num(rs["median"])
                row["p_ratio ≥ 0.5"] = gone if dead else _num(rs["share_half"])
                kept = e["metrics"].get("kept", {}).get("mean", float("nan"))
                row["flag"] = FLAG if (not dead and kept >= KEPT_HIGH and rs["share_low"] > 0.5) else ""
                continue
            row[columns[k]] = cell
        if cost is not None and name in cost:
            ms = cost[name]["ms_per_explanation"]
            row["ms / expl."] = f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"
        row["notes"] = notes_cell(e, class_names)
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.drop(columns="notes") if "notes" in df and not df["notes"].astype(bool).any() else df


def seeds_all_collapsed(entry: dict) -> bool:
    return int(entry.get("seeds", 1)) > 0 and live_seeds(entry) <= 0


HEADLINE_METRICS = {"kept": "kept", "area": "area", "insertion_auc": "ins. AUC", "deletion_auc": "del. AUC"}


def headline_table(metrics: dict, per_image: pd.DataFrame | None, baselines: int = 2,
                   max_rows: int = 6) -> pd.DataFrame:
    """The README's small table: our regimes (not their last-mask rows) and the ``baselines`` baselines
    with the highest kept on the non-trivial images (then insertion AUC), as ``mean ± sd`` across seeds,
    p_ratio's median, seeds, ``n`` (the images each row was scored on; "–" when every seed collapsed) and
    ``trivial`` (the share of images the fill alone already gives their label: ``kept`` leaves them out).
    A row whose run did not converge says so after its name."""
    methods = metrics["methods"]
    ours = [m for m in ordered(list(methods)) if m.startswith("ours:") and not m.endswith("_last")]
    others = [m for m in methods if not m.startswith("ours:") and m not in CONTROLS
              and m not in ("glance",) and not m.startswith(("syce", "cyce"))]
    kept_key = "kept_nontrivial" if any("kept_nontrivial" in v["metrics"] for v in methods.values()) else "kept"

    def score(m: str) -> tuple[float, ...]:
        return tuple(-methods[m]["metrics"].get(k, {}).get("mean", -1.0) for k in (kept_key, "insertion_auc"))

    best = sorted((m for m in others if not seeds_all_collapsed(methods[m])), key=score)[:baselines]
    rows = []
    for name in (ours + best)[:max_rows]:
        e = methods[name]
        dead, k = seeds_all_collapsed(e), live_seeds(e)
        n = int(e["metrics"].get("kept", {}).get("n", 0))  # images scored (the per-image regimes: a subset)
        label = method_label(name, methods) + (f" ({seeds_text(e['not_converged'])} not converged)"
                                               if e.get("not_converged") else "")
        row: dict[str, object] = {"method": label, "seeds": int(e.get("seeds", 1)), "n": n if n else "–"}
        if "trivial" in e:
            row["trivial"] = _share(e)
        gone = collapse_label(e)
        for key, title in HEADLINE_METRICS.items():
            s = e["metrics"].get(kept_key if key == "kept" else key)
            row[title] = gone if dead else "–" if s is None else spread_cell(s["mean"], s["sd"], k,
                                                                              DIGITS.get(key, 2))
            if key == "kept":
                row["p_ratio med."] = gone if dead else _num(ratio_stats(per_image, name,
                                                                         e.get("collapsed", []))["median"])
        rows.append(row)
    return pd.DataFrame(rows)


# SyCE / CyCE's own metrics (method.md §8.1), from results/syce/<run>.json
SYCE_COLUMNS: dict[str, str] = {"flip": "flip", "hit_target": "hit target", "stable": "stable", "l1": "L1",
                                "fd_adv": "FD adv.", "fd_stable": "FD similar", "js_adv": "JS adv.",
                                "js_stable": "JS similar"}


def syce_table(runs: dict[str, dict]) -> pd.DataFrame:
    """One row per (run, method) from the train_syce metrics files ``{run: {"classifier", "dataset",
    "num_classes", "methods": {method: {metric: value}}}}``: the authors' metrics of the generated
    images, the epochs (best / run) and the training minutes. ``setting`` says whose it is."""
    rows = []
    for run, d in runs.items():
        for m, v in d["methods"].items():
            row: dict[str, object] = {"run": run, "method": m,
                                      "setting": "authors' (binary)" if d["num_classes"] == 2
                                      else f"ours ({d['num_classes']}-class ext.)", "n": int(v["n"])}
            row.update({title: v.get(k, float("nan")) for k, title in SYCE_COLUMNS.items()})
            row["epochs (best / run)"] = f"{v['best_epoch']} / {v['epochs_run']}"
            row["train min"] = v["train_minutes"]
            rows.append(row)
    return pd.DataFrame(rows)


def glance_table(runs: dict[str, dict]) -> pd.DataFrame:
    """One row per train_glance metrics file: surrogate fidelity, alignment R² per context feature,
    graph recovery where the dataset knows its graph (SHD, precision, recall; on the measured
    features and, as a check of the learner, on the drawn causes), counterfactuals, time."""
    rows = []
    for run, d in runs.items():
        row: dict[str, object] = {"run": run, "n test": int(d["n_test"]), "fidelity": d["fidelity"]}
        row.update({f"R² {k}": v for k, v in d["alignment_r2"].items()})
        row["R² mean"] = d["alignment_r2_mean"]
        for key, tag in (("graph_recovery", ""), ("graph_recovery_drawn_causes", " (drawn)")):
            g = d.get(key, {})
            for k in ("shd", "precision", "recall"):
                row[f"{k.upper() if k == 'shd' else k}{tag}"] = g.get(k, float("nan"))
        row["edges"] = len(d["graph_edges"])
        row["CF found"] = d["counterfactual_found"]
        row["CF median |δ|"] = d["counterfactual_median_abs_delta"]
        row["train min"] = d["train_minutes"]
        rows.append(row)
    return pd.DataFrame(rows)


def cells(df: pd.DataFrame, floatfmt: str = ".3g") -> pd.DataFrame:
    """Every cell as the text the tables show: floats with ``floatfmt``, NaN/None as "–", text as it is
    (never re-parsed as a number: "1,234" ms stays "1,234", "0.70" stays "0.70")."""
    def one(v: object) -> str:
        if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
            return "–"
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v)
    return pd.DataFrame({c: [one(v) for v in df[c]] for c in df.columns}, columns=list(df.columns))


def render(df: pd.DataFrame, tablefmt: str, floatfmt: str = ".3g") -> str:
    return tabulate(cells(df, floatfmt), headers="keys", tablefmt=tablefmt, showindex=False, disable_numparse=True)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """GitHub Markdown; a "|" inside a header or cell (e.g. "CF median |δ|") is escaped."""
    d = cells(df, floatfmt)
    d = pd.DataFrame({c.replace("|", "\\|"): [v.replace("|", "\\|") for v in d[c]] for c in d.columns})
    return tabulate(d, headers="keys", tablefmt="github", showindex=False, disable_numparse=True) + "\n"


def to_latex(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    return render(df, "latex_booktabs", floatfmt) + "\n"
