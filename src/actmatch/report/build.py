"""The report stage's work: read what the pipeline stored and write every table and figure into one
folder, plus ``RESULTS.md`` (every table with its caption), ``headline.md`` (the README's small table)
and one self-contained ``report.html``; a rerun on the same results writes the same bytes.

Reads ``results/metrics`` (Table 1, curves, the baselines' cost), ``results/timing`` (our regimes' cost,
from the explain stages), ``results/live`` (training curves), ``results/ablations`` (Table 2 and its equal-area
block, Figure 2, Figure 3), ``results/explainers`` (Figure 1's masks from each regime's first seed
folder; SyCE/CyCE's maps under ``<group>/syce/``, GLANCE's under ``<group>/glance/``),
``results/syce`` and ``results/glance`` (those frameworks' own metrics) and, because results store masks
and not pixels, the images themselves from ``data/<dataset>``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from actmatch.core.figures import curves_plot, save_figure, training_curves
from actmatch.data import load_dataset
from actmatch.explainer.timing import our_costs
from actmatch.report import captions as cap
from actmatch.report.ablations import ABLATION_COLUMNS, ablation_table, load_ablations, sweeps
from actmatch.report import examples as read
from actmatch.report.ladder import ladder_summary, read_ladders, small_on_every_seed
from actmatch.report.page import FigureItem, Section, TableItem, headline_markdown, html_page, results_markdown
from actmatch.report.paper import syce_figure, glance_cf_figure, glance_graph_figure, glance_strips_figure, \
    sweep_figure, tradeoff_figure, triplet_figure
from actmatch.report.preservation import budgets_of, per_image_figure, per_image_table, preservation_figure, \
    preservation_table
from actmatch.classifiers.registry import view_region
from actmatch.images import crop_region
from actmatch.report.tables import CONTROLS, glance_table, headline_table, main_table, seeds_all_collapsed, \
    syce_table, to_latex, to_markdown

__all__ = ["build_report"]

log = logging.getLogger(__name__)


class _Writer:
    """Writes tables (``.md`` + ``.tex``) and figures (``.png`` + ``.pdf``) into ``out``, keeping the list."""

    def __init__(self, out: Path, dpi: int) -> None:
        self.out, self.dpi, self.files = out, dpi, []

    def table(self, item: TableItem) -> TableItem:
        for suffix, render in ((".md", to_markdown), (".tex", to_latex)):
            path = self.out / f"{item.name}{suffix}"
            path.write_text(render(item.df, item.floatfmt))
            self.files.append(path)
        return item

    def figure(self, name: str, fig, caption: str) -> FigureItem:
        paths = [self.out / f"{name}.png", self.out / f"{name}.pdf"]
        save_figure(fig, *paths, dpi=self.dpi)
        self.files += paths
        return FigureItem(paths[0], caption)


def _kind(name: str, others: set[str]) -> str:
    return ("ours" if name.startswith("ours:") else "control" if name in CONTROLS else "SyCE/CyCE" if name in others
            else "GLANCE" if name == "glance" else "baseline")


def _point(panel: str, name: str, kind: str, m: dict, method: str | None = None) -> dict:
    """One point of Figure 3: area and kept with their min–max over seeds; a method's kept over the non-trivial
    images when the file has them (Table 1's top-1 kept), a variant's over every image (Table 2's kept)."""
    kept = "kept_nontrivial" if "kept_nontrivial" in m and kind != "variant" else "kept"
    return {"panel": panel, "name": name, "kind": kind, "method": method or name,
            **{f"{k}{s}": m[src][f] for k, src in (("area", "area"), ("kept", kept))
               for s, f in (("", "mean"), ("_min", "min"), ("_max", "max"))}}


def _group_section(w: _Writer, results: Path, data: Path, g: str, metrics: dict, per_image: pd.DataFrame | None,
                   examples: int) -> Section:
    st = metrics["settings"]
    # ours: the explain stages' own timing (results/timing/); baselines and other frameworks: evaluate's
    cost = {**json.loads((results / "metrics" / g / "cost.json").read_text())["methods"], **our_costs(results / "timing", g)}
    ds = load_dataset(data / st["dataset"])
    t1 = main_table(metrics, cost, per_image, class_names=ds.class_names)
    items: list = [w.table(TableItem(f"table1_{g}", t1, cap.table1_caption(g, metrics),
                                     {k: v for k, v in cap.TABLE1_COLUMNS.items() if k in t1.columns}))]
    dead = {m.removeprefix("ours:"): e.get("collapsed", []) for m, e in metrics["methods"].items()}
    regime, seed, n_seeds, ex = read.triplet_examples(results / "explainers", g, ds, examples, dead)
    items.append(w.figure(f"fig1_{g}", triplet_figure(ex, f"{st['classifier']} on {st['dataset']}: ours ({regime}), "
                                                          f"seed {seed}"),
                          f"Figure 1: the first {len(ex)} evaluation images, the hard mask of ours:{regime} and the "
                          f"explanation m ⊙ x, from the first non-collapsed seed (seed {seed} of {n_seeds}); "
                          "captions: area and "
                          "p_x(y) → p_e(y). Source: `results/explainers/" + f"{g}/{regime}/seed{seed}/masks.npz`."))
    curves = pd.read_csv(results / "metrics" / g / "curves.csv")
    items.append(w.figure(f"curves_{g}", curves_plot(curves, f"{st['classifier']} on {st['dataset']}"),
                          "Mean insertion and deletion curves, p(y) against the fraction of pixels, averaged over "
                          f"images and the non-collapsed seeds. Source: `results/metrics/{g}/curves.csv`."))
    if per_image is not None and budgets_of(per_image):
        items.append(w.table(TableItem(
            f"table_preservation_{g}", preservation_table(per_image),
            f"Preservation, {st['classifier']} on {st['dataset']}: per method and budget a, the share of (seed, "
            "image) pairs whose label the top-a pixels of the method's ranking keep (ours: the soft mask; "
            "baselines: their saliency), and the median p_e(y) / p_x(y); collapsed runs and trivial images (the "
            "fill alone already gets their label) left out, n counts the non-trivial images. The paper's "
            f"claim is about a = 2–5 %. Source: `results/metrics/{g}/per_image.csv` (columns kept@a, p_ratio@a, "
            "trivial).",
            {})))
        items.append(w.figure(f"fig_preservation_{g}", preservation_figure(
            per_image, f"{st['classifier']} on {st['dataset']}: preservation against the pixels kept"),
            "The preservation curve: label kept (left) and median confidence retention (right) against the share "
            "of pixels kept from the top of each method's ranking, on the non-trivial images of the non-collapsed "
            "runs; grey band: the paper's 2–5 %; one fixed colour per method in every figure. Source: "
            f"`results/metrics/{g}/per_image.csv`."))
    maps_file = results / "metrics" / g / "maps.npz"
    if per_image is not None and maps_file.is_file() and not isinstance(ds.images, np.ndarray):  # photo sets
        items += _per_image_items(w, g, st, ds, per_image, maps_file)
    seed, logs = read.training_logs(results / "live" / g / "amortized")
    if logs:
        items.append(w.figure(f"training_{g}", training_curves(logs, "epoch"),
                              f"Training curves of ours:amortized, seed {seed} (the first seed). Source: "
                              f"`results/live/{g}/amortized/seed{seed}/`."))
    return Section(cap.group_title(st), items)


def _per_image_items(w: _Writer, g: str, st: dict, ds, per_image: pd.DataFrame, maps_file: Path) -> list:
    """Per photo: the image, our map's top 2 / 5 / 10 %, Extremal Perturbation's top 5 %, p(y) as the area
    shrinks (issue 19), from the first non-collapsed seed."""
    with np.load(maps_file) as z:
        previews = {k: z[k] for k in z.files}
    ours = next((m for m in per_image["method"].unique() if m.startswith("ours:") and m in previews
                 and not m.endswith("_last")), None)
    if ours is None:
        return []
    other = next((m for m in ("extremal_authors", "extremal") if m in previews), None)
    ids = [str(i) for i in previews["ids"]][:9]
    row = {str(k): i for i, k in enumerate(ds.index["id"])}
    images = []
    for i in ids:
        img = read.image(ds, row[i])
        img = crop_region(img, view_region(st["classifier"], *img.shape[:2]))
        img = np.asarray(Image.fromarray(img).resize(previews[ours].shape[1:][::-1], Image.BILINEAR))
        images.append(img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2))
    methods = [m for m in per_image["method"].unique() if m.startswith("ours:") and not m.endswith("_last")]
    methods += [m for m in ("extremal_authors", "extremal") if m in set(per_image["method"])]
    frame, ladder_note = _ladder_columns(per_image_table(per_image, methods), maps_file.parents[2] / "explainers" / g,
                                         methods)
    table = w.table(TableItem(
        f"table_per_image_{g}", frame,
        f"Per image, {st['classifier']} on {st['dataset']}: for our regimes and Extremal Perturbation (its "
        "authors' settings and ours), the hard mask's area and p_e(y) / p_x(y) as the median over seeds "
        "(min–max), and the seeds whose mask kept the label (a full mask, every pixel, never counts); Extremal Perturbation is binarized per seed at the "
        f"areas of ours:{st['match_area']}. trivial: the classifier gives the photo with every pixel removed (the "
        "fill alone) the same label, so an empty mask keeps it: a kept label there says nothing."
        f"{ladder_note} Source: `results/metrics/{g}/per_image.csv`.", {}))
    fig = per_image_figure(images, ids, previews, per_image, ours, other, (0.02, 0.05, 0.10),
                           f"{st['classifier']} on {st['dataset']}: {ours} and {other} per image")
    return [table, w.figure(f"fig_per_image_{g}", fig,
                     f"Per image (first non-collapsed seed): what the classifier saw, the top 2, 5 and 10 % of the pixels of "
                     f"{ours}'s soft mask (the rest dimmed), {other}'s top 5 %, and p_e(y) / p_x(y) as the pixels "
                     f"kept shrink. Sources: `results/metrics/{g}/maps.npz`, `results/metrics/{g}/per_image.csv`.")]


def _ladder_columns(table: pd.DataFrame, explainers: Path, methods: list[str]) -> tuple[pd.DataFrame, str]:
    """Issue 29: for each of our regimes that climbed the area ladder, per photo and seed the smallest kept area
    and its p_ratio (from its seeds' ladder.json), and a caption sentence with how many photos keep their label
    at <= 10 % of the pixels on every seed."""
    note = ""
    for m in [m for m in methods if m.startswith("ours:")]:
        rows = read_ladders(explainers / m.removeprefix("ours:"))
        if rows.empty:
            continue
        cells, every = ladder_summary(rows)
        cells = cells.set_index("id")
        table[f"{m} ladder area"] = [cells.at[i, "area"] if i in cells.index else "–" for i in table["image"]]
        table[f"{m} ladder p_ratio"] = [cells.at[i, "p_ratio"] if i in cells.index else "–" for i in table["image"]]
        seeds = sorted(rows["seed"].unique())
        note += (f" {m} ladder area / p_ratio: per seed ({', '.join(map(str, seeds))}), the area of the first rung of "
                 "the area ladder (2, 5, 10, 20, 40 %) whose mask kept the label with p_e(y) / p_x(y) >= the run's "
                 "keep_ratio, and its p_ratio; 'none': no rung did (no explanation), '*': a trivial keep (the fill "
                 f"alone keeps the label). {every} of {rows['id'].nunique()} photos keep their label at <= 10 % of "
                 f"the pixels on every seed{_trivial_among(rows)}.")
    return table, note


def _trivial_among(rows: pd.DataFrame) -> str:
    """``" (k of them trivial: a, b)"`` for the photos kept at <= 10 % on every seed that are trivial keeps."""
    trivial = [i for i, t in small_on_every_seed(rows).items() if t]
    return f" ({len(trivial)} of them trivial: {', '.join(trivial)})" if trivial else ""


def _syce_section(w: _Writer, results: Path, data: Path, runs: dict[str, dict], n: int) -> Section:
    items: list = [w.table(TableItem(
        "table_syce", syce_table(runs),
        "SyCE / CyCE (Charachon et al. 2021): the authors' own metrics of the generated images, one row per "
        "(run, method), each a single training run; n = the run's test images. setting: \"authors' (binary)\" is "
        "their two-class setting, \"ours (k-class ext.)\" our class-conditional extension. Their explanation maps "
        "are also scored by our metrics (rows syce / cyce of Table 1). Source: `results/syce/<run>.json`.",
        cap.SYCE_COLUMN_DEFS))]
    for run, d in runs.items():
        ex = read.syce_examples(results / "explainers" / run / "syce", load_dataset(data / d["dataset"]), n) \
            if (results / "explainers" / run / "syce").is_dir() else []
        if ex:
            setting = "the authors' binary setting" if d["num_classes"] == 2 else "our 10-class extension"
            items.append(w.figure(f"fig_syce_{run}", syce_figure(ex, f"SyCE / CyCE on {d['classifier']} ({setting}): "
                                                                   "similar, adversarial, map"),
                                  "Per row: the input, then per method the similar image x_st, the adversarial "
                                  "image x_a and the map. Source: "
                                  f"`results/explainers/{run}/syce/<variant>/maps.npz`."))
    return Section("SyCE / CyCE (Charachon et al. 2021): their own metrics and examples", items)


def _glance_section(w: _Writer, results: Path, data: Path, runs: dict[str, dict], n: int) -> Section:
    items: list = [w.table(TableItem(
        "table_glance", glance_table(runs),
        "GLANCE (our reconstruction of Kori et al.): one row per train_glance run, each a single training run; "
        "n test = the run's test digits. Source: `results/glance/<run>.json`.", cap.GLANCE_COLUMN_DEFS))]
    for run, d in runs.items():
        folder = results / "explainers" / run / "glance"
        weights = pd.read_csv(folder / "graph.csv", index_col=0)
        rec = d.get("graph_recovery")
        extra = f"; SHD {rec['shd']} on {', '.join(rec['variables'])}" if rec else ""
        src = f"Source: `results/explainers/{run}/glance/`."
        items.append(w.figure(f"fig_glance_graph_{run}", glance_graph_figure(
            weights, f"GLANCE (our reconstruction): graph learned for {d['classifier']} on {d['dataset']}{extra}"),
            f"The learned causal graph (edge width: weight). {src}"))
        with np.load(folder / "strips.npz") as z:
            items.append(w.figure(f"fig_glance_strips_{run}", glance_strips_figure(
                z["x"], z["strips"], z["deltas"].tolist(), [str(f) for f in z["features"]],
                f"GLANCE on {d['classifier']}: do(feature += δ SD), propagated and decoded"),
                f"Interventions on each context feature, propagated through the graph and decoded. {src}"))
        ex = read.glance_examples(folder, load_dataset(data / d["dataset"]), n)
        items.append(w.figure(f"fig_glance_cf_{run}", glance_cf_figure(
            ex, f"GLANCE on {d['classifier']}: smallest flipping intervention and its effect map"),
            f"Input, reconstruction, counterfactual and effect map. {src}"))
    return Section("GLANCE (our reconstruction of Kori et al.): alignment, fidelity, graph, interventions", items)


def _ablation_section(w: _Writer, data: Path, pair: str, found: dict, base: str, sweep_image: int) -> Section:
    variants, matched = found["variants"], found["matched"]
    t2 = ablation_table(variants, base)
    defs = {k: v for k, v in cap.TABLE2_COLUMNS.items() if k not in ("area target", "area_own")}
    items: list = [w.table(TableItem(f"table2_{pair}", t2, cap.table2_caption(pair, variants, base), defs))]
    ref = matched.get(base) or variants.get(base)  # the base at the target too when the grid runs it there
    if matched and ref is not None:
        block = {base: ref, **{k: v for k, v in matched.items() if k != base}}
        own = ("area_own",) if all("area_own" in v.per_image for v in block.values()) else ()
        items.append(w.table(TableItem(f"table2_{pair}_matched",
                                       ablation_table(block, base, ABLATION_COLUMNS + own, area_target=True),
                                       cap.table2_caption(pair, block, base, matched=True), cap.TABLE2_COLUMNS)))
    sw = sweeps(variants, base)
    if sw:
        cfg = variants[base].config
        img, img_id, seed, rows = read.sweep_rows(variants, base, sw, load_dataset(data / cfg["dataset"]), sweep_image)
        if rows:
            items.append(w.figure(f"fig2_{pair}", sweep_figure(img, rows, f"{cfg['classifier']}, image {img_id}: one "
                                                                          "loss weight swept (✗: label lost)"),
                                  f"Figure 2: one evaluation image explained by each variant of a one-weight sweep, "
                                  f"seed {seed} of every variant (the first seed). Source: "
                                  f"`results/ablations/{pair}/<variant>/seed{seed}/masks.npz`."))
    return Section(f"Ablations: {pair}", items)


def build_report(results: Path, data: Path, out: Path, examples: int = 6, sweep_image: int = 0,
                 ablation_base: str = "base", dpi: int = 110, syce_examples: int = 4, glance_examples: int = 4,
                 smoke: bool = False, expected: dict | None = None, full_only: str = "") -> list[Path]:
    """Write every table (``.md`` + ``.tex``) and figure (``.png`` + ``.pdf``) into ``out``, then
    ``RESULTS.md``, ``headline.md`` and ``report.html`` (with a banner when ``smoke``); returns the files
    written, in page order. ``expected`` (what params.yaml declares: ``groups``, ``syce``, ``glance`` run
    names and the ablation ``grid`` {pair: (variants, matched)}) restricts the report to exactly those, so
    files left over from another configuration never reach a table; a missing one is an error. ``full_only``:
    RESULTS.md's paragraph on the rows only the ``full`` profile has (:mod:`actmatch.report.profile_rows`)."""
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out, dpi)

    def read(kind: str, names: list[str] | None) -> dict[str, dict]:
        paths = sorted((results / kind).glob("*.json")) if names is None else \
            [results / kind / f"{n}.json" for n in names]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"report: {missing} not found; run the stages that write them (dvc repro)")
        return {p.stem: json.loads(p.read_text()) for p in paths}

    exp = expected or {}
    loaded = read("metrics", exp.get("groups"))
    groups = {g: loaded[g] for g in cap.reading_order({g: m["settings"] for g, m in loaded.items()})}
    per_image = {g: pd.read_csv(results / "metrics" / g / "per_image.csv", dtype={"id": str})
                 for g in groups if (results / "metrics" / g / "per_image.csv").is_file()}
    syce_runs = read("syce", exp.get("syce"))
    glance_runs = read("glance", exp.get("glance"))
    sections, points = [], []
    for g, metrics in groups.items():
        sections.append(_group_section(w, results, data, g, metrics, per_image.get(g), examples))
        others = set(syce_runs.get(g, {}).get("methods", {}))
        points += [_point(g, m.removeprefix("ours:"), _kind(m, others), v["metrics"], m)
                   for m, v in metrics["methods"].items() if not seeds_all_collapsed(v) and "area" in v["metrics"]
                   and "kept" in v["metrics"]]
    if syce_runs:
        sections.append(_syce_section(w, results, data, syce_runs, syce_examples))
    if glance_runs:
        sections.append(_glance_section(w, results, data, glance_runs, glance_examples))
    ablations = load_ablations(results / "ablations", exp.get("grid")) if (results / "ablations").is_dir() else {}
    for pair, found in ablations.items():
        sections.append(_ablation_section(w, data, pair, found, ablation_base, sweep_image))
        points += [_point(f"{pair} (ablation)", k, "variant", v.summary["metrics"]) for k, v in
                   found["variants"].items() if not v.all_collapsed]
    if points:
        sections.append(Section("Area–fidelity trade-off", [w.figure(
            "fig3_tradeoff", tradeoff_figure(pd.DataFrame(points), "area against label kept"),
            "Figure 3: mean hard-mask area against top-1 kept (methods: on the non-trivial images, as Table 1; "
            "ablation variants: on every image, as Table 2), means "
            "over non-collapsed seeds; error bars: min–max over seeds (a single run has none); methods with every "
            "seed collapsed are left out; colour: the method (fixed across figures), marker: its kind. Sources: "
            "`results/metrics/<group>.json`, `results/ablations/<pair>/<variant>.json`.")]))
    names = {g: load_dataset(data / m["settings"]["dataset"]).class_names for g, m in groups.items()}
    headline = cap.headline_sentences(groups, per_image, names)
    head_md = head_file = ""
    if groups:
        g = next(iter(groups))
        st = groups[g]["settings"]
        table = headline_table(groups[g], per_image.get(g))
        caption = (f"Headline, {st['classifier']} on {st['dataset']} ({st['n_images']} held-out images; n: those a "
                   "row was scored on, a subset for the per-image regimes): mean ± sd across seeds on one machine, "
                   "no ± for one run; kept over the non-trivial images (trivial: the share the fill alone already "
                   "labels y); the two baselines with the highest kept. Generated "
                   f"from `results/metrics/{g}.json`; captions in RESULTS.md.")
        head_md, head_file = headline_markdown(table, caption), headline_markdown(table, caption, smoke)
    (out / "headline.md").write_text(head_file)
    (out / "RESULTS.md").write_text(results_markdown(sections, headline, head_md, smoke, full_only))
    (out / "report.html").write_text(html_page(sections, headline, smoke))
    return w.files + [out / "RESULTS.md", out / "headline.md", out / "report.html"]
