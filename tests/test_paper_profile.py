"""The paper profile end to end on the CPU with a shrunk config (issue 6): `actmatch profile
paper` merges profiles/paper.yaml into params.yaml; a plugin (tests/paper_plugin.py, named in
ACTMATCH_PLUGINS) registers the profile's four torchvision architectures under test names with
random weights served from an http.server on 127.0.0.1, and a tiny Imagenette-shaped archive on
the same server; then `dvc repro` runs every stage of the profile through the real download,
sha256 verification, loading, training, evaluation and report code. No internet."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from ruamel.yaml import YAML

from actmatch.data.sources import IMAGENETTE_CLASSES
from tests import paper_plugin
from tests.httpserver import LocalServer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
TEST_NAMES = {"resnet18": "test_resnet18", "efficientnet_b0": "test_efficientnet_b0",
              "mobilenet_v3_large": "test_mobilenet_v3_large", "vit_b_16": "test_vit_b_16"}


def _archive() -> bytes:
    """10 classes × (3 train + 2 val) small JPEGs in Imagenette v2's layout."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for wnid in sorted(IMAGENETTE_CLASSES):
            for part, k in (("train", 3), ("val", 2)):
                for i in range(k):
                    img = Image.fromarray(rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8))
                    jpg = io.BytesIO()
                    img.save(jpg, format="JPEG")
                    info = tarfile.TarInfo(f"imagenette2-320/{part}/{wnid}/{wnid}_{i}.JPEG")
                    info.size = len(jpg.getvalue())
                    tar.addfile(info, io.BytesIO(jpg.getvalue()))
    return buf.getvalue()


def _weights(build) -> bytes:
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(build().state_dict(), buf)
    return buf.getvalue()


def _run(cwd: Path, env: dict, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, f"{' '.join(args)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout + res.stderr


def _shrink(p: dict) -> dict:
    """Keep only the paper profile's runs, at toy sizes (the default's runs are test_dvc_repro's)."""
    p["device"] = "cpu"
    p["seeds"] = [0]
    p["download"] = {"datasets": ["mnist", "imagenette"], "classifiers": sorted(TEST_NAMES.values())}
    p["datasets"]["mnist"]["limit"] = 200  # make_cluttered_mnist is not a foreach stage: it always runs
    p["train_classifier"]["runs"] = {}
    ex = p["explainer"]
    ex["amortized_runs"] = {k: v for k, v in ex["amortized_runs"].items() if v["dataset"] == "imagenette"}
    ex["per_image_runs"] = {k: v for k, v in ex["per_image_runs"].items() if "imagenette" in k}
    small_unet = {"widths": [4, 8], "bottleneck": 8, "init_area": 0.1}
    for run in [*ex["amortized_runs"].values(), *ex["per_image_runs"].values()]:
        run["compute"]["loader_workers"] = 2
    for run in ex["amortized_runs"].values():
        run.update(unet=small_unet, eval_images=20, eval_per_class=2,
                   amortized={"lr": 1e-3, "epochs": 1, "batch_size": 8}, finetune={"lr": 1e-3, "steps": 1})
    for run in ex["per_image_runs"].values():
        run.update(unet={**small_unet, "init_area": run["unet"]["init_area"]}, eval_images=10, eval_per_class=1,
                   per_image={**run["per_image"], "steps": 2})
    p["evaluate"]["runs"] = {k: v for k, v in p["evaluate"]["runs"].items() if v["dataset"] == "imagenette"}
    ev = p["evaluate"]["defaults"]
    ev.update(curve_steps=4, perturb_draws=1, bootstrap=100, cost_images=1, budgets=[0.5, 0.1], batch_size=16)
    ev["baselines"].update(rise={"masks": 8}, extremal={"steps": 2}, integrated_gradients={"steps": 2})
    p["ablation"].update(classifiers=["test_resnet18"], datasets=["imagenette"], eval_images=4,
                         train={"lr": 1e-3, "epochs": 1, "batch_size": 8, "max_train": 8})
    p["ablation"]["variants"] = {k: p["ablation"]["variants"][k] for k in ("base", "no_tv")}
    p["ablation"]["matched"] = []
    p["syce"]["runs"] = {}  # SyCE/CyCE are an MNIST-scale comparison (their own tests run them)
    p["syce"]["vae"].update(datasets=["mnist"], epochs=1)
    p["glance"].update(runs={}, feature_datasets=["mnist"])  # GLANCE too (test_dvc_repro runs it)
    p["report"]["examples"] = 2
    return p


@pytest.fixture(scope="module")
def paper_repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, work / name)
    for name in ("stages", "src"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (work / "profiles").mkdir()
    shutil.copy(ROOT / "profiles/full.yaml", work / "profiles/full.yaml")   # the report stage reads it
    text = (ROOT / "profiles/paper.yaml").read_text()
    for real, test in TEST_NAMES.items():
        text = text.replace(real, test)
    (work / "profiles/paper.yaml").write_text(text)
    (work / "paper_figures").mkdir()
    with LocalServer() as srv:
        manifest = {}
        for name, (_, build, _) in paper_plugin.BUILDERS.items():
            blob = _weights(build)
            srv.files[f"/{name}.pth"] = blob
            manifest[name] = [f"{srv.url}/{name}.pth", hashlib.sha256(blob).hexdigest()]
        blob = _archive()
        srv.files["/imagenette2-320.tgz"] = blob
        manifest["imagenette"] = [f"{srv.url}/imagenette2-320.tgz", hashlib.sha256(blob).hexdigest()]
        (work / "manifest.json").write_text(json.dumps(manifest))
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "ACTMATCH_PLUGINS": str(ROOT / "tests/paper_plugin.py"),
               "ACTMATCH_TEST_MANIFEST": str(work / "manifest.json"), "PYTHONPATH": str(ROOT),
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        out = _run(work, env, "actmatch.cli", "profile", "paper")
        assert "profile 'paper' applied" in out
        yaml = YAML(typ="safe", pure=True)
        p = yaml.load((work / "params.yaml").read_text())
        assert p["explainer"]["amortized_runs"]["test_resnet18"]["compute"]["precision"] == "bf16"
        assert "precision" not in p["explainer"]["amortized_runs"]["mnist_cnn-mnist"].get("compute", {})  # the CPU path
        assert "mnist_cnn-mnist" in p["explainer"]["amortized_runs"]  # an overlay: the default runs stay
        yaml.dump(_shrink(p), work / "params.yaml")
        for args in (("init", "--no-scm", "-q"), ("config", "core.analytics", "false"),
                     ("config", "core.check_update", "false")):
            _run(work, env, "dvc", *args)
        log = _run(work, env, "dvc", "repro")
        requests = list(srv.requests)
    return work, log, requests


def test_every_stage_of_the_paper_profile_runs(paper_repo):
    work, log, requests = paper_repo
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}
    clfs = sorted(TEST_NAMES.values())
    expect = {"download_data@mnist", "make_cluttered_mnist", "download_data@imagenette", "report", "ablate@test_resnet18-imagenette-base",
              "ablate@test_resnet18-imagenette-no_tv", "make_mnist_3v8", "train_vae@mnist", "make_morpho_mnist",
              "morpho_features@mnist"}  # always built (one stage; syce.vae.datasets, glance.feature_datasets never empty)
    for c in clfs:
        expect |= {f"download_classifier@{c}", f"train_explainer@{c}", f"explain_images@{c}-imagenette",
                   f"explain_images@{c}-imagenette-paper", f"evaluate@{c}"}
    assert ran == expect
    assert {path for path, _ in requests} >= {"/imagenette2-320.tgz", *(f"/{c}.pth" for c in clfs)}


def test_paper_profile_outputs(paper_repo):
    work, _, _ = paper_repo
    for c in sorted(TEST_NAMES.values()):
        group = work / f"results/explainers/{c}"
        masks = np.load(group / "amortized/seed0/masks.npz")
        size = paper_plugin.BUILDERS[c][2]
        assert masks["amortized_soft"].shape == (20, size, size)
        per_image = np.load(group / "per_image_paper/seed0/masks.npz")
        assert len(per_image["ids"]) == 10 and set(per_image["ids"]) <= set(masks["ids"])  # nested fixed sets
        cfg = YAML(typ="safe", pure=True).load((group / "per_image_paper/seed0/config.yaml").read_text())
        assert cfg["run"]["eval_per_class"] == 1 and cfg["run"]["per_image"]["steps"] == 2
        assert cfg["run"]["unet"]["init_area"] is None  # the authors' random head bias
        metrics = json.loads((work / f"results/metrics/{c}.json").read_text())["methods"]
        assert {"ours:amortized", "ours:finetune", "ours:per_image", "ours:per_image_paper", "gradcam"} <= set(metrics)
        scored = pd.read_csv(work / f"results/metrics/{c}/per_image.csv")
        assert (scored.method == "gradcam").sum() == 20 and (scored.method == "ours:per_image_paper").sum() == 10
        assert metrics["gradcam"]["metrics"]["kept"]["n"] in (0, 20)  # 0: binarized to a collapsed area
        assert metrics["ours:per_image_paper"]["metrics"]["kept"]["n"] in (0, 10)  # 0: the seed collapsed
    summary = pd.read_csv(work / "results/explainers/test_resnet18/amortized/seed0/summary.csv")
    ids = summary.loc[summary["regime"] == "amortized", "id"]
    assert ids.str.startswith("val_").all() and ids.nunique() == 20
    figures = {p.name for p in (work / "paper_figures").iterdir()}
    assert {"table1_test_vit_b_16.md", "fig1_test_resnet18.png",
            "table2_test_resnet18-imagenette.md", "report.html"} <= figures
