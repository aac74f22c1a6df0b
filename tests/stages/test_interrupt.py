"""Interruption: a train_explainer, evaluate or train_syce run killed (SIGKILL) mid-way leaves no output,
resumes on rerun, and ends with exactly the numbers of an uninterrupted run (CPU, same seed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from tests.stages.test_stages import stage

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # subprocesses killed mid-run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interrupt")
    yaml = YAML(typ="safe", pure=True)
    d = yaml.load((ROOT / "params.yaml").read_text())
    d["device"] = "cpu"
    d["seeds"] = [0, 1]
    d["datasets"]["mnist"]["limit"] = 200
    d["train_classifier"]["defaults"].update(epochs=1, batch_size=64)
    run = d["explainer"]["amortized_runs"]["mnist_cnn-mnist"]
    run.update(eval_images=6, finetune={"lr": 1e-3, "steps": 2})
    run["amortized"].update(epochs=6, max_train=160, batch_size=16)
    ev = d["evaluate"]["defaults"]
    ev.update(curve_steps=4, perturb_draws=1, bootstrap=100, cost_images=1, budgets=[0.5, 0.1])
    ev["baselines"] = {"random": {}, "centre": {}, "rise": {"masks": 64}, "extremal": {"steps": 40},
                       "occlusion": {}, "integrated_gradients": {"steps": 8}}
    params = tmp / "params.yaml"
    yaml.dump(d, params)
    stage("download_data")(["--dataset", "mnist", "--out", str(tmp / "data/mnist"), "--cache", str(tmp / "dl"),
                            "--params", str(params)])
    stage("train_classifier")(["--run", "mnist_cnn-mnist", "--data", str(tmp / "data/mnist"), "--out",
                               str(tmp / "clf"), "--timing", str(tmp / "clf_timing.json"), "--params", str(params),
                               "--no-progress"])
    return tmp, params


def _argv(name: str, tmp: Path, params: Path, out: str) -> list[str]:
    flag = "--amortized-run" if name == "train_explainer" else "--run"
    common = [flag, "mnist_cnn-mnist", "--classifier", str(tmp / "clf/model"), "--data", str(tmp / "data/mnist"),
              "--params", str(params), "--no-progress"]
    if name == "train_explainer":
        return common + ["--out", str(tmp / out / "amortized"), "--live", str(tmp / out / "live"),
                         "--metrics", str(tmp / out / "live.json"), "--state", str(tmp / out / "state"),
                         "--timing", str(tmp / out / "timing.json")]
    return common + ["--explainers", str(tmp / "ex"), "--out", str(tmp / out / "metrics"),
                     "--metrics", str(tmp / out / "metrics.json"), "--state", str(tmp / out / "state")]


def _kill_when(argv: list[str], script: str, ready, timeout: float = 300) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages" / f"{script}.py"), *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not ready() and proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_train_explainer_killed_in_its_second_seed_resumes_to_the_same_numbers(setup):
    """Killed while training seed 1: DVC would empty the output folder before a rerun, so the rerun
    rebuilds seed 0 from its finished state files (no retraining) and resumes seed 1 at its last epoch."""
    tmp, params = setup
    stage("train_explainer")(_argv("train_explainer", tmp, params, "whole"))
    state = tmp / "cut" / "state-seed1.amortized"
    _kill_when(_argv("train_explainer", tmp, params, "cut"), "train_explainer", state.exists)
    assert state.exists() and (tmp / "cut" / "state-seed0.finetune").exists()
    shutil.rmtree(tmp / "cut" / "amortized", ignore_errors=True)               # what dvc repro does first
    stage("train_explainer")(_argv("train_explainer", tmp, params, "cut"))
    for seed in (0, 1):
        a, b = (np.load(tmp / run / f"amortized/seed{seed}/masks.npz") for run in ("whole", "cut"))
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
        pd.testing.assert_frame_equal(pd.read_csv(tmp / f"whole/amortized/seed{seed}/summary.csv"),
                                      pd.read_csv(tmp / f"cut/amortized/seed{seed}/summary.csv"))
    assert not list((tmp / "cut").glob("state*"))                              # cleaned up at the end


def test_evaluate_killed_mid_run_resumes_to_the_same_numbers(setup):
    tmp, params = setup
    if not (tmp / "whole/amortized").exists():
        stage("train_explainer")(_argv("train_explainer", tmp, params, "whole"))
    shutil.copytree(tmp / "whole/amortized", tmp / "ex/amortized", dirs_exist_ok=True)  # both seeds
    stage("evaluate")(_argv("evaluate", tmp, params, "e_whole"))
    state = tmp / "e_cut" / "state"
    _kill_when(_argv("evaluate", tmp, params, "e_cut"), "evaluate", lambda: len(list(state.glob("*.pt"))) >= 3)
    assert not (tmp / "e_cut/metrics.json").exists()
    stage("evaluate")(_argv("evaluate", tmp, params, "e_cut"))
    assert (tmp / "e_whole/metrics.json").read_bytes() == (tmp / "e_cut/metrics.json").read_bytes()
    assert (tmp / "e_whole/metrics/per_image.csv").read_bytes() == (tmp / "e_cut/metrics/per_image.csv").read_bytes()
    assert not state.exists()


def _ce_argv(tmp: Path, params: Path, out: str) -> list[str]:
    return ["--run", "mnist_cnn-mnist", "--classifier", str(tmp / "clf/model"), "--data", str(tmp / "data/mnist"),
            "--vae", str(tmp / "vae"), "--out", str(tmp / out / "syce"), "--live", str(tmp / out / "live"),
            "--metrics", str(tmp / out / "syce.json"), "--state", str(tmp / out / "state"), "--params", str(params),
            "--no-progress"]


def test_train_syce_killed_in_its_second_variant_resumes_to_the_same_maps(setup):
    """SyCE finished and CyCE part-way when killed: the rerun does not retrain SyCE (its state is at
    its last epoch) and continues CyCE from its last epoch, ending with the uninterrupted run's maps."""
    tmp, params = setup
    yaml = YAML(typ="safe", pure=True)
    d = yaml.load(params.read_text())
    d["syce"]["train"].update(batch_size=16, g_widths=[8, 16], d_widths=[8, 16])
    # the full profile's 10-class run (profiles/full.yaml; over the default's budget), at test size
    d["syce"]["runs"]["mnist_cnn-mnist"] = {"classifier": "mnist_cnn-mnist", "dataset": "mnist", "max_train": 120,
                                           "max_epochs": 6}
    d["syce"]["vae"].update(epochs=1, datasets=["mnist_3v8", "mnist"])
    ce_params = tmp / "ce_params.yaml"
    yaml.dump(d, ce_params)
    stage("train_vae")(["--data", str(tmp / "data/mnist"), "--out", str(tmp / "vae"), "--live", str(tmp / "vae_live"),
                        "--timing", str(tmp / "vae_timing.json"),
                        "--params", str(ce_params), "--no-progress"])
    stage("train_syce")(_ce_argv(tmp, ce_params, "c_whole"))
    state = tmp / "c_cut" / "state"
    cyce = state.with_suffix(".cyce")
    _kill_when(_ce_argv(tmp, ce_params, "c_cut"), "train_syce", cyce.exists)
    assert state.with_suffix(".syce").exists() and not (tmp / "c_cut/syce.json").exists()
    stage("train_syce")(_ce_argv(tmp, ce_params, "c_cut"))
    for variant in ("syce", "cyce"):
        a, b = (np.load(tmp / run / "syce" / variant / "maps.npz") for run in ("c_whole", "c_cut"))
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    whole, cut = (json.loads((tmp / run / "syce.json").read_text())["methods"] for run in ("c_whole", "c_cut"))
    for m in ("syce_10class", "cyce_10class"):
        for k in ("flip", "stable", "l1", "fd_adv", "js_stable", "epochs_run", "best_epoch"):
            assert whole[m][k] == cut[m][k], (m, k)
    assert not cyce.exists() and not state.with_suffix(".syce").exists()
