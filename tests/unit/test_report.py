"""Report tables against hand-made results with known values (Table 1 with seeds, Table 2's paired
test and Holm correction), figure structure, byte-stable saving, and the whole report built from a
hand-made results tree in the pipeline's layout (RESULTS.md, headline.md, report.html)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from actmatch.ablation import summarize_variant
from actmatch.core.figures import save_figure
from actmatch.data.store import write_array_dataset
from actmatch.report.ablations import Variant, ablation_table, sweeps
from actmatch.report.build import build_report
from actmatch.report.page import SMOKE_BANNER, FigureItem, Section, TableItem, html_page
from actmatch.report.paper import Example, sweep_figure, tradeoff_figure, triplet_figure
from actmatch.report.tables import headline_table, main_table, to_latex, to_markdown

NAN = float("nan")


def _s(mean, lo, hi, n, sd=0.0, mn=None, mx=None):
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "sd": sd, "min": mean if mn is None else mn,
            "max": mean if mx is None else mx}


def _m(seeds=1, collapsed=(), selected=False, **metrics):
    """A method's entry; its claim (what the headline reads) is its kept and area over the live seeds."""
    live = [s for s in range(seeds) if s not in collapsed]
    claim = {"seeds": live, "n": 2 * len(live), "left_out": {"seeds_collapsed": list(collapsed), "classes": [],
                                                               "seeds_not_converged": [], "trivial_pairs": 0}}
    for k in ("kept", "area"):
        if k in metrics:
            claim.update({k: metrics[k]["mean"], f"{k}_min": metrics[k]["min"], f"{k}_max": metrics[k]["max"]})
    return {"seeds": seeds, "collapsed": list(collapsed), "selected_on_kept": selected, "metrics": metrics,
            "claim": claim}


SETTINGS = {"classifier": "mnist_cnn-mnist", "dataset": "mnist", "match_area": "amortized", "match_area_seed": 0,
            "fill": "black", "tie_seed": 0, "n_images": 2, "curve_steps": 2, "insertion_blur_sigma": 2.8,
            "bootstrap": 100, "baselines": {}}
METRICS = {"settings": SETTINGS, "methods": {
    "random": _m(kept=_s(0.2, 0.1, 0.3, 2), area=_s(0.04, 0.04, 0.04, 2)),
    "gradcam": _m(kept=_s(0.95, 0.9, 0.99, 2), area=_s(0.04, 0.035, 0.045, 2), insertion_auc=_s(0.5, 0.4, 0.6, 2),
                  flip=_s(NAN, NAN, NAN, 0)),
    "ours:per_image": _m(3, (0, 1, 2), True, kept=_s(NAN, NAN, NAN, 0, NAN, NAN, NAN),
                         area=_s(NAN, NAN, NAN, 0, NAN, NAN, NAN)),
    "ours:finetune_last": _m(3, kept=_s(0.7, 0.6, 0.8, 2, 0.1, 0.6, 0.8), area=_s(0.1, 0.09, 0.11, 2)),
    "ours:finetune": _m(3, (2,), True, kept=_s(1.0, 1.0, 1.0, 2), area=_s(0.02, 0.01, 0.03, 2, 0.005, 0.015, 0.025)),
    "ours:amortized": _m(3, kept=_s(0.93, 0.889, 0.96, 2, 0.02, 0.91, 0.95),
                         area=_s(0.04, 0.035, 0.045, 2, 0.004, 0.036, 0.044), insertion_auc=_s(0.6, 0.5, 0.7, 2),
                         flip=_s(0.735, 0.67, 0.8, 2, 0.01, 0.72, 0.75)),
}}
COST = {"random": {"ms_per_explanation": 0.24}, "ours:amortized": {"ms_per_explanation": 1.6},
        "gradcam": {"ms_per_explanation": 1234.5}}


def _per_image() -> pd.DataFrame:
    """p_ratio per (method, seed, image): amortized 0.2, 0.6 | 0.8, 0.4 | 0.9, 1.0 (median 0.7, 4 of 6 ≥ 0.5);
    finetune 0.5 on seeds 0 and 1, 0.0 on the collapsed seed 2 (left out: median 0.5, share 1.0); gradcam
    0.05 and 0.3 (one seed: median 0.175, none ≥ 0.5, half below 0.1 — not "most")."""
    rows = []
    for method, seeds, values in (("ours:amortized", (0, 1, 2), (0.2, 0.6, 0.8, 0.4, 0.9, 1.0)),
                                  ("ours:finetune", (0, 1, 2), (0.5, 0.5, 0.5, 0.5, 0.0, 0.0)),
                                  ("gradcam", (-1,), (0.05, 0.3)), ("random", (-1,), (0.01, 0.02))):
        for k, seed in enumerate(seeds):
            for j, i in enumerate(("x0", "x1")):
                rows.append({"method": method, "seed": seed, "id": i, "label": 0, "y": 0,
                             "p_ratio": values[2 * k + j]})
    return pd.DataFrame(rows)


def test_main_table_seeds_spread_ratio_flag_selection_and_collapse():
    t = main_table(METRICS, COST, _per_image())
    assert list(t["method"]) == ["ours:amortized", "ours:finetune (selected on kept)", "ours:finetune_last (last mask)",
                                 "ours:per_image (selected on kept)", "gradcam", "random"]
    assert list(t.columns) == ["method", "seeds", "collapsed", "n", "top-1 kept", "p_ratio med.", "p_ratio ≥ 0.5",
                               "flag", "area", "compl. flip", "ins. AUC", "ms / expl."]
    r = t.set_index("method")
    am, ft = r.loc["ours:amortized"], r.loc["ours:finetune (selected on kept)"]
    assert am.to_dict() == {"seeds": 3, "collapsed": 0, "n": 2, "top-1 kept": "0.93 ± 0.02 (0.91–0.95) [0.89, 0.96]",
                            "p_ratio med.": "0.70", "p_ratio ≥ 0.5": "0.67", "flag": "",
                            "area": "0.040 ± 0.004 (0.036–0.044) [0.035, 0.045]",
                            "compl. flip": "0.73 ± 0.01 (0.72–0.75) [0.67, 0.80]",
                            "ins. AUC": "0.60 ± 0.00 (0.60–0.60) [0.50, 0.70]", "ms / expl.": "1.6"}
    # finetune: seed 2 collapsed, so its 0.0 ratios are left out and two seeds count
    assert (ft["seeds"], ft["collapsed"], ft["p_ratio med."], ft["p_ratio ≥ 0.5"]) == (3, 1, "0.50", "1.00")
    assert ft["area"] == "0.020 ± 0.005 (0.015–0.025) [0.010, 0.030]" and ft["ins. AUC"] == "–"
    dead = r.loc["ours:per_image (selected on kept)"]
    assert (dead["seeds"], dead["collapsed"]) == (3, 3)
    assert all(dead[c] == "collapsed" for c in ("top-1 kept", "p_ratio med.", "p_ratio ≥ 0.5", "area"))
    gc = r.loc["gradcam"]
    assert gc["top-1 kept"] == "0.95 [0.90, 0.99]" and gc["compl. flip"] == "–" and gc["ms / expl."] == "1,234"
    assert (gc["p_ratio med."], gc["p_ratio ≥ 0.5"], gc["flag"]) == ("0.17", "0.00", "")  # 0.175 rounds half-even
    assert r.loc["random", "compl. flip"] == "–" and r.loc["random", "flag"] == ""


def test_flag_marks_kept_label_with_little_confidence():
    pi = _per_image()
    pi.loc[pi["method"] == "gradcam", "p_ratio"] = [0.05, 0.08]  # both below 0.1, kept 0.95
    gc = main_table(METRICS, COST, pi).set_index("method").loc["gradcam"]
    assert gc["flag"].startswith("⚠") and gc["p_ratio ≥ 0.5"] == "0.00"


def test_headline_table_ours_then_best_baselines():
    t = headline_table(METRICS, _per_image(), baselines=1)
    assert list(t["method"]) == ["ours:amortized", "ours:finetune (selected on kept)",
                                 "ours:per_image (selected on kept)", "gradcam"]
    assert list(t.columns) == ["method", "seeds", "n", "kept", "p_ratio med.", "area", "ins. AUC", "del. AUC"]
    assert t.iloc[0].tolist() == ["ours:amortized", 3, 2, "0.93 ± 0.02", "0.70", "0.040 ± 0.004", "0.60 ± 0.00", "–"]
    assert t.iloc[2]["kept"] == "collapsed" and t.iloc[2]["n"] == "–"
    assert t.iloc[3]["kept"] == "0.95" and t.iloc[3]["seeds"] == 1


IDS = [f"x{k}" for k in range(5)]
BASE = {0: [0.10, 0.20, 0.30, 0.40, 0.50], 1: [0.12, 0.22, 0.32, 0.42, 0.52]}
# per seed: the variant's area minus the base's, image by image (None: that seed collapsed, area 1 everywhere)
DIFFS = {
    "area_20": {0: [0.01, 0.02, 0.03, 0.04, 0.05], 1: [0.03, 0.04, 0.05, 0.06, 0.07]},  # averaged: .02….06, all +
    "area_500": {0: [-0.01, 0.02, 0.03, 0.04, 0.05], 1: [-0.01, 0.02, 0.03, 0.04, 0.05]},  # one − of rank 1
    "tv_5": {0: [0.01, -0.02, 0.03, 0.04, 0.05], 1: [0.01, -0.02, 0.03, 0.04, 0.05]},  # one − of rank 2
    "no_act": {0: [0.01, 0.02, 0.03, 0.04, 0.05], 1: None},  # seed 1 collapsed: one paired seed, no p
}
WEIGHTS = {"base": {}, "area_20": {"area": 20.0}, "area_500": {"area": 500.0}, "tv_5": {"tv": 5.0},
           "no_act": {"act": 0.0}, "area_1500": {"area": 1500.0}}


def _ablation_rows(name: str) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        if name == "base":
            area = BASE[seed]
        elif name == "area_1500":
            area = [0.0] * 5
        else:
            d = DIFFS[name][seed]
            area = [1.0] * 5 if d is None else [round(b + x, 6) for b, x in zip(BASE[seed], d)]
        for j, i in enumerate(IDS):
            rows.append({"id": i, "label": 3, "y": 3, "kept": 1.0, "area": area[j], "p_ratio": 0.5, "seed": seed})
    return pd.DataFrame(rows)


def _variant(name: str, target=None) -> Variant:
    table = _ablation_rows(name)
    if target is not None:  # a matched row: its own binarization's area beside the target-binarized one
        table = table.assign(area_own=(table["area"] + 0.1).round(6))
    summary = {**summarize_variant(table, name, 50, 0, collapse_on="area" if target is None else "area_own"),
               "area_target": target}
    loss = {"weights": {"act": 1.0, "area": 100.0, "tv": 50.0, **WEIGHTS[name]}, "act_distance": "paper"}
    return Variant(name, json.loads(json.dumps(summary)), table, None,
                   {"classifier": "mnist_cnn-mnist", "dataset": "mnist", "loss": loss})


def test_ablation_table_pairs_seeds_and_names_the_collapse_direction():
    variants = {n: _variant(n) for n in ("base", "area_20", "area_500", "tv_5", "no_act", "area_1500")}
    t = ablation_table(variants, "base", ("kept", "area"))
    assert list(t.columns) == ["variant", "seeds", "collapsed", "paired seeds", "n", "kept", "Δ kept", "sign kept",
                               "area", "Δ area", "sign area"]
    assert not any(c.startswith("p_") for c in t.columns)   # no test that treats images as replicates
    r = t.set_index("variant")
    assert list(r.index) == ["base", "area_1500", "area_20", "area_500", "no_act", "tv_5"]
    assert r.loc["base"][["seeds", "collapsed", "paired seeds", "n", "area", "Δ area", "sign area"]].tolist() == \
        [2, 0, "0, 1", 5, "0.310 ± 0.014", "–", "–"]
    # area_20: seed means 0.33 and 0.37; per-seed Δ 0.03 and 0.05, both positive
    assert r.loc["area_20", "area"] == "0.350 ± 0.028" and r.loc["area_20", "sign area"] == "2/2"
    delta = r.loc["area_20", "Δ area"]
    assert delta.startswith("+0.040 ± 0.014 [")
    lo, hi = (float(v) for v in delta.split("[")[1].rstrip("]").split(","))
    assert 0.01 < lo < 0.04 < hi < 0.07        # seeds, then images, resampled: within the per-image range
    assert r.loc["area_500", "Δ area"].startswith("+0.026 ± 0.000") and r.loc["tv_5", "sign area"] == "2/2"
    # no_act: seed 1 collapsed (full), so one paired seed: its value and Δ over seed 0 only, no interval
    assert r.loc["no_act"][["seeds", "collapsed", "paired seeds", "area", "Δ area", "sign area"]].tolist() == \
        [2, "1 (seed 1 full)", "0", "0.330", "+0.030", "1/1"]
    dead = r.loc["area_1500"]
    assert (dead["collapsed"], dead["area"], dead["kept"], dead["Δ area"], dead["sign area"]) == \
        ("2 (seed 0 empty, seed 1 empty)", "collapsed (empty)", "collapsed (empty)", "–", "–")
    assert r.loc["area_20", "Δ kept"] == "+0.000 ± 0.000 [+0.000, +0.000]"   # kept identical everywhere
    with pytest.raises(KeyError, match="base variant 'nope'"):
        ablation_table(variants, "nope", ("kept",))


def test_ablation_table_one_seed_gives_no_interval_and_matched_block_has_its_target():
    one = {n: _variant(n) for n in ("base", "area_20")}
    for v in one.values():
        v.per_image = v.per_image[v.per_image["seed"] == 0]
        v.summary = json.loads(json.dumps(summarize_variant(v.per_image, v.name, 50, 0)))
    r = ablation_table(one, "base", ("area",)).set_index("variant")
    assert r.loc["area_20", "Δ area"] == "+0.030" and r.loc["area_20", "sign area"] == "1/1"
    block = {"base": _variant("base"), "area_20": _variant("area_20", target=0.3)}
    r = ablation_table(block, "base", ("area",), area_target=True).set_index("variant")
    assert r["area target"].tolist() == ["–", "0.300"]


def test_markdown_and_latex_render_every_row():
    t = main_table(METRICS, COST, _per_image())
    md, tex = to_markdown(t), to_latex(t)
    assert md.count("\n") == 2 + 6 and "| ours:amortized " in md
    assert "\\toprule" in tex and "ours:finetune\\_last" in tex


def test_markdown_prints_missing_values_as_a_dash_and_escapes_pipes():
    df = pd.DataFrame({"variant": ["base", "x"], "p kept": [NAN, 0.0625], "CF median |δ|": [1.0, 2.0]})
    md = to_markdown(df)
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", ln.strip("|"))] for ln in md.splitlines()]
    assert rows[0][2] == "CF median \\|δ\\|" and len(rows[0]) == 3
    assert rows[2][:2] == ["base", "–"] and rows[3][:2] == ["x", "0.0625"] and "nan" not in md


def test_sweeps_finds_one_weight_varied_at_a_time():
    def v(weights, **other):
        return {"config": {"loss": {"weights": {"act": 1.0, "area": 100.0, "tv": 50.0, **weights},
                                    "act_distance": "paper", **other}}}
    variants = {"base": v({}), "area_20": v({"area": 20.0}), "area_500": v({"area": 500.0}),
                "tv_5": v({"tv": 5.0}),  # a single tv point: not a sweep
                "two": v({"area": 20.0, "tv": 5.0}), "cos": v({"area": 20.0}, act_distance="cosine")}
    assert sweeps(variants, "base") == {"area": [(20.0, "area_20"), (100.0, "base"), (500.0, "area_500")]}
    assert sweeps(variants, "missing") == {}


def _img(h=28, w=28, rgb=False):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3) if rgb else (h, w), dtype=np.uint8)


def test_figure_structure():
    ex = [Example(_img(), np.ones((28, 28), bool), "seven", "area 5 %"),
          Example(_img(40, 60, rgb=True), np.zeros((8, 8), bool), "cat", "area 0 %")]
    fig = triplet_figure(ex, "t")
    axes = fig.get_axes()
    assert len(axes) == 6 and [a.get_title() for a in axes[:2]] == ["seven", "cat"]
    assert axes[0].get_ylabel() == "original" and axes[4].get_xlabel() == "area 5 %"
    fig = sweep_figure(_img(), {"area": [("a 20", np.ones((28, 28))), ("a 500", np.zeros((28, 28)))],
                                "tv": [("tv 5", np.ones((28, 28)))]}, "s")
    assert len(fig.get_axes()) == 4 and not fig.get_axes()[3].axison  # the empty slot is switched off
    pts = pd.DataFrame({"panel": ["a", "a", "b"], "name": ["x", "y", "z"], "kind": ["ours", "control", "variant"],
                        "area": [0.1, 0.2, 0.3], "kept": [0.9, 0.2, 0.5], "area_min": [0.05, 0.2, 0.3],
                        "area_max": [0.15, 0.2, 0.3], "kept_min": [0.8, 0.2, 0.5], "kept_max": [1.0, 0.2, 0.5]})
    fig = tradeoff_figure(pts, "t")
    assert [a.get_title() for a in fig.get_axes()] == ["a", "b"]
    bars = [c for c in fig.get_axes()[0].containers if hasattr(c, "has_xerr")]
    assert len(bars) == 1 and bars[0].has_xerr and bars[0].has_yerr  # min–max over seeds
    with pytest.raises(ValueError):
        triplet_figure([], "t")


def test_saved_figures_are_byte_stable(tmp_path):
    out = {}
    for k in range(2):
        fig = triplet_figure([Example(_img(), np.ones((28, 28), bool), "seven", "area 5 %")], "t")
        save_figure(fig, tmp_path / f"f{k}.png", tmp_path / f"f{k}.pdf")
        out[k] = ((tmp_path / f"f{k}.png").read_bytes(), (tmp_path / f"f{k}.pdf").read_bytes())
    assert out[0] == out[1]
    assert b"CreationDate" not in out[0][1] and b"matplotlib version" not in out[0][1]


def test_html_page_is_self_contained_with_captions_and_banner(tmp_path):
    fig = triplet_figure([Example(_img(), np.ones((28, 28), bool), "seven", "area 5 %")], "t")
    save_figure(fig, tmp_path / "fig1_g.png")
    table = TableItem("table1_g", main_table(METRICS, COST, _per_image()), "Rows: `x` **y**", {"n": "images"})
    page = html_page([Section("group g", [table, FigureItem(tmp_path / "fig1_g.png", "a figure")])], ["Head."],
                     smoke=True)
    assert page.index(SMOKE_BANNER) < page.index("<h1>") < page.index("<p>Head.</p>") < page.index("<h2>group g")
    assert "<td>0.93 ± 0.02 (0.91–0.95) [0.89, 0.96]</td>" in page
    assert "Rows: <code>x</code> <b>y</b>" in page and "<li><b>n</b>: images</li>" in page
    srcs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http" not in page.replace("data:image", "") and SMOKE_BANNER not in html_page([], ["x"])


def test_syce_table_rows_settings_and_values():
    from actmatch.report.tables import syce_table

    m = {"flip": 0.99, "hit_target": 0.99, "stable": 0.935, "l1": 0.21, "fd_adv": 3.5, "fd_stable": 1.25,
         "js_adv": 0.2, "js_stable": 0.1, "n": 200, "best_epoch": 28, "epochs_run": 30, "train_minutes": 5.0}
    df = syce_table({"lenet-mnist_3v8": {"num_classes": 2, "methods": {"syce": m, "cyce": {**m, "flip": 0.89}}},
                     "mnist_cnn-mnist": {"num_classes": 10, "methods": {"syce_10class": {**m, "fd_adv": NAN}}}})
    assert list(df["method"]) == ["syce", "cyce", "syce_10class"]
    assert list(df["setting"]) == ["authors' (binary)", "authors' (binary)", "ours (10-class ext.)"]
    assert df.loc[1, "flip"] == 0.89 and df.loc[0, "epochs (best / run)"] == "28 / 30" and df.loc[0, "n"] == 200
    assert to_markdown(df).splitlines()[-1].count("–") == 1  # the NaN FD prints as a dash, nothing else does


def test_ce_figure_has_input_plus_three_columns_per_method():
    from actmatch.report.paper import SyceExample, syce_figure

    img = np.zeros((8, 8), np.uint8)
    panel = (img, img, np.random.default_rng(0).random((8, 8)), "stable, flips")
    ex = [SyceExample(img, "3 → 8", {"syce": panel, "cyce": panel}) for _ in range(2)]
    fig = syce_figure(ex, "t")
    assert len(fig.axes) == 2 * (1 + 3 * 2)
    assert fig.axes[1].get_title() == "syce\nsimilar" and fig.axes[6].get_title() == "cyce\nmap"
    with pytest.raises(ValueError, match="at least one"):
        syce_figure([], "t")


def _glance_metrics(**over):
    m = {"n_test": 1000, "fidelity": 0.99, "alignment_r2": {"thickness": 0.8, "slant": 0.9},
         "alignment_r2_mean": 0.85, "graph_edges": [["thickness", "slant", 0.5], ["free0", "output", -0.3]],
         "counterfactual_found": 0.97, "counterfactual_median_abs_delta": 1.5, "train_minutes": 4.0}
    return {**m, **over}


def test_glance_table_rows_and_graph_recovery_only_where_known():
    from actmatch.report.tables import glance_table

    rec = {"shd": 1, "precision": 0.5, "recall": 0.5}
    df = glance_table({"mnist_cnn-mnist": _glance_metrics(),
                       "mnist_cnn-morpho_mnist": _glance_metrics(graph_recovery=rec,
                                                                 graph_recovery_drawn_causes={**rec, "shd": 0})})
    assert list(df["run"]) == ["mnist_cnn-mnist", "mnist_cnn-morpho_mnist"]
    assert df.loc[1, "SHD"] == 1 and df.loc[1, "SHD (drawn)"] == 0 and np.isnan(df.loc[0, "SHD"])
    assert df.loc[0, "R² slant"] == 0.9 and df.loc[0, "edges"] == 2 and df.loc[1, "recall"] == 0.5
    assert to_markdown(df).splitlines()[2].count("–") == 6  # no recovery numbers for the plain digits


def test_glance_figures_draw_every_edge_and_every_strip_cell():
    from actmatch.report.paper import CFExample, glance_cf_figure, glance_graph_figure, glance_strips_figure

    names = ["thickness", "slant", "free0", "output"]
    w = pd.DataFrame(0.0, index=names, columns=names)
    w.loc["thickness", "slant"], w.loc["free0", "output"], w.loc["slant", "output"] = 0.8, -0.4, 0.2
    fig = glance_graph_figure(w, "t")
    ax = fig.axes[0]
    arrows = [c for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 3 and {t.get_text() for t in ax.texts if t.get_text()} == set(names)
    colours = sorted(a.arrow_patch.get_edgecolor()[:3] for a in arrows)
    assert len(set(colours)) == 2  # positive and negative edges differ
    img = np.zeros((8, 8), np.uint8)
    strips = np.zeros((2, 5, 3, 8, 8), np.uint8)
    fig = glance_strips_figure(np.zeros((3, 8, 8), np.uint8), strips, [-2, -1, 0, 1, 2], ["thickness", "slant"], "t")
    assert len(fig.axes) == 2 * 6 and fig.axes[1].get_title() == "δ = -2" and fig.axes[3].get_title() == "δ = +0"
    fig = glance_cf_figure([CFExample(img, img, img, np.ones((8, 8)), "3")] * 2, "t")
    assert len(fig.axes) == 8 and fig.axes[3].get_title() == "effect map"
    with pytest.raises(ValueError, match="at least one"):
        glance_cf_figure([], "t")


# ---- the whole report from a hand-made results tree in the pipeline's layout -------------------------------

GROUPS = {  # group: (classifier, dataset, our regime folder, rgb)
    "efficientnet_lite0-photos": ("efficientnet_lite0", "photos", "per_image", True),
    "lenet-mnist_3v8": ("lenet-mnist_3v8", "mnist_3v8", "amortized", False),
    "mnist_cnn-mnist": ("mnist_cnn-mnist", "mnist", "amortized", False),
}


def _dataset(root, name, rgb):
    n = 6
    images = np.random.default_rng(1).integers(0, 255, (n, 16, 16, 3 if rgb else 1), dtype=np.uint8)
    index = pd.DataFrame({"id": [f"x{k}" for k in range(n)], "label": [0, 1] * 3, "split": ["test"] * n})
    write_array_dataset(root / name, images, index, {"name": name, "source": "test", "class_names": ["zero", "one"]})


def _regime_seed(folder, regime, seed):
    folder.mkdir(parents=True)
    ids = ["x0", "x1"]
    soft = np.zeros((2, 16, 16), np.float32)
    soft[:, 4:8, 4:8] = 0.9
    np.savez_compressed(folder / "masks.npz", ids=np.array(ids),
                        **{f"{regime}_soft": soft, f"{regime}_hard": soft > 0.5})
    pd.DataFrame({"id": ids, "label": [0, 1], "y": [0, 1], "class_name": ["zero", "one"], "p_x": [0.9, 0.8],
                  "p_e": [0.7, 0.6], "y_e": [0, 1], "area": [0.0625, 0.0625], "soft_area": [0.06, 0.06],
                  "kept": [1, 1], "regime": regime}).to_csv(folder / "summary.csv", index=False)
    (folder / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "data_seed": 0}))


def _group(results, data, g):
    clf, dataset, regime, rgb = GROUPS[g]
    _dataset(data, dataset, rgb)
    methods = {k: v for k, v in METRICS["methods"].items() if regime == "amortized" or k != "ours:amortized"}
    (results / "metrics" / g).mkdir(parents=True)
    n = 6 if dataset == "photos" else 200
    (results / "metrics" / f"{g}.json").write_text(json.dumps(
        {"settings": {**SETTINGS, "classifier": clf, "dataset": dataset, "match_area": regime, "n_images": n},
         "methods": methods}))
    pi = _per_image()
    pi[pi["method"].isin(list(methods))].to_csv(results / "metrics" / g / "per_image.csv", index=False)
    pd.DataFrame({"method": ["gradcam"] * 2, "fraction": [0.0, 1.0], "deletion": [0.9, 0.1],
                  "insertion": [0.1, 0.9]}).to_csv(results / "metrics" / g / "curves.csv", index=False)
    (results / "metrics" / g / "cost.json").write_text(json.dumps({"methods": COST}))
    for seed in (0, 1):
        _regime_seed(results / "explainers" / g / regime / f"seed{seed}", regime, seed)
    if regime == "amortized":
        live = results / "live" / g / "amortized" / "seed0" / "plots" / "metrics" / "amortized"
        live.mkdir(parents=True)
        pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.5]}).to_csv(live / "loss.tsv", sep="\t", index=False)


def _ablation(results, name, target=None):
    v = _variant(name, target)
    pair = results / "ablations" / "mnist_cnn-mnist-mnist" / ("matched" if target else "")
    for seed, g in v.per_image.groupby("seed"):
        d = pair / name / f"seed{seed}"
        d.mkdir(parents=True)
        g.to_csv(d / "per_image.csv", index=False)
        hard = np.zeros((5, 16, 16), bool)
        hard[:, : int(16 * g["area"].iloc[0])] = True
        np.savez_compressed(d / "masks.npz", ids=np.array(IDS), **{f"{name}_soft": hard.astype(np.float32),
                                                                   f"{name}_hard": hard})
        (d / "config.yaml").write_text(yaml.safe_dump({**v.config, "variant": name, "seed": int(seed)}))
    (pair / f"{name}.json").write_text(json.dumps(v.summary))


def _results_tree(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    for g in GROUPS:
        _group(results, data, g)
    _dataset(data, "mnist", False)  # the ablation's images (ids x0..x4 of the same set)
    for name in ("base", "area_20", "area_500", "tv_5", "no_act", "area_1500"):
        _ablation(results, name)
    _ablation(results, "area_20", target=0.3)
    _ablation(results, "base", target=0.3)  # the base at the target too: the equal-area table's reference
    (results / "syce" / "vae").mkdir(parents=True)  # a folder beside the metrics files: not a run
    m = {"flip": 0.99, "hit_target": 0.99, "stable": 0.935, "l1": 0.21, "n": 6, "best_epoch": 2, "epochs_run": 3,
         "train_minutes": 0.5}
    (results / "syce" / "lenet-mnist_3v8.json").write_text(json.dumps(
        {"run": "lenet-mnist_3v8", "classifier": "lenet-mnist_3v8", "dataset": "mnist_3v8", "num_classes": 2,
         "methods": {"syce": m}}))
    _glance(results)
    return results, data


def _glance(results):
    """A GLANCE run on the mnist group (the stored layout is unchanged; the report's section is rewritten)."""
    folder = results / "explainers" / "mnist_cnn-mnist" / "glance"
    folder.mkdir(parents=True)
    names = ["thickness", "slant", "output"]
    w = pd.DataFrame(0.0, index=names, columns=names)
    w.loc["thickness", "slant"], w.loc["slant", "output"] = 0.8, -0.4
    w.to_csv(folder / "graph.csv")
    img = np.zeros((2, 16, 16), np.uint8)
    np.savez_compressed(folder / "strips.npz", x=img, strips=np.zeros((2, 3, 2, 16, 16), np.uint8),
                        deltas=np.array([-1.0, 0.0, 1.0]), features=np.array(["thickness", "slant"]))
    np.savez_compressed(folder / "maps.npz", ids=np.array(["x0", "x1"]), y=np.array([0, 1]), y_hat=np.array([0, 1]),
                        cf_node=np.array([0, -1]), cf_label=np.array([1, -1]), effect_node=np.array([0, 1]),
                        effect_delta=np.array([1.0, -2.0]), nodes=np.array(names[:2]), x_hat=img, x_cf=img,
                        map=np.ones((2, 16, 16), np.float32))
    (results / "glance").mkdir()
    (results / "glance" / "mnist_cnn-mnist.json").write_text(json.dumps(
        {**_glance_metrics(), "classifier": "mnist_cnn-mnist", "dataset": "mnist"}))


def test_build_report_writes_every_file_in_reading_order_and_is_byte_stable(tmp_path):
    results, data = _results_tree(tmp_path)
    files = build_report(results, data, tmp_path / "out", examples=2, dpi=40, smoke=True)
    out = tmp_path / "out"
    names = {p.name for p in files}
    for g in GROUPS:
        assert {f"table1_{g}.md", f"table1_{g}.tex", f"fig1_{g}.png", f"curves_{g}.pdf"} <= names
    assert "training_efficientnet_lite0-photos.png" not in names  # no amortized run there
    assert {"training_mnist_cnn-mnist.png", "table_syce.md", "table2_mnist_cnn-mnist-mnist.md",
            "table2_mnist_cnn-mnist-mnist_matched.tex", "fig2_mnist_cnn-mnist-mnist.png", "fig3_tradeoff.png",
            "table_glance.md", "fig_glance_graph_mnist_cnn-mnist.png", "fig_glance_strips_mnist_cnn-mnist.pdf",
            "fig_glance_cf_mnist_cnn-mnist.png",
            "RESULTS.md", "headline.md", "report.html"} <= names
    assert all(p.is_file() for p in files) and sorted(names) == sorted(p.name for p in out.iterdir())
    assert not any(n.startswith(("table_ce", "fig_ce")) for n in names)  # the old names are gone
    page, results_md, head = ((out / f).read_text() for f in ("report.html", "RESULTS.md", "headline.md"))
    # reading order: MNIST, the binary 3v8, then the photos with their caveat
    order = [page.index(f"<h2>{t}") for t in ("Headline", "mnist_cnn-mnist on mnist", "lenet-mnist_3v8 on mnist_3v8",
                                               "efficientnet_lite0 on photos (n = number of photos, 6: tiny)")]
    assert order == sorted(order) and page.index(SMOKE_BANNER) < order[0]
    # the headline is phrased from the numbers: amortized kept 0.93 at area 0.040 meets the 2–5 % reading
    assert "ours:amortized keeps the label on 93 % (seeds 91 %–95 %) of the non-trivial images at a mean area of " \
           "4.0 %, median p_ratio 0.70" in page
    # every generated sentence keeps the row's selection label
    assert "met by ours:amortized on mnist_cnn-mnist, ours:finetune (selected on kept) on mnist_cnn-mnist, " \
           "ours:amortized on lenet-mnist_3v8, ours:finetune (selected on kept) on lenet-mnist_3v8, ours:finetune " \
           "(selected on kept) on efficientnet_lite0-photos." in page
    assert "On mnist_cnn-mnist / mnist (n = 200 held-out images): ours:amortized keeps" in results_md
    assert "ours:per_image (selected on kept): all 3 seeds collapsed" in results_md
    # RESULTS.md: the banner first, every table with its caption and columns
    assert results_md.startswith(f"> **{SMOKE_BANNER}**")
    for text in ("### table1_mnist_cnn-mnist\n\nTable 1, mnist_cnn-mnist on mnist: one row per method, n = 200",
                 "Selection rule: ours:finetune, ours:per_image keep per image the smallest mask",
                 "### table2_mnist_cnn-mnist-mnist\n\nTable 2, mnist_cnn-mnist on mnist:",
                 "2 training seeds per variant (0, 1)", "No p-value",
                 "Collapsed (every seed): area_1500 (empty): no Δ.", "### table2_mnist_cnn-mnist-mnist_matched",
                 "Table 2 (equal area)", "### table_syce", "- **p_ratio med.**:", "### table_glance",
                 "CF median \\|δ\\|",
                 "Source: `results/metrics/mnist_cnn-mnist.json`", "| area_20 ", "![fig1_mnist_cnn-mnist]"):
        assert text in results_md, text
    assert results_md.count("| ours:finetune_last (last mask) ") == 3  # once per group's Table 1
    assert (out / "table2_mnist_cnn-mnist-mnist.md").read_text() in results_md
    # headline.md: small, generated, ours first then the best baseline
    lines = head.splitlines()
    assert len(lines) <= 12 and lines[0] == f"> **{SMOKE_BANNER}**" and lines[2].startswith("Headline, mnist_cnn")
    assert lines[6].startswith("| ours:amortized ") and "| 0.93 ± 0.02 " in lines[6] and "gradcam" in lines[-1]
    matched = (out / "table2_mnist_cnn-mnist-mnist_matched.md").read_text()
    assert "| area target " in matched and "| 0.300 " in matched and "| sign area " in matched
    head_row, base_row = matched.splitlines()[0], matched.splitlines()[2]
    assert "| area_own " in head_row and base_row.startswith("| base ") and "| 0.300 " in base_row  # matched base
    assert "| 0.410 ± 0.014 " in base_row  # its area_own: base's 0.310 ± 0.014 + 0.1
    assert "http" not in page.replace("data:image", "") and page.count("data:image/png;base64,") == len(
        [n for n in names if n.endswith(".png")])
    # a rerun writes the same bytes; without smoke the documents differ by the banner alone
    again = build_report(results, data, tmp_path / "again", examples=2, dpi=40)
    assert [p.name for p in files] == [p.name for p in again]
    assert [p.read_bytes() for p in files[:-3]] == [p.read_bytes() for p in again[:-3]]
    banner = {"RESULTS.md": f"> **{SMOKE_BANNER}**\n\n", "headline.md": f"> **{SMOKE_BANNER}**\n\n",
              "report.html": f'<div class="smoke">{SMOKE_BANNER}</div>\n'}
    for p, q in zip(files[-3:], again[-3:]):
        assert p.read_text().replace(banner[p.name], "", 1) == q.read_text() and SMOKE_BANNER not in q.read_text()


def test_per_image_figure_shows_the_top_pixels_and_each_images_curve():
    import numpy as np
    import pandas as pd

    from actmatch.report.preservation import _top, per_image_figure

    m = np.arange(100, dtype=np.uint8).reshape(10, 10)
    top = _top(m, 0.05)
    assert top.sum() == 5 and top.reshape(-1)[-5:].all()            # the five highest values
    previews = {"ids": np.array(["a", "b"]), "ours:per_image": np.stack([m, m[::-1]]), "extremal": np.stack([m, m])}
    rows = [{"method": meth, "seed": 0, "id": i, "area": 0.1, **{f"kept@{b:g}": 1.0 for b in (0.05, 0.1)},
             **{f"p_ratio@{b:g}": r for b in (0.05, 0.1)}} for meth, r in (("ours:per_image", 0.8), ("extremal", 0.2))
            for i in ("a", "b")]
    images = [np.zeros((10, 10, 3), dtype=np.uint8)] * 2
    fig = per_image_figure(images, ["a", "b"], previews, pd.DataFrame(rows), "ours:per_image", "extremal",
                           (0.02, 0.05, 0.1), "t")
    axes = fig.get_axes()
    assert len(axes) == 2 * (1 + 3 + 1 + 1)                        # image, 3 areas, the other method, the curve
    curve = axes[5].get_lines()
    assert [ln.get_label() for ln in curve[:2]] == ["ours:per_image", "extremal"]   # then the 0.5 guide line
    assert list(curve[0].get_ydata()) == [0.8, 0.8] and list(curve[1].get_ydata()) == [0.2, 0.2]


def test_per_image_table_reports_each_photo_across_seeds():
    import pandas as pd

    from actmatch.report.preservation import per_image_table

    def row(method, seed, i, area, kept, p_ratio):
        return {"method": method, "seed": seed, "id": i, "area": area, "kept": kept, "p_ratio": p_ratio}

    rows = [row("ours:a", 0, "cat", 0.04, 1, 0.6), row("ours:a", 1, "cat", 0.06, 0, 0.2),
            row("ours:a", 2, "cat", 0.05, 1, 0.5), row("ours:a", 0, "dog", 0.10, 1, 0.9),
            row("ours:a", 1, "dog", 0.30, 1, 0.7), row("ours:a", 2, "dog", 0.20, 0, 0.1),
            row("ours:b", 0, "cat", 0.5, 1, 1.5),              # one seed, one image only
            row("ep", -1, "cat", 0.0, 0, 0.0), row("ep", -1, "dog", 0.0, 0, 0.0)]   # all-empty: collapsed
    t = per_image_table(pd.DataFrame(rows), ["ours:a", "ours:b", "ep"]).set_index("image")
    assert list(t.index) == ["cat", "dog"]
    assert t.loc["cat", "ours:a area"] == "0.050 (0.040–0.060)" and t.loc["dog", "ours:a area"] == "0.200 (0.100–0.300)"
    assert t.loc["cat", "ours:a kept"] == "2/3" and t.loc["dog", "ours:a kept"] == "2/3"
    assert t.loc["cat", "ours:a p_ratio"] == "0.50 (0.20–0.60)" and t.loc["dog", "ours:a p_ratio"] == "0.70 (0.10–0.90)"
    assert t.loc["cat", "ours:b area"] == "0.500" and t.loc["cat", "ours:b kept"] == "1/1"
    assert t.loc["dog", "ours:b area"] == "–"                      # not explained by that regime
    assert t.loc["cat", "ep kept"] == "collapsed"
    assert "margin_x" not in t                                      # a table without the column: none shown
    with_margin = pd.DataFrame(rows).assign(p_x=lambda d: d["id"].map({"cat": 0.384, "dog": 0.9}),
                                            margin_x=lambda d: d["id"].map({"cat": 0.0104, "dog": 0.85}))
    t = per_image_table(with_margin, ["ours:a"]).set_index("image")
    assert list(t.columns[:2]) == ["p_x(y)", "margin_x"]
    assert t.loc["cat", "p_x(y)"] == "0.384" and t.loc["cat", "margin_x"] == "0.010" and t.loc["dog", "margin_x"] == "0.850"
    # a full mask keeps the label by being the photo (the ladder's last rung on a photo it could not explain):
    # never counted as kept, like the empty one; a trivial photo's kept stays counted (its column says so)
    full = pd.DataFrame([row("ours:a", 0, "cat", 1.0, 1, 1.0), row("ours:a", 1, "cat", 0.39, 0, 0.2),
                         row("ours:a", 2, "cat", 1.0, 1, 1.0)]
                        + [row("ours:a", s, "moon", 0.02, 1, 2.2) for s in (0, 1, 2)]).assign(
        trivial=lambda d: (d["id"] == "moon").astype(int))
    t = per_image_table(full, ["ours:a"]).set_index("image")
    assert t.loc["cat", "ours:a kept"] == "0/3" and t.loc["cat", "ours:a area"] == "1.000 (0.390–1.000)"
    assert t.loc["moon", "ours:a kept"] == "3/3" and t.loc["moon", "trivial"] == "yes"


def test_our_rows_cost_comes_from_the_explain_stages_timing(tmp_path):
    """Table 1's ms of ours is the median over seeds of the explain stage's own timing (results/timing/),
    preferred over a cost.json entry; the baselines' ms stay evaluate's (issue 28)."""
    from actmatch.explainer.timing import write_timing

    results, data = _results_tree(tmp_path)
    write_timing(results / "timing/train_explainer/mnist_cnn-mnist.json", "train_explainer", "mnist_cnn-mnist", "cpu",
                 {f"seed{k}": {"amortized_ms_per_image": ms} for k, ms in enumerate((7.0, 9.5, 8.0))})
    build_report(results, data, tmp_path / "out", examples=2, dpi=40, smoke=True)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in (tmp_path / "out/table1_mnist_cnn-mnist.md").read_text().splitlines() if line.startswith("| ")}
    header = rows["method"]
    ms = header.index("ms / expl.")
    assert rows["ours:amortized"][ms] == "8.0"            # median of 7.0, 9.5, 8.0; cost.json said 1.6
    assert rows["gradcam"][ms] == "1,234"                  # a baseline: evaluate's cost.json
