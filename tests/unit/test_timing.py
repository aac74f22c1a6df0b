"""Our rows' cost comes from the explain stages' own timing files (explainer/timing.py), not from timing
the regimes again in evaluate: medians over seeds, a ``_last`` row sharing its regime's time, only the
asked group's files."""

from __future__ import annotations

import json

import pytest

from actmatch.explainer.timing import our_costs, write_timing


def test_our_costs_are_medians_over_seeds_and_a_last_row_shares_its_regime(tmp_path):
    t = tmp_path / "timing"
    write_timing(t / "train_explainer/g.json", "train_explainer", "g", "cpu",
                 {"seed0": {"amortized_ms_per_image": 2.0, "finetune_ms_per_image": 300.0},
                  "seed1": {"amortized_ms_per_image": 4.0, "finetune_ms_per_image": 100.0},
                  "seed2": {"amortized_ms_per_image": 3.0, "finetune_ms_per_image": 200.0}})
    write_timing(t / "explain_images/g.json", "explain_images", "g", "cpu",
                 {"seed0": {"ms_per_image": 5000.0}, "seed1": {"ms_per_image": 7000.0}}, regime="per_image")
    write_timing(t / "explain_images/g-paper.json", "explain_images", "g", "cpu",
                 {"seed0": {"ms_per_image": 90000.0}}, regime="per_image_paper")
    write_timing(t / "explain_images/other.json", "explain_images", "other", "cpu",
                 {"seed0": {"ms_per_image": 1.0}}, regime="per_image")
    cost = our_costs(t, "g")
    ms = {k: v["ms_per_explanation"] for k, v in cost.items()}
    assert ms == {"ours:amortized": 3.0, "ours:finetune": 200.0, "ours:finetune_last": 200.0,
                  "ours:per_image": 6000.0, "ours:per_image_last": 6000.0, "ours:per_image_paper": 90000.0,
                  "ours:per_image_paper_last": 90000.0}
    assert cost["ours:per_image"]["n"] == 2 and cost["ours:per_image_last"]["same_as"] == "ours:per_image"
    assert cost["ours:amortized"]["source"].endswith("timing/train_explainer/g.json")
    rec = json.loads((t / "train_explainer/g.json").read_text())
    assert rec["machine"]["device"] == "cpu" and rec["machine"]["torch_threads"] >= 1 and rec["group"] == "g"


def test_a_run_without_finetune_or_timing_files_gives_no_row(tmp_path):
    assert our_costs(tmp_path / "nothing", "g") == {}
    write_timing(tmp_path / "train_explainer/g.json", "train_explainer", "g", "cpu",
                 {"seed0": {"amortized_ms_per_image": 1.5, "finetune_ms_per_image": None}})
    assert {k: v["ms_per_explanation"] for k, v in our_costs(tmp_path, "g").items()} == {"ours:amortized": 1.5}


def test_no_path_writes_nothing(tmp_path):
    write_timing(None, "train_explainer", "g", "cpu", {})
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "explain_images").mkdir()
    (tmp_path / "explain_images/g.json").write_text(json.dumps({"stage": "explain_images", "group": "g"}))
    with pytest.raises(ValueError, match=r"explain_images/g.json is not an explain stage's timing file"):
        our_costs(tmp_path, "g")


def test_a_seed_resumed_from_a_killed_run_is_left_out_of_the_cost(tmp_path):
    """A seed that resumed from its state timed only the rest of its work (measured: 0.06 s for a finished
    seed, 1140 s for one resumed mid-way under load): the median is over the seeds that ran whole."""
    write_timing(tmp_path / "explain_images/g.json", "explain_images", "g", "cpu",
                 {"seed0": {"ms_per_image": 10.0, "resumed": ["per_image"]}, "seed1": {"ms_per_image": 5000.0},
                  "seed2": {"ms_per_image": 7000.0, "resumed": []}}, regime="per_image")
    write_timing(tmp_path / "train_explainer/g.json", "train_explainer", "g", "cpu",
                 {"seed0": {"amortized_ms_per_image": 2.0, "finetune_ms_per_image": 1.0, "resumed": ["finetune"]},
                  "seed1": {"amortized_ms_per_image": 4.0, "finetune_ms_per_image": 300.0, "resumed": ["amortized"]}})
    cost = our_costs(tmp_path, "g")
    assert cost["ours:per_image"]["ms_per_explanation"] == 6000.0 and cost["ours:per_image"]["n"] == 2
    assert cost["ours:finetune"]["ms_per_explanation"] == 300.0 and cost["ours:finetune"]["n"] == 1
    assert cost["ours:amortized"]["ms_per_explanation"] == 3.0   # prediction always runs whole
    write_timing(tmp_path / "explain_images/g.json", "explain_images", "g", "cpu",
                 {"seed0": {"ms_per_image": 10.0, "resumed": ["per_image"]}}, regime="per_image")
    assert "ours:per_image" not in our_costs(tmp_path, "g")
