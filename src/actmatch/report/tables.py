"""Tables built from ``results/`` only (method.md §5), as DataFrames rendered to Markdown and LaTeX.

Table 1 (main results): methods × metrics, each cell ``mean [lo, hi]`` (95 % bootstrap interval),
with n and ms per explanation. Table 2 (ablations): variants × metrics, the difference from the
base variant and a paired two-sided Wilcoxon signed-rank p-value over the images both were
scored on (scipy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

__all__ = ["MAIN_COLUMNS", "ABLATION_COLUMNS", "CE_COLUMNS", "main_table", "ablation_table", "ce_table", "glance_table",
           "to_markdown", "to_latex"]

# metric key → column title, in table order
MAIN_COLUMNS: dict[str, str] = {"kept": "top-1 kept", "area": "area", "flip": "compl. flip",
                                "insertion_auc": "ins. AUC", "deletion_auc": "del. AUC", "act_sim": "act. sim.",
                                "p_star": "p*", "pointing": "pointing", "iou": "IoU"}
ABLATION_COLUMNS: tuple[str, ...] = ("kept", "area", "flip", "act_sim", "insertion_auc", "deletion_auc")
# our regimes first, then the baselines, then the controls; unknown names keep their order after these
METHOD_ORDER = ("ours:amortized", "ours:finetune", "ours:per_image", "ours:per_image_paper", "syce", "cyce",
                "syce_10class", "cyce_10class", "glance", "integrated_gradients",
                "occlusion", "extremal", "rise", "gradcam", "gradcam_pp", "random", "centre")


def _cell(s: dict[str, float], digits: int) -> str:
    if s["n"] == 0 or not np.isfinite(s["mean"]):
        return "–"
    return f"{s['mean']:.{digits}f} [{s['lo']:.{digits}f}, {s['hi']:.{digits}f}]"


def _ordered(names: Sequence[str]) -> list[str]:
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(names, key=lambda m: (rank.get(m, len(rank)), list(names).index(m)))


def main_table(metrics: dict, cost: dict | None = None, columns: dict[str, str] = MAIN_COLUMNS,
               digits: int = 2) -> pd.DataFrame:
    """One row per method from an evaluate metrics file (``{"methods": {m: {metric: mean_ci}}}``)
    and its cost (``{m: {"ms_per_explanation": ...}}``); metrics no method has (pointing without
    boxes) are left out, a metric one method lacks is "–"."""
    methods = metrics["methods"]
    present = [k for k in columns if any(k in v for v in methods.values())]
    rows = []
    for name in _ordered(list(methods)):
        vals = methods[name]
        row: dict[str, object] = {"method": name, "n": max(int(v["n"]) for v in vals.values())}
        row.update({columns[k]: _cell(vals[k], digits) if k in vals else "–" for k in present})
        if cost is not None and name in cost:
            ms = cost[name]["ms_per_explanation"]
            row["ms / expl."] = f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(per_image: dict[str, pd.DataFrame], base: str,
                   metrics: Sequence[str] = ABLATION_COLUMNS) -> pd.DataFrame:
    """Variants × metrics from per-image tables (``id`` + metric columns): the mean over the images
    shared with ``base``, the mean paired difference Δ and the Wilcoxon p-value (NaN for the base
    itself, with fewer than 2 finite pairs, or when every paired difference is zero)."""
    if base not in per_image:
        raise KeyError(f"base variant {base!r} has no results; found {sorted(per_image)}")
    ref = per_image[base].set_index("id")
    rows = []
    for name in [base] + sorted(k for k in per_image if k != base):
        d = per_image[name].set_index("id")
        common = d.index.intersection(ref.index)
        row: dict[str, object] = {"variant": name, "n": len(common)}
        for m in metrics:
            a, b = d.loc[common, m].to_numpy(float), ref.loc[common, m].to_numpy(float)
            diff = a - b
            ok = np.isfinite(diff)
            row[m] = float(np.nanmean(a)) if len(a) else float("nan")
            row[f"Δ {m}"] = float(diff[ok].mean()) if ok.any() else float("nan")
            if name == base or ok.sum() < 2 or np.all(diff[ok] == 0):
                row[f"p {m}"] = float("nan")
            else:
                row[f"p {m}"] = float(stats.wilcoxon(a[ok], b[ok]).pvalue)
        rows.append(row)
    return pd.DataFrame(rows)


# SyCE / CyCE's own metrics (method.md §8.1), from results/ce/<run>.json
CE_COLUMNS: dict[str, str] = {"flip": "flip", "hit_target": "hit target", "stable": "stable", "l1": "L1",
                              "fd_adv": "FD adv.", "fd_stable": "FD similar", "js_adv": "JS adv.",
                              "js_stable": "JS similar"}


def ce_table(runs: dict[str, dict]) -> pd.DataFrame:
    """One row per (run, method) from the train_ce metrics files ``{run: {"classifier", "dataset",
    "num_classes", "methods": {method: {metric: value}}}}``: the authors' metrics of the generated
    images, the epochs (best / run) and the training minutes. ``setting`` says whose it is."""
    rows = []
    for run, d in runs.items():
        for m, v in d["methods"].items():
            row: dict[str, object] = {"run": run, "method": m,
                                      "setting": "authors' (binary)" if d["num_classes"] == 2
                                      else f"ours ({d['num_classes']}-class ext.)", "n": int(v["n"])}
            row.update({title: v.get(k, float("nan")) for k, title in CE_COLUMNS.items()})
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


def _blank_nan(df: pd.DataFrame) -> pd.DataFrame:
    """NaN (no test, no value) prints as "–" rather than "nan"."""
    return df.astype(object).where(df.notna(), None)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    return tabulate(_blank_nan(df), headers="keys", tablefmt="github", showindex=False, floatfmt=floatfmt,
                    missingval="–") + "\n"


def to_latex(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    return tabulate(_blank_nan(df), headers="keys", tablefmt="latex_booktabs", showindex=False, floatfmt=floatfmt,
                    missingval="–") + "\n"
