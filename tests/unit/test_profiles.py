"""Profiles (overlays on params.yaml) and ACTMATCH_PLUGINS: merge rules, validation before
writing, idempotence, comments kept, clear errors."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from actmatch.core import plugins
from actmatch.classifiers.registry import CLASSIFIERS
from actmatch.cli import main as cli
from actmatch.config.base import ParamsError
from actmatch.check import check_file as load_params, parse_params
from actmatch.profiles import apply_profile, available, merge
from tests.conftest import ROOT


def test_merge_recurses_into_mappings_and_replaces_lists_and_scalars():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    assert merge(base, {"a": {"c": [9], "e": 5}, "f": 6}) == {"a": {"b": 1, "c": [9], "e": 5}, "d": 3, "f": 6}


@pytest.fixture()
def scratch(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "profiles/paper.yaml").write_text((ROOT / "profiles/paper.yaml").read_text())
    return tmp_path


def test_paper_profile_applies_validates_and_is_idempotent(scratch):
    params, profiles = scratch / "params.yaml", scratch / "profiles"
    before = params.read_text()
    apply_profile("paper", params, profiles)
    once = params.read_text()
    p = load_params(params)
    gpu = p.explainer.amortized_runs["resnet18"].compute
    assert gpu.precision == "bf16" and gpu.per_image_batch == 20
    # the offline runs keep the CPU path, so applying the profile does not rerun them
    assert p.explainer.amortized_runs["mnist_cnn-mnist"].compute.precision == "fp32"
    assert "x-gpu" not in params.read_text()
    assert "imagenette" in p.download.datasets and "vit_b_16" in p.download.classifiers
    assert set(p.explainer.amortized_runs) == {"mnist_cnn-mnist", "small_resnet-cluttered_mnist", "lenet-mnist_3v8",
                                               "resnet18", "efficientnet_b0", "mobilenet_v3_large", "vit_b_16"}
    run = p.explainer.per_image_runs["resnet18-imagenette-paper"]
    assert (run.per_image.steps, run.per_image.lr, run.eval_per_class, run.preset) == (880, 5e-5, 2, "paper")
    assert p.evaluate.runs["vit_b_16"].dataset == "imagenette"
    assert "# actmatch parameters" in once and "# the companion paper's MNIST weights" in once  # comments kept
    apply_profile("paper", params, profiles)
    assert params.read_text() == once != before


def test_the_paper_profiles_tuned_runs_use_the_adopted_photo_recipe(scratch):
    """The profile's tuned per-image rows are the recipe the offline photos run adopted, not an older one."""
    params, profiles = scratch / "params.yaml", scratch / "profiles"
    photos = load_params(params).explainer.per_image_runs["efficientnet_lite0-photos"]
    apply_profile("paper", params, profiles)
    tuned = {k: r for k, r in load_params(params).explainer.per_image_runs.items() if r.regime == "per_image"
             and r.dataset == "imagenette"}
    assert len(tuned) == 4
    for key, run in tuned.items():
        assert (run.preset, run.per_image) == (photos.preset, photos.per_image), key


def test_unknown_profile_and_invalid_overlay_leave_params_untouched(scratch):
    params, profiles = scratch / "params.yaml", scratch / "profiles"
    before = params.read_text()
    with pytest.raises(ParamsError, match="no profile 'papr'.*known profiles: default, paper"):
        apply_profile("papr", params, profiles)
    (profiles / "bad.yaml").write_text("explainer: {amortized_runs: {mnist_cnn-mnist: {compute: {precision: fp8}}}}\n")
    with pytest.raises(ParamsError, match="compute.precision"):
        apply_profile("bad", params, profiles)
    assert params.read_text() == before and available(profiles) == ["bad", "default", "paper"]


def test_cli_profile_lists_applies_and_reports_errors(scratch, capsys, monkeypatch):
    monkeypatch.chdir(scratch)
    assert cli(["profile"]) == 0 and capsys.readouterr().out.split() == ["default", "paper"]
    assert cli(["profile", "paper", "--dry-run"]) == 0
    assert "resnet18-imagenette-paper" in capsys.readouterr().out
    assert "resnet18" not in (scratch / "params.yaml").read_text().split("download:")[1].split("datasets:")[0]
    assert cli(["profile", "nope"]) == 2 and "error: no profile 'nope'" in capsys.readouterr().err
    assert cli(["profile", "paper"]) == 0 and "applied" in capsys.readouterr().out


def test_unregistered_download_classifier_names_the_registry(params_dict):
    params_dict["download"]["classifiers"] = ["resnet_18"]
    with pytest.raises(ParamsError, match=r"download.classifiers: unknown name 'resnet_18'; known: "
                                          r"efficientnet_b0, .*, vit_b_16"):
        parse_params(params_dict)


def test_plugins_register_once_and_a_missing_file_is_named(tmp_path, monkeypatch, params_dict):
    plugin = tmp_path / "plug.py"
    plugin.write_text("from actmatch.classifiers.registry import register, get_spec\n"
                      "import dataclasses\n"
                      "register(dataclasses.replace(get_spec('resnet18'), name='lab_resnet'))\n")
    monkeypatch.setenv(plugins.ENV, str(plugin))
    try:
        assert plugins.load_plugins() == [str(plugin.resolve())] and plugins.load_plugins() == []
        assert CLASSIFIERS["lab_resnet"].taps == CLASSIFIERS["resnet18"].taps
        params_dict["download"]["classifiers"] = ["efficientnet_lite0", "lab_resnet"]
        assert parse_params(params_dict).download.classifiers == ["efficientnet_lite0", "lab_resnet"]
    finally:
        CLASSIFIERS.pop("lab_resnet", None)
    with pytest.raises(ParamsError, match="unknown name 'lab_resnet'"):
        parse_params(params_dict)
    monkeypatch.setenv(plugins.ENV, str(tmp_path / "missing.py"))
    with pytest.raises(FileNotFoundError, match="ACTMATCH_PLUGINS: plugin file .*missing.py not found"):
        plugins.load_plugins()


def test_applying_the_paper_profile_leaves_every_offline_stage_up_to_date(scratch):
    """Every stage of the offline default reads the same params values after `actmatch profile paper`
    (its GPU settings live in the runs it adds, not in a shared block), so only its own stages and the
    report run: switching profiles does not silently retrain the offline explainers or the ablation grid."""
    from dvc.repo import Repo

    def value(d, key):
        for part in key.split("."):
            d = d[part]
        return d

    yaml = YAML(typ="safe", pure=True)
    before = yaml.load((scratch / "params.yaml").read_text())
    apply_profile("paper", scratch / "params.yaml", scratch / "profiles")
    after = yaml.load((scratch / "params.yaml").read_text())
    with Repo(str(ROOT)) as repo:
        stages = [(s.addressing, [p for d in s.deps if type(d).__name__ == "ParamsDependency" for p in d.params])
                  for s in repo.index.stages]
    changed = [(name, key) for name, keys in stages if name != "report" for key in keys
               if value(before, key) != value(after, key)]
    assert not changed, f"the paper profile changes the params these offline stages read: {changed}"
    assert len(stages) > 30


def test_quick_replaces_the_grid_and_default_restores_the_params_byte_for_byte(scratch, capsys, monkeypatch):
    (scratch / "profiles/quick.yaml").write_text((ROOT / "profiles/quick.yaml").read_text())
    params = scratch / "params.yaml"
    before = params.read_text()
    apply_profile("quick", params, scratch / "profiles")
    p = load_params(params)
    assert sorted(p.ablation.variants) == ["base", "no_tv"] and p.seeds == [0] and p.report.smoke  # x-replace
    assert "no_act" not in params.read_text().split("ablation:")[1].split("syce:")[0]
    assert (scratch / "params.default.yaml").read_text() == before
    apply_profile("paper", params, scratch / "profiles")          # a second profile keeps the first backup
    assert (scratch / "params.default.yaml").read_text() == before
    monkeypatch.chdir(scratch)
    assert cli(["profile", "default"]) == 0
    assert params.read_text() == before and not (scratch / "params.default.yaml").exists()
    assert cli(["profile", "default"]) == 0 and params.read_text() == before   # already the default: no-op
    (scratch / "profiles/broken.yaml").write_text("x-replace: [nope.here]\nseeds: [1]\n")
    assert cli(["profile", "broken"]) == 2 and "x-replace names 'nope.here'" in capsys.readouterr().err
    assert params.read_text() == before


def test_an_own_lock_profile_sets_the_pipeline_lock_aside_and_default_puts_it_back(scratch):
    """x-own-lock (the quick profile): dvc.lock waits in dvc.default.lock while the smoke run writes its own;
    `default` restores the default's byte for byte and drops the smoke run's; other profiles leave the lock."""
    (scratch / "profiles/quick.yaml").write_text((ROOT / "profiles/quick.yaml").read_text())
    params, lock, aside = scratch / "params.yaml", scratch / "dvc.lock", scratch / "dvc.default.lock"
    lock.write_text("schema: '2.0'\nstages: {default: {}}\n")
    apply_profile("paper", params, scratch / "profiles")
    assert lock.read_text().endswith("{default: {}}\n") and not aside.exists()   # paper: same lock
    apply_profile("default", params, scratch / "profiles")
    apply_profile("quick", params, scratch / "profiles")
    assert not lock.exists() and aside.read_text().endswith("{default: {}}\n")
    lock.write_text("schema: '2.0'\nstages: {smoke: {}}\n")                      # what `dvc repro` wrote
    apply_profile("quick", params, scratch / "profiles")                         # again: the aside copy stays
    assert aside.read_text().endswith("{default: {}}\n")
    apply_profile("default", params, scratch / "profiles")
    assert lock.read_text() == "schema: '2.0'\nstages: {default: {}}\n" and not aside.exists()
    (scratch / "profiles/bad.yaml").write_text("x-own-lock: sometimes\nseeds: [1]\n")
    with pytest.raises(ParamsError, match="x-own-lock must be true or false"):
        apply_profile("bad", params, scratch / "profiles")
