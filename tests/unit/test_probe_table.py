"""tools/probe_table.py: the probes' summary that docs/results.md shows (issue 19), by hand."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("probe_table", ROOT / "tools/probe_table.py")
probe_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe_table)


def _row(cfg, seed, photo, area, kept, p_ratio):
    return {"cfg": cfg, "seed": seed, "photo": photo, "area": area, "kept": kept, "p_ratio": p_ratio}


def test_each_probe_is_summarized_over_its_own_runs_and_the_bar_needs_all_three_conditions():
    rows = [
        # B first: the table keeps the order the probes first appear in, not the alphabet
        _row("B", 1, "moon", 0.30, 1, 0.90),
        _row("A", 0, "moon", 0.05, 1, 0.60),    # at the bar
        _row("A", 0, "clock", 0.04, 0, 0.90),   # small and confident but the label lost: not at the bar
        _row("A", 2, "moon", 0.10, 1, 0.25),    # both bounds inclusive: at the bar
        _row("A", 2, "clock", 0.20, 1, 0.80),   # kept but too large
        _row("B", 0, "moon", 0.08, 1, 0.20),    # kept, small, confidence collapsed
    ]
    t = probe_table.summarize(rows)
    assert list(t["probe"]) == ["B", "A"]
    a = t.set_index("probe").loc["A"]
    assert (a["photos"], a["seeds"], a["runs"], a["kept"], a["at the bar"]) == (2, "0,2", 4, "3/4", "2/4")
    assert a["median area"] == 0.075            # (0.05 + 0.10) / 2 of 0.04, 0.05, 0.10, 0.20
    assert a["median p_ratio"] == 0.7           # (0.60 + 0.80) / 2 of 0.25, 0.60, 0.80, 0.90
    b = t.set_index("probe").loc["B"]
    assert (b["photos"], b["seeds"], b["runs"], b["kept"], b["at the bar"]) == (1, "0,1", 2, "2/2", "0/2")
    assert b["median area"] == 0.19 and b["median p_ratio"] == 0.55


def test_the_committed_summary_is_the_one_the_committed_rows_give():
    import json
    rows = [json.loads(line) for line in probe_table.SOURCE.read_text().splitlines() if line.strip()]
    assert probe_table.TARGET.read_text() == probe_table.render(rows)


def test_photo_probe_overrides_are_the_librarys_own_validated_settings():
    """tools/photo_probes.py patches nothing: a coarser mask is UNetParams.grid, and every override is
    validated by the library's schema (a typo or a bad value fails before any compute)."""
    import pytest

    spec = importlib.util.spec_from_file_location("photo_probes", ROOT / "tools/photo_probes.py")
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    loss, unet, steps, fill = probes.settings({"unet.grid": "8", "loss.area_target": "0.05", "steps.steps": "3",
                                               "fill": '"mean"'})
    assert (unet.grid, loss.area_target, steps.steps, fill) == (8, 0.05, 3, "mean")
    assert probes.settings({})[1].grid == 1
    with pytest.raises(ValueError, match="grid"):
        probes.settings({"unet.grid": "0"})
    with pytest.raises(SystemExit, match="unknown override 'unett.grid'"):
        probes.settings({"unett.grid": "8"})
    assert "monkeypatch" not in (ROOT / "tools/photo_probes.py").read_text().lower()
    assert ".forward =" not in (ROOT / "tools/photo_probes.py").read_text()
    assert not any("/tmp" in str(p) for p in probes.WEIGHTS) and all(ROOT in p.parents for p in probes.WEIGHTS)
