"""The ablation's own arithmetic: the matched rows' binarization at the target area and the collapse
rule they use (issue 18: the area term's target alone left the matched rows at hard area ≈ 0.22 for a
target of 0.135)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from actmatch.ablation import binarize, summarize_variant


def _soft() -> torch.Tensor:
    # one image, 2 × 4: the top two values are 0.9 (row 1, col 3) and 0.7 (row 0, col 1); 0.55 is third
    return torch.tensor([[[[0.2, 0.7, 0.1, 0.55],
                           [0.3, 0.0, 0.4, 0.9]]]])


def test_binarize_default_is_the_methods_threshold():
    hard = binarize(_soft(), None, tie_seed=0)
    assert hard.flatten().tolist() == [0, 1, 0, 1, 0, 0, 0, 1]  # > 0.5: three pixels, area 3/8


def test_binarize_at_an_area_keeps_the_top_pixels_exactly():
    hard = binarize(_soft(), 0.25, tie_seed=0)  # round(0.25 · 8) = 2 pixels: 0.9 and 0.7, not 0.55
    assert hard.flatten().tolist() == [0, 1, 0, 0, 0, 0, 0, 1]
    assert binarize(_soft(), 0.5, tie_seed=0).flatten().tolist() == [0, 1, 0, 1, 0, 0, 1, 1]  # + 0.55, 0.4
    # a batch of a collapsed (flat) mask and a real one: both get exactly the target area
    flat = torch.cat([torch.full_like(_soft(), 0.01), _soft()])
    assert binarize(flat, 0.25, tie_seed=3).mean(dim=(1, 2, 3)).tolist() == [0.25, 0.25]
    # ties are broken by the seed, reproducibly
    assert torch.equal(binarize(flat, 0.25, tie_seed=3), binarize(flat, 0.25, tie_seed=3))


def _matched_table() -> pd.DataFrame:
    # two seeds × three images, binarized at the target (area 0.25 everywhere); seed 0's own masks
    # (soft > 0.5) are all empty: it collapsed, although its `area` cannot show it
    rows = []
    for seed, own, kept in ((0, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]), (1, [0.2, 0.3, 0.4], [1.0, 1.0, 0.0])):
        for i in range(3):
            rows.append({"id": f"x{i}", "label": 1, "y": 1, "kept": kept[i], "area": 0.25, "area_own": own[i],
                         "seed": seed})
    return pd.DataFrame(rows)


def test_matched_collapse_is_decided_by_the_rows_own_binarization():
    s = summarize_variant(_matched_table(), "no_tv", 20, 0, collapse_on="area_own")
    assert s["seeds"] == 2 and s["collapsed"] == [0] and s["n"] == 3
    assert s["metrics"]["kept"]["mean"] == pytest.approx(2 / 3)  # seed 1 only
    assert s["metrics"]["area_own"]["mean"] == pytest.approx(0.3) and s["metrics"]["area"]["mean"] == 0.25
    assert s["per_seed"][0]["collapsed"] and not s["per_seed"][1]["collapsed"]
    assert s["per_seed"][1]["mean_area_own"] == pytest.approx(0.3) and s["per_seed"][0]["median_area"] == 0.25
    # judged on `area` (the target) nothing collapses and seed 0's kept 1/3 is averaged in: (1/3 + 2/3) / 2
    plain = summarize_variant(_matched_table(), "no_tv", 20, 0)
    assert plain["collapsed"] == [] and plain["metrics"]["kept"]["mean"] == pytest.approx(0.5)


def test_every_seed_collapsed_gives_nan_metrics_not_an_error():
    t = _matched_table().assign(area_own=0.0)
    s = summarize_variant(t, "no_tv", 20, 0, collapse_on="area_own")
    assert s["collapsed"] == [0, 1] and math.isnan(s["metrics"]["kept"]["mean"]) and s["metrics"]["kept"]["n"] == 0


def test_aggregate_seeds_decides_collapse_on_the_column_it_is_given():
    from actmatch.metrics.aggregate import aggregate_seeds

    t = _matched_table().assign(method="m")
    own = aggregate_seeds(t, ["kept"], 20, 0, collapse_on="area_own")["m"]
    assert own["collapsed"] == [0] and own["metrics"]["kept"]["mean"] == pytest.approx(2 / 3)
    assert own["metrics"]["kept"]["n"] == 3 and own["metrics"]["kept"]["sd"] == 0.0   # one live seed
    on_area = aggregate_seeds(t, ["kept"], 20, 0)["m"]                                  # the default: `area`
    assert on_area["collapsed"] == [] and on_area["metrics"]["kept"]["mean"] == pytest.approx(0.5)


def _variant_setup(monkeypatch, soft: torch.Tensor):
    """A toy classifier and dataset whose variant 'trains' to the given soft masks (training stubbed)."""
    import numpy as np
    from torch import nn

    from actmatch import ablation as A
    from actmatch.classifiers.registry import Classifier, freeze
    from actmatch.config.explainer import AmortizedParams, ExplainerRun
    from actmatch.data.store import ImageDataset
    from actmatch.explainer.train import MaskRun
    from actmatch.metrics.suite import ScoreSettings
    from tests.unit.test_explainer_train import LOSS

    class Lin(nn.Module):  # logits = (mean pixel, −mean pixel, 0): class 0 for a bright image, 2 for black
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            m = self.scale * x.mean(dim=(1, 2, 3))
            return torch.stack([m, -m, torch.zeros_like(m)], 1)

    n = len(soft)
    images = np.full((n + 2, 4, 4, 1), 255, np.uint8)
    index = pd.DataFrame({"id": [f"i{k}" for k in range(n + 2)], "label": [0] * (n + 2),
                          "split": ["test"] * n + ["train"] * 2})
    ds = ImageDataset("toy", images, index, {})
    clf = Classifier("toy", freeze(Lin()), 4, 1, (0.0,), (1.0,), (), ["a", "b", "c"])
    run = ExplainerRun(classifier="toy", dataset="mnist", preset="p", fill="black",
                       unet={"widths": [4], "bottleneck": 4, "init_area": 0.3}, eval_images=n,
                       amortized={"lr": 1e-3, "epochs": 1, "batch_size": 2})
    calls = []
    monkeypatch.setattr(A, "train_amortized", lambda *a, **k: (None, {}))
    monkeypatch.setattr(A, "predict_masks", lambda *a, **k: MaskRun(soft, {}))

    def suite(model, taps, x, y, soft, hard, *rest):  # stands for the whole metric suite
        calls.append(1)
        return {"area": hard.mean(dim=(1, 2, 3)).numpy(), "insertion_auc": np.zeros(len(x))}, {}
    monkeypatch.setattr(A, "score_masks", suite)
    score = ScoreSettings(batch_size=4, curve_steps=2, perturb_draws=1, budgets=(0.5,), max_pieces=2, seed=0)
    return A, (clf, ds, run, LOSS, AmortizedParams(lr=1e-3, epochs=1, batch_size=2), n, score, 0, 0), calls


def test_a_collapsed_seed_gets_the_cheap_columns_only(monkeypatch):
    # 20 images, 19 empty masks and one with 2 of 16 pixels: 95 % empty, collapsed
    soft = torch.zeros(20, 1, 4, 4)
    soft[0, 0, 0, :2] = 0.9
    A, args, calls = _variant_setup(monkeypatch, soft)
    _, _, table, _, _ = A.score_variant(*args)
    assert calls == []  # the metric suite never ran
    assert {"id", "label", "y", "area", "kept", "p_ratio"} <= set(table.columns) and "insertion_auc" not in table
    assert table["area"].tolist() == [0.125] + [0.0] * 19
    # x is all ones (class 0, logit 1); an empty mask leaves black = 0: logits (0, 0, 0), argmax 0 (first of ties)
    assert table["kept"].tolist() == [1.0] * 20 and table["y"].tolist() == [0] * 20
    # p_ratio = p_e(0) / p_x(0) = (1/3) / (e / (e + e^-1 + 1)) for the empty masks
    p_x = math.e / (math.e + math.exp(-1) + 1)
    assert table["p_ratio"].iloc[5] == pytest.approx((1 / 3) / p_x)


def test_a_live_seed_is_scored_with_the_whole_suite(monkeypatch):
    soft = torch.zeros(20, 1, 4, 4)
    soft[:2, 0, 0, :2] = 0.9  # 2 of 20 masks non-empty: 90 % empty, not collapsed
    A, args, calls = _variant_setup(monkeypatch, soft)
    _, _, table, _, _ = A.score_variant(*args)
    assert calls == [1] and "insertion_auc" in table and table["area"].iloc[:3].tolist() == [0.125, 0.125, 0.0]


def test_summaries_and_tables_read_seeds_with_and_without_the_suite_columns():
    full = _matched_table().assign(flip=0.5)
    cheap = full[full["seed"] == 0].drop(columns=["flip"]).assign(area_own=0.0)
    t = pd.concat([cheap, full[full["seed"] == 1]], ignore_index=True)
    s = summarize_variant(t, "no_tv", 20, 0, collapse_on="area_own")
    assert s["collapsed"] == [0] and s["metrics"]["flip"]["mean"] == 0.5 and s["metrics"]["flip"]["n"] == 3
