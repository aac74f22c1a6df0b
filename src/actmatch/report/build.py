"""The report stage's work: read what the pipeline stored and write every table and figure into
one folder, plus one self-contained HTML page (images embedded, no external reference).

Reads ``results/metrics`` (Table 1, curves), ``results/ablations`` (Table 2, Figure 2, Figure 3),
``results/explainers`` (masks and summaries for Figure 1, training curves; SyCE/CyCE's generated
images and maps under ``<group>/ce/``), ``results/ce`` (SyCE/CyCE's own metrics) and, because
results store masks and not pixels, the images themselves from ``data/<dataset>``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from actmatch.data import load_dataset
from actmatch.core.figures import curves_plot, save_figure, training_curves
from actmatch.report.paper import CEExample, CFExample, Example, ce_figure, glance_cf_figure, glance_graph_figure, \
    glance_strips_figure, sweep_figure, tradeoff_figure, triplet_figure
from actmatch.report.tables import ablation_table, ce_table, glance_table, main_table, to_latex, to_markdown

__all__ = ["build_report", "load_ablations", "sweeps", "html_page"]

log = logging.getLogger(__name__)
CONTROLS = ("random", "centre")


def _image(ds, i: int) -> np.ndarray:
    a = np.asarray(ds.images[i])
    return a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a


def load_ablations(folder: Path) -> dict[str, dict[str, dict]]:
    """``{pair: {variant: {"per_image": DataFrame, "config": dict, "masks": npz dict}}}``."""
    out: dict[str, dict[str, dict]] = {}
    for cfg_path in sorted(folder.glob("*/*/config.yaml")):
        d = cfg_path.parent
        with np.load(d / "masks.npz") as z:
            masks = {k: z[k] for k in z.files}
        out.setdefault(d.parent.name, {})[d.name] = {"per_image": pd.read_csv(d / "per_image.csv", dtype={"id": str}),
                                                     "config": yaml.safe_load(cfg_path.read_text()), "masks": masks}
    return out


def sweeps(variants: dict[str, dict], base: str) -> dict[str, list[tuple[float, str]]]:
    """Weights swept one at a time: ``{term: [(weight, variant), ...]}`` sorted by weight, made of the
    variants whose loss differs from the base's in that one weight only (the base included)."""
    if base not in variants:
        return {}
    bl = variants[base]["config"]["loss"]
    found: dict[str, list[tuple[float, str]]] = {}
    for name, v in variants.items():
        loss = v["config"]["loss"]
        if name == base or {k: x for k, x in loss.items() if k != "weights"} != {k: x for k, x in bl.items()
                                                                               if k != "weights"}:
            continue
        diff = [k for k in bl["weights"] if loss["weights"][k] != bl["weights"][k]]
        if len(diff) == 1:
            found.setdefault(diff[0], []).append((loss["weights"][diff[0]], name))
    return {t: sorted(pts + [(bl["weights"][t], base)]) for t, pts in found.items() if len(pts) >= 2}


def _examples(explainers: Path, group: str, ds, n: int) -> tuple[str, list[Example]]:
    regime = "amortized" if (explainers / group / "amortized").is_dir() else "per_image"
    folder = explainers / group / ("amortized" if regime == "amortized" else regime)
    summary = pd.read_csv(folder / "summary.csv", dtype={"id": str})
    summary = summary[summary["regime"] == regime]
    with np.load(folder / "masks.npz") as z:
        ids, hard = [str(i) for i in z["ids"]], z[f"{regime}_hard"]
    row = {str(k): i for i, k in enumerate(ds.index["id"])}
    out = []
    for j, i in enumerate(ids[:n]):
        s = summary[summary["id"] == i].iloc[0]
        out.append(Example(_image(ds, row[i]), hard[j], str(s["class_name"])[:18],
                           f"area {100 * s['area']:.1f} %\np {s['p_x']:.2f} → {s['p_e']:.2f}"))
    return regime, out


def _ce_examples(folder: Path, ds, n: int) -> list[CEExample]:
    """``n`` test images with SyCE/CyCE outputs (every variant in ``folder``), one per predicted class first."""
    found = {}
    for sub in sorted(p for p in folder.iterdir() if (p / "maps.npz").is_file()):
        name = yaml.safe_load((sub / "config.yaml").read_text())["method"]
        with np.load(sub / "maps.npz") as z:
            found[name] = {k: z[k] for k in ("ids", "map", "x_a", "x_st", "c", "t", "flip", "stable")}
    if not found:
        return []
    first = next(iter(found.values()))
    names = ds.class_names or [str(k) for k in range(int(first["c"].max()) + 1)]
    row = {str(k): i for i, k in enumerate(ds.index["id"])}
    # one image per predicted class first (test sets are stored sorted by class), then the rest in order
    order = list(dict.fromkeys([int(np.flatnonzero(first["c"] == c)[0]) for c in np.unique(first["c"])]))
    order += [j for j in range(len(first["ids"])) if j not in order]
    out = []
    for j, i in [(j, str(first["ids"][j])) for j in order[:n]]:
        panels = {}
        for m, d in found.items():
            sq = lambda a: a[..., 0] if a.shape[-1] == 1 else a  # noqa: E731
            caption = f"{'stable' if d['stable'][j] else 'not stable'}, {'flips' if d['flip'][j] else 'no flip'}"
            panels[m] = (sq(d["x_st"][j]), sq(d["x_a"][j]), d["map"][j].astype(np.float32), caption)
        c, t = int(first["c"][j]), int(first["t"][j])
        out.append(CEExample(_image(ds, row[i]), f"{names[c]} → {names[t]}", panels))
    return out


def _glance_examples(folder: Path, ds, n: int) -> list[CFExample]:
    """Counterfactual rows: one test image per label first (the sets are stored sorted by class), those
    with a counterfactual before those without."""
    with np.load(folder / "maps.npz") as z:
        d = {k: z[k] for k in z.files}
    names = ds.class_names or [str(k) for k in range(int(d["y"].max()) + 1)]
    nodes = [str(v) for v in d["nodes"]]
    row = {str(k): i for i, k in enumerate(ds.index["id"])}
    found = d["cf_node"] >= 0
    order = [int(np.flatnonzero((d["y"] == c) & found)[0]) for c in np.unique(d["y"][found])]
    order += [j for j in range(len(d["ids"])) if j not in order]
    out = []
    for j in order[:n]:
        k, delta = int(d["effect_node"][j]), float(d["effect_delta"][j])
        what = (f"do({nodes[k]} {delta:+g} SD):\n{names[int(d['y_hat'][j])]} → {names[int(d['cf_label'][j])]}"
                if found[j] else f"no flip; do({nodes[k]} {delta:+g} SD)")
        out.append(CFExample(_image(ds, row[str(d["ids"][j])]), d["x_hat"][j], d["x_cf"][j],
                             d["map"][j].astype(np.float32), f"{names[int(d['y'][j])]}\n{what}"))
    return out


def _glance_section(results: Path, data: Path, runs: dict[str, dict], n: int, table, figure) -> list[Path]:
    files = table("table_glance", glance_table(runs))
    for run, d in runs.items():
        folder = results / "explainers" / run / "glance"
        weights = pd.read_csv(folder / "graph.csv", index_col=0)
        rec = d.get("graph_recovery")
        extra = f"; SHD {rec['shd']} on {', '.join(rec['variables'])}" if rec else ""
        files += figure(f"fig_glance_graph_{run}", glance_graph_figure(
            weights, f"GLANCE (our reconstruction): graph learned for {d['classifier']} on {d['dataset']}{extra}"))
        with np.load(folder / "strips.npz") as z:
            files += figure(f"fig_glance_strips_{run}", glance_strips_figure(
                z["x"], z["strips"], z["deltas"].tolist(), [str(f) for f in z["features"]],
                f"GLANCE on {d['classifier']}: do(feature += δ SD), propagated and decoded"))
        ex = _glance_examples(folder, load_dataset(data / d["dataset"]), n)
        files += figure(f"fig_glance_cf_{run}", glance_cf_figure(
            ex, f"GLANCE on {d['classifier']}: smallest flipping intervention and its effect map"))
    return files


def _training(live: Path) -> dict[str, list[float]]:
    curves = {}
    for f in sorted(live.glob("plots/metrics/*/*.tsv")):
        curves[f.stem] = pd.read_csv(f, sep="\t")[f.stem].tolist()
    return curves


def build_report(results: Path, data: Path, out: Path, examples: int = 6, sweep_image: int = 0,
                 ablation_base: str = "base", dpi: int = 110, ce_examples: int = 4,
                 glance_examples: int = 4) -> list[Path]:
    """Write every table (``.md`` + ``.tex``) and figure (``.png`` + ``.pdf``) into ``out`` and the
    page ``report.html``; returns the files written, in page order."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sections: list[tuple[str, list[Path]]] = []

    def table(name: str, df: pd.DataFrame, floatfmt: str = ".3g") -> list[Path]:
        (out / f"{name}.md").write_text(to_markdown(df, floatfmt))
        (out / f"{name}.tex").write_text(to_latex(df, floatfmt))
        return [out / f"{name}.md", out / f"{name}.tex"]

    def figure(name: str, fig) -> list[Path]:
        paths = [out / f"{name}.png", out / f"{name}.pdf"]
        save_figure(fig, *paths, dpi=dpi)
        return paths

    groups = sorted(p.stem for p in (results / "metrics").glob("*.json"))
    ce_runs = {p.stem: json.loads(p.read_text()) for p in sorted((results / "ce").glob("*.json"))}
    glance_runs = {p.stem: json.loads(p.read_text()) for p in sorted((results / "glance").glob("*.json"))}
    points = []
    for g in groups:
        metrics = json.loads((results / "metrics" / f"{g}.json").read_text())
        cost = json.loads((results / "metrics" / g / "cost.json").read_text())["methods"]
        files = table(f"table1_{g}", main_table(metrics, cost))
        st = metrics["settings"]
        ds = load_dataset(data / st["dataset"])
        regime, ex = _examples(results / "explainers", g, ds, examples)
        files += figure(f"fig1_{g}", triplet_figure(ex, f"{st['classifier']} on {st['dataset']}: ours ({regime})"))
        curves = pd.read_csv(results / "metrics" / g / "curves.csv")
        files += figure(f"curves_{g}", curves_plot(curves, f"{st['classifier']} on {st['dataset']}"))
        live = results / "explainers" / g / "live" / "amortized"
        if live.is_dir():
            files += figure(f"training_{g}", training_curves(_training(live), "epoch"))
        sections.append((f"{st['classifier']} on {st['dataset']}", files))
        ce_names = set(ce_runs.get(g, {}).get("methods", {}))
        for m, v in metrics["methods"].items():
            kind = ("ours" if m.startswith("ours:") else "control" if m in CONTROLS else "SyCE/CyCE" if m in ce_names
                    else "GLANCE" if m == "glance" else "baseline")
            points.append({"panel": g, "name": m.removeprefix("ours:"), "kind": kind, "area": v["area"]["mean"],
                           "kept": v["kept"]["mean"]})
    if ce_runs:
        files = table("table_ce", ce_table(ce_runs))
        for run, d in ce_runs.items():
            ex = _ce_examples(results / "explainers" / run / "ce", load_dataset(data / d["dataset"]), ce_examples)
            if ex:
                setting = "the authors' binary setting" if d["num_classes"] == 2 else "our 10-class extension"
                files += figure(f"fig_ce_{run}", ce_figure(ex, f"SyCE / CyCE on {d['classifier']} ({setting}): "
                                                              "similar, adversarial, map"))
        sections.append(("SyCE / CyCE (Charachon et al. 2021): their own metrics and examples", files))
    if glance_runs:
        files = _glance_section(results, data, glance_runs, glance_examples, table, figure)
        sections.append(("GLANCE (our reconstruction of Kori et al.): alignment, fidelity, graph, interventions",
                         files))
    ablations = load_ablations(results / "ablations") if (results / "ablations").is_dir() else {}
    for pair, variants in ablations.items():
        per_image = {k: v["per_image"] for k, v in variants.items()}
        files = table(f"table2_{pair}", ablation_table(per_image, ablation_base))
        sw = sweeps(variants, ablation_base)
        if sw:
            base = variants[ablation_base]
            ids = [str(i) for i in base["masks"]["ids"]]
            cfg = base["config"]
            ds = load_dataset(data / cfg["dataset"])
            row = {str(k): i for i, k in enumerate(ds.index["id"])}
            img = _image(ds, row[ids[sweep_image]])
            rows = {}
            for term, pts in sw.items():
                items = []
                for w, name in pts:
                    m = variants[name]["masks"][f"{name}_hard"][sweep_image]
                    pi = variants[name]["per_image"].set_index("id").loc[ids[sweep_image]]
                    items.append((f"{term} {w:g}: {100 * m.mean():.0f} %{'' if pi['kept'] else ' ✗'}", m))
                rows[term] = items
            files += figure(f"fig2_{pair}", sweep_figure(img, rows, f"{cfg['classifier']}, image {ids[sweep_image]}: "
                                                                  "one loss weight swept (✗: label lost)"))
        for k, v in variants.items():
            points.append({"panel": f"{pair} (ablation)", "name": k, "kind": "variant",
                           "area": float(v["per_image"]["area"].mean()), "kept": float(v["per_image"]["kept"].mean())})
        sections.append((f"ablations: {pair}", files))
    if points:
        files = figure("fig3_tradeoff", tradeoff_figure(pd.DataFrame(points), "area against label kept"))
        sections.append(("area–fidelity trade-off", files))
    page = out / "report.html"
    page.write_text(html_page(sections))
    for _, files in sections:
        written += files
    return written + [page]


def _embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def html_page(sections: list[tuple[str, list[Path]]]) -> str:
    """One page: per section, its Markdown tables (rendered as HTML) and PNG figures embedded as
    data URIs. Nothing is loaded from anywhere else."""
    buf = io.StringIO()
    buf.write("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>actmatch report</title>\n<style>"
              "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
              "table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
              "img{max-width:100%}</style></head><body>\n<h1>actmatch: tables and figures</h1>\n")
    for title, files in sections:
        buf.write(f"<h2>{html.escape(title)}</h2>\n")
        for f in files:
            if f.suffix == ".md":
                lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
                rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
                buf.write(f"<h3>{html.escape(f.stem)}</h3>\n<table>\n<tr>"
                          + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>\n")
                for r in rows[2:]:
                    buf.write("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>\n")
                buf.write("</table>\n")
            elif f.suffix == ".png":
                buf.write(f"<h3>{html.escape(f.stem)}</h3>\n<img alt=\"{html.escape(f.stem)}\" src=\"{_embed_png(f)}\">\n")
    buf.write("</body></html>\n")
    return buf.getvalue()
