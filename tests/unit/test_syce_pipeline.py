"""SyCE / CyCE as pipeline parts (issue 8): the 3-vs-8 pair dataset, the binary LeNet, one variant
trained and written to disk, its maps read back and scored by the evaluation code at our area,
and the params checks of the ``ce`` section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from actmatch.syce import pipeline as P
from actmatch.syce.explain import explain_syce
from actmatch.syce.losses import PixelClassifier
from actmatch.classifiers.registry import Classifier, freeze
from actmatch.classifiers.small import SMALL_TAPS, LeNet, build_small
from actmatch.config.data import MnistPairParams
from actmatch.config.base import ParamsError
from actmatch.check import check_file as load_params, parse_params
from actmatch.data import load_dataset
from actmatch.data.pair import build_pair
from actmatch.data.store import ImageDataset
from actmatch.evaluation import evaluate
from tests.unit.test_evaluation import _setup


def _digits(labels: list[int], size: int = 8) -> ImageDataset:
    n = len(labels)
    rng = np.random.default_rng(0)
    index = pd.DataFrame({"id": [f"d{k}" for k in range(n)], "label": labels,
                          "split": ["train" if k % 3 else "test" for k in range(n)]})
    return ImageDataset("mnist", rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8), index,
                        {"class_names": [str(k) for k in range(10)]})


def test_pair_keeps_two_classes_relabelled_with_their_split_and_pixels(tmp_path):
    src = _digits([3, 1, 8, 8, 3, 0, 8, 3, 5])
    build_pair(src, MnistPairParams(classes=[3, 8]), "mnist_3v8", tmp_path / "pair")
    ds = load_dataset(tmp_path / "pair")
    assert list(ds.index["id"]) == ["d0", "d2", "d3", "d4", "d6", "d7"]
    assert ds.labels.tolist() == [0, 1, 1, 0, 1, 0] and ds.class_names == ["3", "8"]
    assert list(ds.index["split"]) == list(src.index["split"].iloc[[0, 2, 3, 4, 6, 7]])
    np.testing.assert_array_equal(ds.images, src.images[[0, 2, 3, 4, 6, 7]])
    with pytest.raises(ValueError, match="must differ"):
        MnistPairParams(classes=[3, 3])


def test_binary_lenet_outputs_zero_and_z_so_softmax_is_sigmoid():
    torch.manual_seed(0)
    net = build_small("lenet", 1, 28, 2).eval()
    x = torch.randn(5, 1, 28, 28)
    out = net(x)
    assert out.shape == (5, 2) and torch.equal(out[:, 0], torch.zeros(5))
    torch.testing.assert_close(out.softmax(1)[:, 1], torch.sigmoid(out[:, 1]))
    assert build_small("lenet", 1, 28, 10)(x).shape == (5, 10) and SMALL_TAPS["lenet"] == ("block1", "block2",
                                                                                          "block3")
    fired = []
    hooks = [getattr(net, t).register_forward_hook(lambda *a: fired.append(1)) for t in SMALL_TAPS["lenet"]]
    net(x)
    assert len(fired) == 3
    for h in hooks:
        h.remove()
    assert isinstance(net, LeNet)


def _train_params(**over):
    p = load_params("params.yaml").syce
    return p, p.train.model_copy(update={"max_epochs": 2, "batch_size": 4, "g_widths": [4, 8], "d_widths": [4, 8],
                                         **over})


@pytest.mark.parametrize("classes,name", [(2, "syce"), (3, "syce_3class")])
def test_one_variant_written_read_back_and_maps_reproduced(tmp_path, classes, name):
    torch.manual_seed(0)
    model = freeze(build_small("lenet", 1, 12, classes))
    f = PixelClassifier(model, (0.5,), (0.5,)).eval()
    x = torch.rand(16, 1, 12, 12)
    ce, train = _train_params()
    trained, metrics = P.run_variant("syce", f, classes, x[:10], x[10:12], x[12:], ["a", "b", "c", "d"], train, ce,
                                     None, 0, tmp_path / "syce", progress=False)
    assert metrics["epochs_run"] == 2 and metrics["n"] == 4 and 0 <= metrics["flip"] <= 1
    assert metrics["train_minutes"] > 0 and "fd_adv" not in metrics  # no VAE given
    rec = yaml.safe_load((tmp_path / "syce/config.yaml").read_text())
    assert rec["method"] == name and rec["kind"] == ("binary" if classes == 2 else "conditional")
    G, ck = P.load_generator(tmp_path / "syce")
    again = explain_syce("syce", G, f, x[12:])
    with np.load(tmp_path / "syce/maps.npz") as z:
        assert list(z["ids"]) == ["a", "b", "c", "d"] and z["map"].shape == (4, 12, 12)
        np.testing.assert_allclose(z["map"].astype(np.float32), again["map"][:, 0].numpy(), atol=1e-3)
        np.testing.assert_array_equal(z["c"], again["c"].numpy())
        assert z["flip"].mean() == pytest.approx(metrics["flip"])


def test_maps_under_ce_are_scored_like_baselines_at_our_area(tmp_path, monkeypatch):
    clf, ds, regimes, cfg = _setup(tmp_path)  # toy 3-class classifier on 8 px images, ids i0..i5
    folder = tmp_path / "group" / "syce" / "cyce"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    ids = ["i5", "i0", "i2", "i3", "i1"]  # i4 has no map: scored on the other five
    np.savez(folder / "maps.npz", ids=np.array(ids), map=rng.random((5, 8, 8)).astype(np.float32))
    (folder / "config.yaml").write_text(yaml.safe_dump({"method": "cyce_3class", "variant": "cyce"}))
    maps = P.load_maps(tmp_path / "group")
    assert list(maps) == ["cyce_3class"] and P.load_maps(tmp_path / "nothing") == {}
    # no generator file here (timing is not what this tests): time an identity instead
    monkeypatch.setattr(P.SyceMaps, "cost", lambda self, c: (lambda x: x))
    per_image, _, metrics, cost = evaluate(clf, ds, regimes, cfg, progress=False, maps=maps)
    ours = per_image[per_image.method == "ours:per_image"].set_index("id")
    theirs = per_image[per_image.method == "cyce_3class"].set_index("id")
    assert sorted(theirs.index) == sorted(ids)
    np.testing.assert_allclose(theirs["area"], ours.loc[theirs.index, "area"], atol=1 / 64 / 2)
    assert metrics["methods"]["cyce_3class"]["metrics"]["kept"]["n"] == 5 and "cyce_3class" in cost


def test_syce_params_errors_name_the_key(tmp_path):
    raw = yaml.safe_load(open("params.yaml"))
    raw["syce"]["runs"]["resnet-x"] = {"classifier": "mnist_cnn-mnist", "dataset": "mnist"}
    with pytest.raises(ParamsError, match=r"syce.runs.resnet-x: not an explainer group"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["syce"]["vae"]["datasets"] = ["mnist"]
    with pytest.raises(ParamsError, match=r"syce.runs.lenet-mnist_3v8.dataset: 'mnist_3v8' needs a VAE"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["syce"]["weights"]["gann"] = 1
    with pytest.raises(ParamsError, match="gann"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["syce"]["variants"] = ["syce", "syce"]
    with pytest.raises(ParamsError, match="unique"):
        parse_params(raw)
    from actmatch.profiles import apply_profile

    full = parse_params(yaml.safe_load(apply_profile("full", "params.yaml", dry_run=True)))   # the 10-class run
    assert full.syce.train_for("mnist_cnn-mnist").max_epochs == 30 and full.syce.train.max_epochs == 60
    assert "mnist_cnn-mnist" not in load_params("params.yaml").syce.runs        # over the default's budget


def test_grad_cam_reads_the_last_tap_with_a_spatial_output():
    from actmatch.evaluation import cam_layer

    x = torch.zeros(2, 1, 28, 28)
    lenet = Classifier("l", freeze(build_small("lenet", 1, 28, 2)), 28, 1, (0.5,), (0.5,), SMALL_TAPS["lenet"], ["a", "b"])
    cnn = Classifier("m", freeze(build_small("mnist_cnn", 1, 28, 10)), 28, 1, (0.5,), (0.5,), SMALL_TAPS["mnist_cnn"],
                     [str(k) for k in range(10)])
    assert cam_layer(lenet, x) == "block2" and cam_layer(cnn, x) == "block3"
    flat = Classifier("f", lenet.model, 28, 1, (0.5,), (0.5,), ("block3",), ["a", "b"])
    with pytest.raises(ValueError, match="no tap with a spatial output"):
        cam_layer(flat, x)
