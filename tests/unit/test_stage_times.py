"""Timings that travel (issue 28): the per-stage log records the machine, tools/machine_score.py measures
a fixed workload, and tools/stage_times.py writes the table with the machine and its score beside the
minutes, so two machines' times compare as ratios."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import machine_score  # noqa: E402
import stage_times  # noqa: E402


def test_the_stage_log_records_the_machine(tmp_path, monkeypatch):
    from actmatch.core import stage

    monkeypatch.setenv("DVC_STAGE", "train_vae@mnist")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setattr(stage, "TIMINGS", "state/times.jsonl")
    stage._log_time()
    row = json.loads((tmp_path / "state/times.jsonl").read_text())
    assert row["stage"] == "train_vae@mnist" and row["seconds"] > 0 and row["cores"] >= 1 and row["cpu"]


def test_stage_times_table_carries_the_machine_and_its_score(tmp_path, monkeypatch):
    log = tmp_path / "times.jsonl"
    rows = [{"stage": "evaluate@a", "seconds": 120.0, "threads": 2, "cpu": "Test CPU", "cores": 2},
            {"stage": "evaluate@b", "seconds": 60.0, "threads": 2, "cpu": "Test CPU", "cores": 2},
            {"stage": "evaluate@a", "seconds": 90.0, "threads": 2, "cpu": "Test CPU", "cores": 2},  # a rerun: latest
            {"stage": "report", "seconds": 30.0, "threads": None, "cpu": "Test CPU", "cores": 2},
            {"stage": "evaluate@b", "seconds": 1.0, "threads": 2, "cpu": "Test CPU", "cores": 2, "resumed": True},
            {"stage": "evaluate@b", "seconds": 60.0, "threads": 2, "cpu": "Test CPU", "cores": 2}]  # whole again
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    score = tmp_path / "score.json"
    score.write_text(json.dumps({"score": 12.5, "unit": "iterations per second", "load_average": [1.0, 1.0, 1.0],
                                 "measured_at": 0, "machine": {"cpu": "Test CPU", "cores": 2, "torch_threads": 2}}))
    out, md = tmp_path / "st.json", tmp_path / "st.md"
    monkeypatch.setattr(sys, "argv", ["stage_times.py", "--log", str(log), "--out", str(out), "--markdown", str(md),
                                      "--score", str(score)])
    assert stage_times.main() == 0
    res = json.loads(out.read_text())
    assert res["total_seconds"] == 180.0 and res["groups"] == {"evaluate": 150.0, "report": 30.0}
    assert res["machine"] == {"cpu": "Test CPU", "cores": 2, "torch_threads": [2]}
    assert res["machine_score"]["score"] == 12.5
    text = md.read_text()
    assert "Test CPU, 2 cores, 2 torch threads; machine score 12.50 it/s" in text
    assert "| `evaluate` | 2 | 2.5 | 83.3 % |" in text and "| **total** | 3 | **3.0** | 100 % |" in text
    assert res["resumed"] == [] and "Resumed" not in text
    log.write_text(log.read_text() + json.dumps({"stage": "report", "seconds": 3.0, "resumed": True}) + "\n")
    assert stage_times.main() == 0
    assert json.loads(out.read_text())["resumed"] == ["report"]
    assert "timed only for the rest of their work: `report`." in md.read_text()


def test_a_stage_that_finds_its_state_logs_that_it_resumed(tmp_path, monkeypatch):
    from actmatch.core import stage

    monkeypatch.setenv("DVC_STAGE", "evaluate@g")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setattr(stage, "TIMINGS", "times.jsonl")
    state = tmp_path / "state" / "evaluate-g"
    assert stage.run_stage(lambda argv: None, ["--state", str(state)], check=None) == 0
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "evaluate-g-paper-seed0").write_text("x")   # another run's (evaluate@g-paper)
    assert stage.run_stage(lambda argv: None, ["--state", str(state)], check=None) == 0
    (tmp_path / "state" / "evaluate-g-seed1").write_text("x")     # a killed run's per-seed state
    assert stage.run_stage(lambda argv: None, ["--state", str(state)], check=None) == 0
    rows = [json.loads(line) for line in (tmp_path / "times.jsonl").read_text().splitlines()]
    assert [r.get("resumed", False) for r in rows] == [False, False, True]


def test_machine_score_runs_the_fixed_workload_and_refuses_bad_settings(tmp_path, capsys):
    res = machine_score.measure(seconds=0.2, threads=1)
    assert res["score"] > 0 and len(res["blocks"]) >= 3 and res["parameters"] == 242_122
    assert res["machine"]["torch_threads"] == 1 and min(res["blocks"]) <= res["score"] <= max(res["blocks"])
    assert machine_score.main(["--seconds", "0", "--out", str(tmp_path / "s.json")]) == 2
    assert "--seconds must be positive" in capsys.readouterr().err and not (tmp_path / "s.json").exists()


@pytest.fixture(autouse=True)
def _threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
