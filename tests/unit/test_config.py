"""The params schema: one module per section, a whole-file check, every kind of bad value failing
before any compute and naming the key path (and, for a name, the registry's known names)."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from actmatch.check import check_file, parse_params
from actmatch.config.ablation import variant_loss
from actmatch.config.base import ParamsError
from actmatch.config.classifiers import train_run
from actmatch.config.compute import runtime
from actmatch.config.evaluate import evaluate_run
from actmatch.config.explainer import explainer
from actmatch.core.stage import run_stage


def test_repository_params_load(root):
    p = check_file(root / "params.yaml")
    assert p.seeds == [0, 1, 2] and p.data_seed == 0
    raw = YAML(typ="safe", pure=True).load((root / "params.yaml").read_text())
    run = train_run(raw, "mnist_cnn-mnist")
    assert run.epochs == p.train_classifier.defaults.epochs and run.seed == p.seed
    assert abs(p.datasets.mnist.split.train + p.datasets.mnist.split.test - 1) < 1e-12


def test_run_overrides_defaults(params_dict):
    params_dict["train_classifier"]["runs"]["mnist_cnn-mnist"]["epochs"] = 3
    assert train_run(params_dict, "mnist_cnn-mnist").epochs == 3
    assert train_run(params_dict, "small_resnet-mnist").epochs == params_dict["train_classifier"]["defaults"]["epochs"]
    with pytest.raises(ParamsError, match=r"train_classifier.runs has no run 'nope'; known: \['lenet-mnist_3v8'"):
        train_run(params_dict, "nope")


def _error(data) -> str:
    with pytest.raises(ParamsError) as exc:
        parse_params(data, "params.yaml")
    return str(exc.value)


def test_unknown_key_names_path_and_allowed_keys(params_dict):
    params_dict["train_classifier"]["defaults"]["lrr"] = 0.1
    msg = _error(params_dict)
    assert "train_classifier.defaults.lrr: unknown key" in msg
    assert "allowed keys here: epochs, batch_size, lr, weight_decay, augment_shift" in msg


def test_unknown_key_inside_a_run(params_dict):
    params_dict["train_classifier"]["runs"]["mnist_cnn-mnist"]["epoch"] = 2
    msg = _error(params_dict)
    assert "train_classifier.runs.mnist_cnn-mnist.epoch: unknown key" in msg
    assert "arch, dataset, epochs" in msg


def test_unknown_top_level_key(params_dict):
    params_dict["sead"] = 1
    assert "sead: unknown key; allowed keys here: seed, data_seed, seeds, device, launcher" in _error(params_dict)


def test_wrong_type(params_dict):
    params_dict["train_classifier"]["defaults"]["epochs"] = "8"
    assert "train_classifier.defaults.epochs: Input should be a valid integer (got '8')" in _error(params_dict)


@pytest.mark.parametrize("key,value,expect", [
    ("lr", 0.0, "greater than 0"),
    ("lr", -1e-3, "greater than 0"),
    ("weight_decay", -1.0, "greater than or equal to 0"),
    ("epochs", 0, "greater than or equal to 1"),
])
def test_out_of_range(params_dict, key, value, expect):
    params_dict["train_classifier"]["defaults"][key] = value
    msg = _error(params_dict)
    assert f"train_classifier.defaults.{key}: " in msg and expect in msg


def test_unknown_classifier_lists_the_registry(params_dict):
    params_dict["download"]["classifiers"] = ["resnet19"]
    msg = _error(params_dict)
    assert "download.classifiers: unknown name 'resnet19'; known: efficientnet_b0, efficientnet_lite0, " \
           "mobilenet_v3_large, resnet18, vit_b_16" in msg


def test_unknown_names_of_every_registry(params_dict):
    params_dict["train_classifier"]["runs"]["mnist_cnn-mnist"]["dataset"] = "cifar10"
    params_dict["train_classifier"]["runs"]["mnist_cnn-mnist"]["arch"] = "vgg"
    params_dict["train_classifier"]["runs"]["vgg-cifar10"] = params_dict["train_classifier"]["runs"].pop("mnist_cnn-mnist")
    params_dict["datasets"]["photos"]["names"] = ["chelsea", "dog"]
    params_dict["evaluate"]["defaults"]["baselines"]["gradcam3"] = {}
    params_dict["glance"]["features"] = ["area", "curl"]
    msg = _error(params_dict)
    for line in ("train_classifier.runs.vgg-cifar10.arch: unknown name 'vgg'; known: lenet, mnist_cnn, small_resnet",
                 "train_classifier.runs.vgg-cifar10.dataset: unknown name 'cifar10'; known: cluttered_mnist",
                 "datasets.photos.names: unknown name 'dog'; known: astronaut",
                 "evaluate.defaults.baselines: unknown name 'gradcam3'; known: centre, extremal, extremal_authors",
                 "glance.features: unknown name 'curl'; known: area, height, intensity"):
        assert line in msg, (line, msg)


def test_split_must_add_up(params_dict):
    params_dict["datasets"]["mnist"]["split"] = {"train": 0.7, "test": 0.2}
    msg = _error(params_dict)
    assert "datasets.mnist.split: split fractions must add up to 1 (got train 0.7 + test 0.2 = 0.9)" in msg


def test_run_dataset_must_be_produced(params_dict):
    params_dict["train_classifier"]["runs"]["mnist_cnn-fashion_mnist"] = {"arch": "mnist_cnn",
                                                                         "dataset": "fashion_mnist"}
    assert "'fashion_mnist' is not produced by this pipeline" in _error(params_dict)


def test_run_name_must_match_its_content(params_dict):
    params_dict["train_classifier"]["runs"]["mnist_cnn-mnist"]["arch"] = "small_resnet"
    assert "must be 'small_resnet-mnist'" in _error(params_dict)


def test_bad_device_and_seeds(params_dict):
    params_dict["device"] = "gpu"
    params_dict["seeds"] = [0, 0]
    msg = _error(params_dict)
    assert "device: device 'gpu' is not one of: auto, cpu, cuda, cuda:N, mps" in msg
    assert "seeds: seeds must be unique (got [0, 0])" in msg


def test_every_error_reported_at_once(params_dict):
    params_dict["seed"] = -1
    params_dict["train_classifier"]["defaults"]["lr"] = -1
    msg = _error(params_dict)
    assert "2 invalid value(s)" in msg and "seed:" in msg and "train_classifier.defaults.lr:" in msg


def test_yaml_12_floats_and_missing_file(tmp_path, root):
    text = (root / "params.yaml").read_text().replace("lr: 2.0e-3", "lr: 2e-3")
    (tmp_path / "params.yaml").write_text(text)
    assert check_file(tmp_path / "params.yaml").train_classifier.defaults.lr == pytest.approx(2e-3)
    with pytest.raises(ParamsError, match="params file not found"):
        check_file(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        check_file(tmp_path / "bad.yaml")


def test_evaluate_run_merges_defaults_and_baseline_settings(params_dict):
    params_dict["evaluate"]["runs"]["mnist_cnn-mnist"]["baselines"] = {"rise": {"masks": 7}}
    params_dict["data_seed"] = 5
    cfg = evaluate_run(params_dict, "mnist_cnn-mnist")
    assert cfg.baselines["rise"] == {**params_dict["evaluate"]["defaults"]["baselines"]["rise"], "masks": 7}
    assert cfg.match_area == "amortized" and cfg.seed == 5  # ties and bootstrap follow data_seed, not seed
    assert set(cfg.baselines) == set(params_dict["evaluate"]["defaults"]["baselines"])


@pytest.mark.parametrize("change,expected", [
    (lambda p: p["evaluate"]["runs"].update(nope={"classifier": "mnist_cnn-mnist", "dataset": "mnist"}),
     "evaluate.runs.nope: not an explainer group"),
    (lambda p: p["evaluate"]["runs"]["mnist_cnn-mnist"].update(match_area="per_image_x"),
     "match_area: 'per_image_x' is not a regime produced for it; allowed: ['amortized', 'finetune', 'per_image'"),
    (lambda p: p["evaluate"]["runs"]["mnist_cnn-mnist"].update(dataset="cluttered_mnist"),
     "its explainers explain mnist_cnn-mnist on mnist, not mnist_cnn-mnist on cluttered_mnist"),
    (lambda p: p["explainer"]["per_image_runs"]["mnist_cnn-mnist"].pop("group"),
     "per_image_runs.mnist_cnn-mnist.group: required"),
    (lambda p: p["explainer"]["per_image_runs"]["mnist_cnn-mnist-paper"].update(regime="per_image"),
     "'per_image' is already used by 'mnist_cnn-mnist'"),
])
def test_evaluate_and_group_errors_name_the_key(params_dict, change, expected):
    change(params_dict)
    assert expected in _error(params_dict)


def test_ablation_variants_resolve_on_the_runs_preset_or_their_own(params_dict):
    ex = explainer(params_dict)
    run, base = variant_loss(params_dict, "mnist_cnn-mnist", "mnist", "base")
    assert run == ex.amortized_runs["mnist_cnn-mnist"] and base == ex.loss(run.preset)
    _, no_tv = variant_loss(params_dict, "mnist_cnn-mnist", "mnist", "no_tv")
    assert no_tv.weights.tv == 0 and no_tv.weights.area == base.weights.area
    assert variant_loss(params_dict, "mnist_cnn-mnist", "mnist", "preset_paper")[1] == ex.loss("paper")
    _, matched = variant_loss(params_dict, "mnist_cnn-mnist", "mnist", "no_tv", area_target=0.12)
    assert matched.area_target == 0.12 and matched.weights == no_tv.weights
    with pytest.raises(ParamsError, match="ablation.variants has no 'nope'"):
        variant_loss(params_dict, "mnist_cnn-mnist", "mnist", "nope")


@pytest.mark.parametrize("change, expected", [
    (lambda a: a.update(base="missing"), "ablation: 'missing' (base / matched) is not a variant"),
    (lambda a: a.update(matched=["nope"]), "ablation: 'nope' (base / matched) is not a variant"),
    (lambda a: a["variants"].update(bad={"weights": {"tvv": 1}}), "ablation.variants.bad.weights.tvv: not a registered loss term"),
    (lambda a: a["variants"].update(bad={"preset": "nope"}), "ablation.variants.bad: unknown preset 'nope'"),
    (lambda a: a["variants"].update({"Bad-Name": {}}), "variant names are lowercase"),
    (lambda a: a.update(datasets=["cluttered_mnist"]),
     "amortized run 'mnist_cnn-mnist' explains mnist_cnn-mnist on mnist, not mnist_cnn-mnist on cluttered_mnist"),
])
def test_ablation_errors_name_the_key(params_dict, change, expected):
    change(params_dict["ablation"])
    assert expected in _error(params_dict)


def test_report_sweep_image_must_be_an_ablation_image(params_dict):
    params_dict["report"]["sweep_image"] = params_dict["ablation"]["eval_images"]
    assert "report.sweep_image" in _error(params_dict)


def test_a_section_loads_alone_but_the_whole_file_check_still_refuses_a_typo_elsewhere(params_dict, tmp_path,
                                                                                       capsys):
    """A stage reads only its sections (so editing another section's schema reruns nothing of it), yet a
    typo anywhere fails before it computes: run_stage checks the whole file first."""
    params_dict["glance"]["surrogate"]["epochz"] = 3
    assert runtime(params_dict).seeds == [0, 1, 2]
    assert train_run(params_dict, "mnist_cnn-mnist").arch == "mnist_cnn"   # the section itself is fine
    path = tmp_path / "params.yaml"
    with path.open("w") as fh:
        YAML(typ="safe", pure=True).dump(params_dict, fh)
    ran = []
    assert run_stage(lambda argv: ran.append(argv), ["--params", str(path)], check=check_file) == 2
    assert ran == [] and "glance.surrogate.epochz: unknown key" in capsys.readouterr().err
