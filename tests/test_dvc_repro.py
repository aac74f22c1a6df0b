"""The whole pipeline through `dvc repro` on a shrunk config, in a scratch copy of the repo:
it runs end to end, a second run does nothing, changing one classifier's training param reruns
only that classifier's stages (and the report), changing one ablation variant's weight reruns
only that variant and the report, and the report is byte-identical when rerun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


FIRST_RUN: dict[str, bytes] = {}  # metrics, checkpoints and masks of the first fresh run, vs a second one


def _metric_files(repo: Path) -> dict[str, bytes]:
    """Every metrics file a run writes except the timings (cost.json varies by nature), every checkpoint
    (``*.pt``: byte-reproducible since issue 28) and our masks."""
    files = [*repo.glob("results/metrics/*.json"), *repo.glob("results/*/*/live/metrics.json"),
             *repo.glob("results/ablations/*/*.json"), *repo.glob("results/ablations/*/*/seed*/per_image.csv"),
             *repo.glob("paper_figures/table2_*"), *repo.glob("paper_figures/fig[123]*"),
             *repo.glob("results/live/*/*.json"), *repo.glob("results/metrics/*/per_image.csv"),
             *repo.glob("results/**/*.pt"), *repo.glob("results/explainers/**/masks.npz")]  # checkpoints, masks
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(files)}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _make_repo(work: Path, scm: bool = False) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "stages", work / "stages")
    shutil.copytree(ROOT / "profiles", work / "profiles")   # the report names the full profile's rows
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    yaml = YAML(typ="safe", pure=True)
    p = yaml.load((work / "params.yaml").read_text())
    p["device"] = "cpu"
    p["seeds"] = [0, 1]
    p["ablation"]["seeds"] = [0, 1]
    p["datasets"]["mnist"]["limit"] = 200
    p["datasets"]["photos"]["names"] = ["coffee"]
    p["train_classifier"]["defaults"].update(epochs=1, batch_size=64)
    p["train_classifier"]["runs"] = {"mnist_cnn-mnist": {"arch": "mnist_cnn", "dataset": "mnist"},
                                     "small_resnet-cluttered_mnist": {"arch": "small_resnet",
                                                                      "dataset": "cluttered_mnist"},
                                     "lenet-mnist_3v8": {"arch": "lenet", "dataset": "mnist_3v8"},
                                     "mnist_cnn-morpho_mnist": {"arch": "mnist_cnn", "dataset": "morpho_mnist"}}
    ex = p["explainer"]
    ex["amortized_runs"]["mnist_cnn-mnist"].update(eval_images=8, finetune={"lr": 1e-3, "steps": 2})
    ex["amortized_runs"]["mnist_cnn-mnist"]["amortized"].update(epochs=1, max_train=64)
    ex["per_image_runs"]["mnist_cnn-mnist"].update(eval_images=2, per_image={"lr": 1e-3, "steps": 3,
                                                                             "select": "smallest_kept"})
    ex["per_image_runs"]["efficientnet_lite0-photos"].update(eval_images=1, per_image={"lr": 1e-3, "steps": 2})
    ex["per_image_runs"]["efficientnet_lite0-photos-paper"].update(eval_images=1, per_image={"lr": 5e-5, "steps": 2})
    for run in [*ex["amortized_runs"].values(), *ex["per_image_runs"].values()]:
        run["unet"]["init_area"] = 0.5   # a flat start whose hard mask is mixed: one tiny epoch cannot collapse it
    ex["per_image_runs"]["mnist_cnn-mnist-paper"].update(eval_images=2, per_image={"lr": 5e-5, "steps": 2})
    ex["amortized_runs"]["small_resnet-cluttered_mnist"].update(eval_images=6, finetune={"lr": 1e-3, "steps": 1})
    ex["amortized_runs"]["small_resnet-cluttered_mnist"]["amortized"].update(epochs=1, max_train=16)
    ex["amortized_runs"]["lenet-mnist_3v8"].update(eval_images=6, finetune={"lr": 1e-3, "steps": 1})
    ex["amortized_runs"]["lenet-mnist_3v8"]["amortized"].update(epochs=1, max_train=32)
    ce = p["syce"]
    # the full profile's 10-class run (profiles/full.yaml), so the conditional generator's path runs here too
    ce["runs"]["mnist_cnn-mnist"] = {"classifier": "mnist_cnn-mnist", "dataset": "mnist"}
    ce["vae"]["datasets"] = ["mnist_3v8", "mnist"]
    ce["train"].update(max_epochs=1, max_train=40, batch_size=16)
    ce["vae"].update(epochs=1, latent=4, js_bins=5)
    for run in ce["runs"].values():
        run.update(max_epochs=1, max_train=24)
    gl = p["glance"]
    gl["surrogate"].update(epochs=1, free=2, width=8, style_dim=8, batch_size=32)
    gl["local"].update(grid=[1.0, 3.0])
    gl["graph"].update(w_threshold=0.1)
    gl["figure_examples"] = 2
    ev = p["evaluate"]["defaults"]
    ev.update(curve_steps=4, perturb_draws=1, bootstrap=100, cost_images=1, budgets=[0.5, 0.1])
    ev["baselines"].update(rise={"masks": 16}, extremal={"steps": 2}, integrated_gradients={"steps": 4})
    p["evaluate"]["runs"]["efficientnet_lite0-photos"]["baselines"] = {"occlusion": {"window": 0.5}}
    ab = p["ablation"]
    ab["train"].update(epochs=1, max_train=64)
    ab["eval_images"] = 6
    ab["variants"] = {k: ab["variants"][k] for k in ("base", "no_tv", "area_20", "area_500")}
    ab["matched"] = ["no_tv"]
    p["report"]["examples"] = 2
    yaml.dump(p, work / "params.yaml")
    (work / "paper_figures").mkdir()
    if scm:  # dvc exp needs git
        _git(work, "init", "-q")
        _git(work, "config", "user.email", "test@example.com")
        _git(work, "config", "user.name", "test")
        _dvc(work, "init", "-q")
    else:
        _dvc(work, "init", "--no-scm", "-q")
    _dvc(work, "config", "core.analytics", "false")
    _dvc(work, "config", "core.check_update", "false")
    if scm:
        (work / ".gitignore").write_text("__pycache__/\n*.egg-info/\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", "scratch")
    return work


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return _make_repo(tmp_path_factory.mktemp("repo"))


def test_repro_end_to_end_then_nothing_then_only_the_changed_run(repo):
    out = _dvc(repo, "repro")
    for stage in ("download_data@mnist", "download_data@photos", "make_cluttered_mnist",
                  "download_classifier@efficientnet_lite0", "train_classifier@mnist_cnn-mnist",
                  "train_classifier@small_resnet-cluttered_mnist", "train_explainer@mnist_cnn-mnist",
                  "explain_images@mnist_cnn-mnist", "explain_images@efficientnet_lite0-photos",
                  "explain_images@mnist_cnn-mnist-paper", "train_explainer@small_resnet-cluttered_mnist",
                  "evaluate@mnist_cnn-mnist", "evaluate@small_resnet-cluttered_mnist", "evaluate@efficientnet_lite0-photos",
                  "ablate@mnist_cnn-mnist-mnist-base", "ablate@mnist_cnn-mnist-mnist-area_500", "report",
                  "make_mnist_3v8", "train_classifier@lenet-mnist_3v8", "train_vae@mnist_3v8", "train_vae@mnist",
                  "train_syce@lenet-mnist_3v8", "train_syce@mnist_cnn-mnist",
                  "ablate_matched@mnist_cnn-mnist-mnist-no_tv",
                  "evaluate@lenet-mnist_3v8", "make_morpho_mnist", "morpho_features@mnist",
                  "morpho_features@morpho_mnist", "train_classifier@mnist_cnn-morpho_mnist",
                  "train_glance@mnist_cnn-mnist", "train_glance@mnist_cnn-morpho_mnist"):
        assert f"Running stage '{stage}'" in out
    metrics = json.loads(_dvc(repo, "metrics", "show", "--json"))
    flat = json.dumps(metrics)
    assert "test_accuracy" in flat and (repo / "dvc.lock").is_file()
    assert (repo / "results/classifiers/mnist_cnn-mnist/model/model.pt").is_file()
    for seed in (0, 1):
        masks = np.load(repo / f"results/explainers/mnist_cnn-mnist/amortized/seed{seed}/masks.npz")
        assert masks["amortized_soft"].shape == (8, 28, 28) and masks["amortized_soft"].dtype == np.float32
        assert masks["finetune_hard"].dtype == bool
    train_ids = pd.read_csv(repo / "results/explainers/mnist_cnn-mnist/amortized/seed0/train_ids.csv")
    assert len(train_ids) == 64 and train_ids["label"].nunique() == 10  # a stratified sample, never the first 64
    photos = pd.read_csv(repo / "results/explainers/efficientnet_lite0-photos/per_image/seed0/summary.csv")
    assert list(photos["id"]) == ["coffee"] and photos.loc[0, "class_name"] == "espresso"
    mj = json.loads((repo / "results/metrics/mnist_cnn-mnist.json").read_text())
    m, refs = mj["methods"], mj["settings"]["reference_seeds"]   # the amortized seeds the baselines are binarized at
    assert set(m) == {"ours:amortized", "ours:finetune", "ours:per_image", "ours:per_image_last",
                      "ours:per_image_paper", "gradcam", "gradcam_pp", "integrated_gradients", "occlusion", "rise",
                      "extremal", "random", "centre", "syce_10class", "cyce_10class", "glance"}
    assert m["ours:amortized"]["seeds"] == 2 and set(refs) <= {0, 1}
    assert m["gradcam"]["seeds"] == max(1, len(refs)) and m["ours:amortized"]["collapsed"] == \
        sorted(int(k) for k in mj["settings"]["skipped_reference_seeds"])
    assert m["ours:per_image"]["selected_on_kept"] and not m["ours:per_image_last"]["selected_on_kept"]
    per_image = pd.read_csv(repo / "results/metrics/mnist_cnn-mnist/per_image.csv", dtype={"id": str})
    assert {"null_y", "trivial"} <= set(per_image.columns)
    for s in refs:  # binarized at each live seed's areas, image by image
        ref = per_image[(per_image.method == "ours:amortized") & (per_image.seed == s)].set_index("id")["area"]
        for other in ("glance", "syce_10class", "gradcam"):
            got = per_image[(per_image.method == other) & (per_image.seed == s)].set_index("id")["area"]
            np.testing.assert_allclose(got, ref.loc[got.index], atol=1 / 784)
    glance = json.loads((repo / "results/glance/mnist_cnn-morpho_mnist.json").read_text())
    assert glance["graph_recovery"]["variables"] == ["intensity", "slant", "thickness"] and glance["n_test"] == 40
    assert 0 <= glance["fidelity"] <= 1 and len(glance["alignment_r2"]) == 7
    bj = json.loads((repo / "results/metrics/lenet-mnist_3v8.json").read_text())
    binary = bj["methods"]
    assert {"syce", "cyce", "ours:amortized"} <= set(binary)
    assert binary["cyce"]["seeds"] == max(1, len(bj["settings"]["reference_seeds"]))
    ce = json.loads((repo / "results/syce/lenet-mnist_3v8.json").read_text())
    assert ce["num_classes"] == 2 and set(ce["methods"]) == {"syce", "cyce"}
    assert 0 <= ce["methods"]["syce"]["flip"] <= 1 and ce["methods"]["cyce"]["fd_adv"] >= 0
    maps = np.load(repo / "results/explainers/mnist_cnn-mnist/syce/cyce/maps.npz")
    assert maps["map"].shape == (40, 28, 28) and maps["x_a"].dtype == np.uint8
    # every method scored on every image (a collapsed run's numbers are left out of the aggregates, not the table)
    assert (per_image.method == "gradcam").sum() == 8 * max(1, len(refs))
    assert (per_image.method == "ours:per_image").sum() == 2 * 2
    assert m["gradcam"]["metrics"]["kept"]["n"] in (0, 8) and m["ours:per_image"]["metrics"]["kept"]["n"] in (0, 2)
    cj = json.loads((repo / "results/metrics/small_resnet-cluttered_mnist.json").read_text())
    clutter = cj["methods"]
    clutter_rows = pd.read_csv(repo / "results/metrics/small_resnet-cluttered_mnist/per_image.csv")
    rise = clutter_rows[clutter_rows.method == "rise"]
    assert "pointing" in clutter["rise"]["metrics"] and "pointing" not in m["rise"]["metrics"]
    assert len(rise) == 6 * max(1, len(cj["settings"]["reference_seeds"])) and rise["pointing"].between(0, 1).all()
    # pointing is ranked by the soft map: defined even if the binarized masks collapsed (then the aggregate
    # is left empty, the per-image value is kept)
    per_image = pd.read_csv(repo / "results/metrics/efficientnet_lite0-photos/per_image.csv")
    photo_refs = json.loads((repo / "results/metrics/efficientnet_lite0-photos.json").read_text())["settings"][
        "reference_seeds"]
    # per_image (2 seeds) + per_image_paper (its one seed) + 8 baselines at each live per_image seed
    assert set(per_image["id"]) == {"coffee"} and len(per_image) == 2 + 1 + 8 * max(1, len(photo_refs))

    ablation = json.loads((repo / "results/ablations/mnist_cnn-mnist-mnist/no_tv.json").read_text())
    assert ablation["variant"] == "no_tv" and ablation["n"] == 6 and ablation["seeds"] == 2
    matched = json.loads((repo / "results/ablations/mnist_cnn-mnist-mnist/matched/no_tv.json").read_text())
    assert matched["variant"] == "no_tv" and (matched.get("skipped") or 0 < matched["area_target"] < 1)
    figures = {p.name for p in (repo / "paper_figures").iterdir()}
    for name in ("table1_mnist_cnn-mnist.md", "table1_efficientnet_lite0-photos.tex", "table2_mnist_cnn-mnist-mnist.md",
                 "fig1_mnist_cnn-mnist.png", "fig1_efficientnet_lite0-photos.pdf", "fig2_mnist_cnn-mnist-mnist.png",
                 "fig3_tradeoff.pdf", "curves_small_resnet-cluttered_mnist.png", "training_mnist_cnn-mnist.png",
                 "table_glance.md", "fig_glance_graph_mnist_cnn-morpho_mnist.png", "fig_glance_strips_mnist_cnn-mnist.png",
                 "fig_glance_cf_mnist_cnn-mnist.pdf", "report.html"):
        assert name in figures, f"{name} missing from paper_figures: {sorted(figures)}"
    table2 = (repo / "paper_figures/table2_mnist_cnn-mnist-mnist.md").read_text()
    assert all(f"| {v} " in table2 for v in ("base", "no_tv", "area_20", "area_500"))
    page = (repo / "paper_figures/report.html").read_text()
    assert "http://" not in page and "https://" not in page and page.count("data:image/png;base64,") >= 8
    before = {p.name: p.read_bytes() for p in (repo / "paper_figures").iterdir()}
    _dvc(repo, "repro", "--force", "--single-item", "report")
    after = {p.name: p.read_bytes() for p in (repo / "paper_figures").iterdir()}
    assert before == after, f"rerunning the report changed {[k for k in after if before.get(k) != after[k]]}"

    FIRST_RUN.update(_metric_files(repo))
    again = _dvc(repo, "repro")
    assert "Running stage" not in again

    # editing one section's schema reruns only the stages that read that section (issue: narrow deps)
    schema = repo / "src/actmatch/config/glance.py"
    original = schema.read_text()
    schema.write_text(original + "\n# an edit\n")
    stale = {name.split("@")[0] for name in json.loads(_dvc(repo, "status", "--json"))}
    assert stale == {"train_glance", "evaluate", "report"}, stale  # evaluate reads GLANCE's maps
    schema.write_text(original)
    assert json.loads(_dvc(repo, "status", "--json")) == {}

    yaml = YAML(typ="safe", pure=True)
    p = yaml.load((repo / "params.yaml").read_text())
    p["train_classifier"]["runs"]["small_resnet-cluttered_mnist"]["epochs"] = 2
    yaml.dump(p, repo / "params.yaml")
    status = json.loads(_dvc(repo, "status", "--json"))
    assert list(status) == ["train_classifier@small_resnet-cluttered_mnist"]
    third = _dvc(repo, "repro")
    ran = {line.split("'")[1] for line in third.splitlines() if line.startswith("Running stage")}
    assert ran == {"train_classifier@small_resnet-cluttered_mnist", "train_explainer@small_resnet-cluttered_mnist",
                   "evaluate@small_resnet-cluttered_mnist", "report"}  # that classifier, what builds on it, only

    p["ablation"]["variants"]["area_500"]["weights"]["area"] = 400
    yaml.dump(p, repo / "params.yaml")
    # that variant, and the report (it reads the grid's variant names from params.yaml)
    assert sorted(json.loads(_dvc(repo, "status", "--json"))) == ["ablate@mnist_cnn-mnist-mnist-area_500", "report"]
    fourth = _dvc(repo, "repro")
    ran = {line.split("'")[1] for line in fourth.splitlines() if line.startswith("Running stage")}
    assert ran == {"ablate@mnist_cnn-mnist-mnist-area_500", "report"}

    p["explainer"]["per_image_runs"]["mnist_cnn-mnist"]["per_image"]["steps"] = 4
    yaml.dump(p, repo / "params.yaml")
    assert list(json.loads(_dvc(repo, "status", "--json"))) == ["explain_images@mnist_cnn-mnist"]


def test_shared_remote_push_then_pull_into_a_second_checkout_runs_nothing(repo, tmp_path):
    """Grids across machines share one DVC cache: push from this checkout to a directory remote,
    pull into a second checkout (what git carries + `dvc pull`), and `dvc repro` there has nothing to do."""
    from dvc.repo import Repo

    yaml = YAML(typ="safe", pure=True)
    p = yaml.load((repo / "params.yaml").read_text())
    p["explainer"]["per_image_runs"]["mnist_cnn-mnist"]["per_image"]["steps"] = 3  # undo the last test's edit
    yaml.dump(p, repo / "params.yaml")
    assert json.loads(_dvc(repo, "status", "--json")) == {}
    _dvc(repo, "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    _dvc(repo, "push")
    second = tmp_path / "second"
    second.mkdir()
    for name in ("dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore", ".dvc/config", "profiles/full.yaml"):
        if (repo / name).exists():
            (second / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / name, second / name)
    for name in ("stages", "src"):
        shutil.copytree(repo / name, second / name, ignore=shutil.ignore_patterns("__pycache__"))
    with Repo(str(repo)) as r:  # outputs with cache: false (metrics, plots) travel with git, not the remote
        git_tracked = [o.fs_path for st in r.index.stages for o in st.outs if not o.use_cache]
    for path in map(Path, git_tracked):
        dest = second / path.relative_to(repo)
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if path.is_dir() else shutil.copy)(path, dest)
    assert not (second / "results/explainers/mnist_cnn-mnist/amortized").exists()
    _dvc(second, "pull")
    assert json.loads(_dvc(second, "status", "--json")) == {}
    assert "Running stage" not in _dvc(second, "repro")
    for rel in ("results/explainers/mnist_cnn-mnist/amortized/seed1/masks.npz", "results/metrics/mnist_cnn-mnist.json",
                "data/mnist/index.csv"):
        assert (second / rel).read_bytes() == (repo / rel).read_bytes(), rel


def _importers(repo: Path, module: str) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        return {s.name for s in r.index.stages if any(str(d.def_path) == module for d in s.deps)}


def _outputs(repo: Path) -> dict[str, bytes]:
    """Every file under results/ but the wall times (results/timing/) and dvclive's logs (results/live/)."""
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted((repo / "results").rglob("*"))
            if p.is_file() and not {"timing", "live"} & set(p.relative_to(repo).parts)}


def test_a_comment_edit_reruns_its_importers_and_stops_at_their_identical_outputs(repo):
    """Reruns stop where outputs don't change (issue 28): after a comment-only edit of one library module,
    DVC reruns exactly the stages that import it; their outputs come out byte-identical (no wall time,
    temporary file name or training log inside an output folder), so every stage downstream of them is
    skipped. The module is the ablation's (its stages train U-Nets, the cheapest training stages here; the
    explainer's training stages are byte-checked by tests/stages/test_reproducible.py and the second fresh
    run below)."""
    _dvc(repo, "repro")  # up to date whatever ran before (alone, the first test leaves one preset edited)
    assert json.loads(_dvc(repo, "status", "--json")) == {}
    module = "src/actmatch/ablation.py"
    importers = _importers(repo, module)
    assert {s.split("@")[0] for s in importers} == {"ablate", "ablate_matched"}
    before = _outputs(repo)
    (repo / module).write_text((repo / module).read_text() + "\n# a comment: no output may change\n")
    out = _dvc(repo, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == importers, f"ran {sorted(ran - importers)} beyond the importers of {module}"
    skipped = {line.split("'")[1] for line in out.splitlines() if "didn't change, skipping" in line}
    assert "report" in skipped, out   # downstream of the ablation, its inputs byte-identical
    after = _outputs(repo)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"a rerun with the same inputs changed {changed[:10]}"
    assert json.loads(_dvc(repo, "status", "--json")) == {}


def test_queued_experiments_run_in_parallel_workers(tmp_path):
    """The README's grid recipe: `dvc exp run --queue -S ...` twice, `dvc queue start -j 2`, and each
    experiment's metrics come from its own params (here one classifier trained at two learning rates)."""
    import time

    work = _make_repo(tmp_path / "q", scm=True)
    target = "train_classifier@mnist_cnn-mnist"
    for lr in ("0.002", "0.05"):
        _dvc(work, "exp", "run", "--queue", "-S", f"train_classifier.defaults.lr={lr}", "-n", f"lr{lr}", target)
    _dvc(work, "queue", "start", "-j", "2")
    deadline = time.time() + 600
    while time.time() < deadline:
        status = _dvc(work, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert "Failed" not in status and status.count("Success") == 2, status
    rows = json.loads(_dvc(work, "exp", "show", "--json"))
    found = {}
    for commit in rows:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                data = rev.get("data") or {}
                lr = data["params"]["params.yaml"]["data"]["train_classifier"]["defaults"]["lr"]
                acc = data["metrics"]["results/classifiers/mnist_cnn-mnist/live/metrics.json"]["data"]
                found[lr] = acc
    assert set(found) == {0.002, 0.05}, found
    assert found[0.002] != found[0.05]


def test_a_second_fresh_run_gives_byte_identical_metrics(tmp_path):
    if not FIRST_RUN:
        pytest.skip("needs the first end-to-end run of this module")
    second = _make_repo(tmp_path / "second")
    _dvc(second, "repro")
    files = _metric_files(second)
    assert len(files) >= 10 and set(files) == set(FIRST_RUN)
    different = [name for name in files if files[name] != FIRST_RUN[name]]
    assert not different, f"these differ between two fresh runs: {different}"
