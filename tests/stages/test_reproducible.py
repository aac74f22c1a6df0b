"""Two runs of a training stage give byte-identical outputs (issue 28): the output folder of
train_classifier, train_explainer and explain_images depends only on the inputs (checkpoints saved
through core.io.save_torch, no wall time, no temporary file name, no dvclive log inside), so DVC stops a
rerun at the first stage whose outputs did not change. Each stage runs twice in a separate process, to
folders of different names; only the timing files (beside the outputs) may differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(script: str, *argv: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "2"}
    res = subprocess.run([sys.executable, str(ROOT / "stages" / f"{script}.py"), *argv], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repro")
    yaml = YAML(typ="safe", pure=True)
    d = yaml.load((ROOT / "params.yaml").read_text())
    d["device"], d["seeds"] = "cpu", [0]
    d["datasets"]["mnist"]["limit"] = 200
    d["train_classifier"]["defaults"].update(epochs=1, batch_size=64)
    run = d["explainer"]["amortized_runs"]["mnist_cnn-mnist"]
    run.update(eval_images=4, finetune={"lr": 1e-3, "steps": 2, "select": "smallest_kept"})
    run["amortized"].update(epochs=1, max_train=32, batch_size=16)
    d["explainer"]["per_image_runs"]["mnist_cnn-mnist"].update(eval_images=2, per_image={"lr": 1e-3, "steps": 3})
    params = tmp / "params.yaml"
    yaml.dump(d, params)
    _run("download_data", "--dataset", "mnist", "--out", str(tmp / "data/mnist"), "--cache", str(tmp / "dl"),
         "--params", str(params))
    return tmp, str(params)


def _twice(tmp: Path, script: str, argv) -> tuple[dict[str, bytes], dict[str, bytes], list[Path]]:
    outs, timings = [], []
    for name in ("first", "second_run"):
        out, timing = tmp / name / script / "out", tmp / name / script / "timing.json"
        _run(script, *argv(out, tmp / name / script), "--timing", str(timing), "--no-progress")
        outs.append(_files(out))
        timings.append(timing)
    return outs[0], outs[1], timings


def test_train_classifier_twice_gives_the_same_checkpoint_bytes(work):
    tmp, params = work
    a, b, timings = _twice(tmp, "train_classifier", lambda out, d: [
        "--run", "mnist_cnn-mnist", "--data", str(tmp / "data/mnist"), "--out", str(out), "--params", params])
    assert "model/model.pt" in a and a == b, [k for k in a if a[k] != b.get(k)]
    assert all(json.loads(t.read_text())["seconds"] > 0 for t in timings)


@pytest.mark.slow
def test_train_explainer_and_explain_images_twice_give_the_same_bytes(work):
    tmp, params = work
    clf = tmp / "first/train_classifier/out/model"
    if not clf.exists():
        test_train_classifier_twice_gives_the_same_checkpoint_bytes(work)
    common = ["--classifier", str(clf), "--data", str(tmp / "data/mnist"), "--params", params]
    a, b, _ = _twice(tmp, "train_explainer", lambda out, d: [
        "--amortized-run", "mnist_cnn-mnist", *common, "--out", str(out), "--live", str(d / "live"),
        "--metrics", str(d / "live.json"), "--state", str(d / "state")])
    assert {"seed0/explainer.pt", "seed0/masks.npz", "seed0/summary.csv", "seed0/config.yaml"} <= set(a)
    assert a == b, [k for k in a if a[k] != b.get(k)]
    a, b, timings = _twice(tmp, "explain_images", lambda out, d: [
        "--run", "mnist_cnn-mnist", *common, "--out", str(out), "--live", str(d / "live"),
        "--metrics", str(d / "live.json"), "--state", str(d / "state")])
    assert {"seed0/masks.npz", "seed0/summary.csv"} <= set(a) and a == b, [k for k in a if a[k] != b.get(k)]
    rec = json.loads(timings[0].read_text())
    assert rec["group"] == "mnist_cnn-mnist" and rec["regime"] == "per_image" and rec["seeds"]["seed0"]["images"] == 2
