"""tools/batched_check.py: the before/after arithmetic of the batched rows (issue 28), by hand."""

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("batched_check", ROOT / "tools/batched_check.py")
bc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bc)


def _summary(kept, area, p_e, p_x, regime="per_image"):
    return pd.DataFrame({"id": [f"i{k}" for k in range(len(kept))], "kept": kept, "area": area, "p_e": p_e,
                         "p_x": p_x, "regime": regime})


def test_seed_means_read_one_regimes_rows_and_p_ratio_is_per_image():
    s = pd.concat([_summary([1, 0], [0.1, 0.3], [0.4, 0.9], [0.8, 0.9]),
                   _summary([0, 0], [0.9, 0.9], [0.1, 0.1], [0.5, 0.5], "per_image_last")])
    # p_ratio: mean(0.4/0.8, 0.9/0.9) = 0.75, not mean(p_e)/mean(p_x) = 0.65/0.85
    assert bc.seed_means(s, "per_image") == pytest.approx({"kept": 0.5, "area": 0.2, "p_ratio": 0.75})
    assert bc.seed_means(s, "per_image_last") == pytest.approx({"kept": 0.0, "area": 0.9, "p_ratio": 0.2})
    with pytest.raises(ValueError, match="no rows of regime 'finetune'"):
        bc.seed_means(s, "finetune")


def test_compare_row_spread_and_difference_in_sequential_sds():
    seq = {0: {"kept": 0.8, "area": 0.10, "p_ratio": 0.5}, 1: {"kept": 0.9, "area": 0.12, "p_ratio": 0.5},
           2: {"kept": 1.0, "area": 0.14, "p_ratio": 0.5}}
    bat = {0: {"kept": 0.9, "area": 0.10, "p_ratio": 0.5}, 1: {"kept": 0.9, "area": 0.13, "p_ratio": 0.5},
           2: {"kept": 1.0, "area": 0.16, "p_ratio": 0.6}}
    r = bc.compare_row(bat, seq)
    # sequential kept: mean 0.9, sd (ddof 1) sqrt((0.01 + 0 + 0.01) / 2) = 0.1
    assert r["sequential"]["kept"]["mean"] == pytest.approx(0.9) and r["sequential"]["kept"]["sd"] == pytest.approx(0.1)
    # batched kept mean 2.8 / 3; difference (0.9333 − 0.9) / 0.1 = 0.3333
    assert r["diff_in_sd"]["kept"] == pytest.approx(1 / 3)
    # area: sequential mean 0.12, sd 0.02; batched mean 0.13: +0.5 sd
    assert r["sequential"]["area"]["sd"] == pytest.approx(0.02) and r["diff_in_sd"]["area"] == pytest.approx(0.5)
    # p_ratio: the sequential seeds agree exactly (sd 0) and the batched mean differs: an infinite shift
    assert r["sequential"]["p_ratio"]["sd"] == 0.0 and r["diff_in_sd"]["p_ratio"] == math.inf
    assert r["seeds"]["2"]["batched"]["p_ratio"] == 0.6
    same = bc.compare_row(seq, seq)
    assert same["diff_in_sd"] == {"kept": 0.0, "area": 0.0, "p_ratio": 0.0}


def test_one_seed_has_no_spread_and_mismatched_seeds_are_refused():
    r = bc.compare_row({0: {"kept": 1.0, "area": 0.2, "p_ratio": 0.7}}, {0: {"kept": 1.0, "area": 0.3, "p_ratio": 0.7}})
    assert r["sequential"]["area"] == {"mean": 0.3, "sd": None} and r["diff_in_sd"]["area"] is None
    with pytest.raises(ValueError, match="seeds differ"):
        bc.compare_row({0: {}}, {1: {}})


def test_render_shows_each_row_and_the_placeholder_before_any_run():
    assert "Not yet measured" in bc.render(None) and bc.render(None).startswith(bc.HEADER)
    seq = {0: {"kept": 1.0, "area": 0.10, "p_ratio": 0.5}, 1: {"kept": 1.0, "area": 0.12, "p_ratio": 0.7}}
    bat = {0: {"kept": 1.0, "area": 0.11, "p_ratio": 0.5}, 1: {"kept": 1.0, "area": 0.12, "p_ratio": 0.7}}
    md = bc.render({"runs": {"per_image:m": {"rows": {"per_image": bc.compare_row(bat, seq)}}},
                    "chunks": {"per_image:m": 8}})
    row = next(line for line in md.splitlines() if line.startswith("| `per_image:m`"))
    # kept 1.000 ± 0.000 both, Δ 0; area seq 0.110 ± 0.014, batched 0.115 ± 0.007, (0.115 − 0.11) / 0.01414 = +0.35
    assert row == ("| `per_image:m` | per_image | 2 | 1.000 ± 0.000 | 1.000 ± 0.000 | +0.00 | 0.110 ± 0.014 | "
                   "0.115 ± 0.007 | +0.35 | 0.600 ± 0.141 | 0.600 ± 0.141 | +0.00 |")
    assert "per_image:m 8" in md
