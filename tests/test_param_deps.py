"""Param deps at the granularity each stage reads, checked with DVC itself: a scratch repo holds the
project's params.yaml and its dvc.yaml with every stage's params exactly as declared (commands, file
deps and outputs stubbed out, so nothing runs), `dvc commit` records the lock, one value is edited and
`dvc status` says which stages it would rerun. Editing the photo preset must leave every MNIST stage up
to date; editing the MNIST preset reaches the runs that derive from it and no photo stage; editing a
baseline's settings reruns evaluate only (issue 28)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]


def _dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("params")
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load((ROOT / "dvc.yaml").read_text())
    for stage in doc["stages"].values():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            body.pop(key, None)
        body["deps"], body["cmd"] = ["stub.txt"], "true"   # the params lists stay exactly as declared
    yaml.dump(doc, work / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", work / "params.yaml")
    (work / "stub.txt").write_text("stub\n")
    _dvc(work, "init", "--no-scm", "-q")
    _dvc(work, "commit", "-f", "-q")  # the lock of every stage, params as they are now
    assert json.loads(_dvc(work, "status", "--json")) == {}
    return work


def _stale_after(work: Path, edit) -> set[str]:
    """The stages `dvc status` reports after ``edit(params)``; params.yaml is restored afterwards."""
    yaml = YAML(typ="safe", pure=True)
    original = (work / "params.yaml").read_text()
    params = yaml.load(original)
    edit(params)
    yaml.dump(params, work / "params.yaml")
    try:
        return set(json.loads(_dvc(work, "status", "--json")))
    finally:
        (work / "params.yaml").write_text(original)


def _instances(work: Path) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(work)) as repo:
        return {s.addressing for s in repo.index.stages}


def test_editing_the_photo_preset_leaves_every_mnist_stage_up_to_date(scratch):
    def edit(p):
        p["explainer"]["presets"]["tuned_photos"]["weights"]["area"] += 1
    stale = _stale_after(scratch, edit)
    assert "explain_images@efficientnet_lite0-photos" in stale
    assert all("photos" in s for s in stale), f"the photo preset reran {sorted(s for s in stale if 'photos' not in s)}"


def test_editing_the_mnist_preset_reaches_what_derives_from_it_and_no_photo_stage(scratch):
    def edit(p):
        p["explainer"]["presets"]["tuned_mnist"]["weights"]["tv"] += 1
    stale = _stale_after(scratch, edit)
    params = YAML(typ="safe", pure=True).load((scratch / "params.yaml").read_text())
    derived = {k for k, r in params["explainer"]["amortized_runs"].items()
               if r["preset"] in ("tuned_mnist", "tuned_cluttered", "tuned_binary")}
    assert {f"train_explainer@{k}" for k in derived} <= stale and "explain_images@mnist_cnn-mnist" in stale
    assert {s for s in _instances(scratch) if s.startswith("ablate@")} <= stale   # the ablated run's preset
    assert not {s for s in stale if "photos" in s or s.endswith("-paper")}, sorted(stale)


def test_editing_a_baseline_reruns_evaluate_and_not_the_ablation(scratch):
    def edit(p):
        p["evaluate"]["defaults"]["baselines"]["rise"]["masks"] += 1
    stale = _stale_after(scratch, edit)
    assert "evaluate@mnist_cnn-mnist" in stale and all(s.startswith("evaluate@") for s in stale), sorted(stale)


@pytest.mark.parametrize("profile", sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml")))
def test_the_declared_preset_params_cover_every_profile(profile):
    """dvc.yaml's preset lists are generated from the default params.yaml; a profile overlays other runs
    and presets on it. Each stage must still declare every preset its runs read under the profile
    (else editing that preset would leave a stale result)."""
    import copy

    sys.path.insert(0, str(ROOT / "tools"))
    from sync_deps import PRESETS, preset_params

    from actmatch.profiles import merge

    yaml = YAML(typ="safe", pure=True)
    params = merge(copy.deepcopy(yaml.load((ROOT / "params.yaml").read_text())),
                   yaml.load((ROOT / "profiles" / f"{profile}.yaml").read_text()))
    for name, stage in yaml.load((ROOT / "dvc.yaml").read_text())["stages"].items():
        declared = {str(p) for p in stage.get("do", stage).get("params") or [] if str(p).startswith(PRESETS)}
        if declared:
            missing = set(preset_params(stage, params)) - declared
            assert not missing, f"{name} under profile {profile} reads {sorted(missing)}, not declared in dvc.yaml"
