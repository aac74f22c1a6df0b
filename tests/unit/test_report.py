"""Report tables against hand-made results, figure structure, byte-stable saving, the HTML page."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from actmatch.report.build import html_page, sweeps
from actmatch.core.figures import save_figure
from actmatch.report.paper import Example, sweep_figure, tradeoff_figure, triplet_figure
from actmatch.report.tables import ablation_table, main_table, to_latex, to_markdown


def _ci(mean, lo, hi, n):
    return {"mean": mean, "lo": lo, "hi": hi, "n": n}


METRICS = {"methods": {
    "random": {"kept": _ci(0.2, 0.1, 0.3, 10), "area": _ci(0.05, 0.05, 0.05, 10)},
    "ours:amortized": {"kept": _ci(0.93, 0.889, 0.96, 200), "area": _ci(0.085, 0.08, 0.09, 200),
                       "flip": _ci(0.735, 0.67, 0.8, 200)},
    "integrated_gradients": {"kept": _ci(1.0, 1.0, 1.0, 200), "area": _ci(0.085, 0.08, 0.09, 200),
                             "flip": _ci(float("nan"), float("nan"), float("nan"), 0)},
}}
COST = {"random": {"ms_per_explanation": 0.24}, "ours:amortized": {"ms_per_explanation": 1.6},
        "integrated_gradients": {"ms_per_explanation": 1234.5}}


def test_main_table_orders_methods_formats_cells_and_leaves_out_absent_metrics():
    t = main_table(METRICS, COST)
    assert list(t["method"]) == ["ours:amortized", "integrated_gradients", "random"]  # ours, baselines, controls
    assert list(t.columns) == ["method", "n", "top-1 kept", "area", "compl. flip", "ms / expl."]  # no pointing
    row = t.set_index("method")
    assert row.loc["ours:amortized", "top-1 kept"] == "0.93 [0.89, 0.96]"
    assert row.loc["integrated_gradients", "compl. flip"] == "–"   # n = 0
    assert row.loc["random", "compl. flip"] == "–"                 # metric missing for that method
    assert row.loc["integrated_gradients", "ms / expl."] == "1,234" and row.loc["random", "ms / expl."] == "0.2"
    assert row.loc["random", "n"] == 10


def test_ablation_table_differences_and_exact_wilcoxon_p():
    ids = [f"i{k}" for k in range(6)]
    base = pd.DataFrame({"id": ids, "kept": [1, 1, 0, 1, 0, 1], "area": [0.10, 0.20, 0.30, 0.40, 0.50, 0.60]})
    # five shared images, every area larger by 1, 2, 3, 4, 5 hundredths: all ranks positive, so the
    # exact two-sided p is 2 / 2^5 = 0.0625; the sixth image is missing from the variant
    var = pd.DataFrame({"id": ids[:5], "kept": [1, 1, 0, 1, 0], "area": [0.11, 0.22, 0.33, 0.44, 0.55]})
    t = ablation_table({"base": base, "wider": var}, "base", ["kept", "area"]).set_index("variant")
    assert list(t.index) == ["base", "wider"]
    assert t.loc["base", "n"] == 6 and t.loc["wider", "n"] == 5
    assert t.loc["base", "Δ area"] == 0 and np.isnan(t.loc["base", "p area"])
    assert t.loc["wider", "area"] == pytest.approx(0.33)
    assert t.loc["wider", "Δ area"] == pytest.approx(0.03)
    assert t.loc["wider", "p area"] == pytest.approx(0.0625)
    assert np.isnan(t.loc["wider", "p kept"]) and t.loc["wider", "Δ kept"] == 0  # identical: no test
    with pytest.raises(KeyError, match="base variant 'nope'"):
        ablation_table({"base": base}, "nope", ["kept"])


def test_markdown_and_latex_render_every_row():
    t = main_table(METRICS, COST)
    md, tex = to_markdown(t), to_latex(t)
    assert md.count("\n") == 2 + 3 and "| ours:amortized " in md
    assert "\\toprule" in tex and "integrated\\_gradients" in tex


def _variant(weights, **other):
    loss = {"weights": {"act": 1.0, "area": 100.0, "tv": 50.0, **weights}, "act_distance": "paper", **other}
    return {"config": {"loss": loss}}


def test_sweeps_finds_one_weight_varied_at_a_time():
    variants = {"base": _variant({}), "area_20": _variant({"area": 20.0}), "area_500": _variant({"area": 500.0}),
                "tv_5": _variant({"tv": 5.0}),  # a single tv point: not a sweep
                "two": _variant({"area": 20.0, "tv": 5.0}), "cos": _variant({"area": 20.0}, act_distance="cosine")}
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
                        "area": [0.1, 0.2, 0.3], "kept": [0.9, 0.2, 0.5]})
    fig = tradeoff_figure(pts, "t")
    assert [a.get_title() for a in fig.get_axes()] == ["a", "b"]
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


def test_html_page_is_self_contained(tmp_path):
    md = tmp_path / "table1_g.md"
    md.write_text(to_markdown(main_table(METRICS, COST)))
    fig = triplet_figure([Example(_img(), np.ones((28, 28), bool), "seven", "area 5 %")], "t")
    save_figure(fig, tmp_path / "fig1_g.png")
    page = html_page([("group g", [md, tmp_path / "fig1_g.png", tmp_path / "table1_g.tex"])])
    assert "<td>0.93 [0.89, 0.96]</td>" in page and "<h2>group g</h2>" in page
    srcs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http" not in page.replace("data:image", "")


def test_markdown_prints_missing_values_as_a_dash():
    df = pd.DataFrame({"variant": ["base", "x"], "p kept": [float("nan"), 0.0625]})
    md = to_markdown(df)
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines()]
    assert rows[2] == ["base", "–"] and rows[3] == ["x", "0.0625"] and "nan" not in md


def test_ce_table_rows_settings_and_values():
    from actmatch.report.tables import ce_table

    m = {"flip": 0.99, "hit_target": 0.99, "stable": 0.935, "l1": 0.21, "fd_adv": 3.5, "fd_stable": 1.25,
         "js_adv": 0.2, "js_stable": 0.1, "n": 200, "best_epoch": 28, "epochs_run": 30, "train_minutes": 5.0}
    df = ce_table({"lenet-mnist_3v8": {"num_classes": 2, "methods": {"syce": m, "cyce": {**m, "flip": 0.89}}},
                   "mnist_cnn-mnist": {"num_classes": 10, "methods": {"syce_10class": {**m, "fd_adv": float("nan")}}}})
    assert list(df["method"]) == ["syce", "cyce", "syce_10class"]
    assert list(df["setting"]) == ["authors' (binary)", "authors' (binary)", "ours (10-class ext.)"]
    assert df.loc[1, "flip"] == 0.89 and df.loc[0, "epochs (best / run)"] == "28 / 30" and df.loc[0, "n"] == 200
    assert to_markdown(df).splitlines()[-1].count("–") == 1  # the NaN FD prints as a dash, nothing else does


def test_ce_figure_has_input_plus_three_columns_per_method():
    from actmatch.report.paper import CEExample, ce_figure

    img = np.zeros((8, 8), np.uint8)
    panel = (img, img, np.random.default_rng(0).random((8, 8)), "stable, flips")
    ex = [CEExample(img, "3 → 8", {"syce": panel, "cyce": panel}) for _ in range(2)]
    fig = ce_figure(ex, "t")
    assert len(fig.axes) == 2 * (1 + 3 * 2)
    assert fig.axes[1].get_title() == "syce\nsimilar" and fig.axes[6].get_title() == "cyce\nmap"
    with pytest.raises(ValueError, match="at least one"):
        ce_figure([], "t")


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
