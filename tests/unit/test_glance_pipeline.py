"""GLANCE as pipeline parts (issue 9): the controlled dataset and the cached features on disk, one
run written and read back (graph, maps, strips, metrics), its effect maps scored by the evaluation
code at our area, the params checks of the ``glance`` section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from actmatch.classifiers.registry import Classifier, freeze
from actmatch.classifiers.small import build_small
from actmatch.config.base import ParamsError
from actmatch.check import check_file as load_params, parse_params
from actmatch.data import load_dataset
from actmatch.data.store import ImageDataset
from actmatch.evaluation import evaluate
from actmatch.glance import pipeline as P
from actmatch.glance.data import build_morpho_mnist, read_features, write_features
from actmatch.glance.morpho import FEATURES, measure_batch
from actmatch.glance.perturb import draw_causes
from tests.unit.test_evaluation import _setup


def _strokes(n: int, seed: int = 0) -> ImageDataset:
    """Digit-like strokes of varying thickness, slant and ink on 28 px, 3 labels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:28, :28]
    imgs = []
    for k in range(n):
        s, w, ink = rng.uniform(-0.3, 0.3), rng.uniform(1.0, 3.0), rng.uniform(120, 255)
        img = ink * np.clip(w - np.abs(x - (13 + 3 * (k % 3) - s * (y - 14))), 0, 1)
        img[: 4 + k % 4], img[22 + k % 3:] = 0, 0
        imgs.append(img)
    images = np.round(np.stack(imgs)).astype(np.uint8)[..., None]
    index = pd.DataFrame({"id": [f"d{k:03d}" for k in range(n)], "label": [k % 3 for k in range(n)],
                          "split": ["test" if k % 4 == 0 else "train" for k in range(n)]})
    return ImageDataset("mnist", images, index, {"class_names": ["a", "b", "c"]})


def test_morpho_mnist_keeps_ids_labels_split_and_records_the_causes(tmp_path):
    src = _strokes(8)
    build_morpho_mnist(src, tmp_path / "mm", seed=5, scale=4, workers=2)
    ds = load_dataset(tmp_path / "mm")
    assert list(ds.index["id"]) == list(src.index["id"]) and ds.labels.tolist() == src.labels.tolist()
    assert list(ds.index["split"]) == list(src.index["split"]) and ds.images.shape == src.images.shape
    assert ds.meta["true_edges"] == [["thickness", "intensity"], ["thickness", "slant"]]
    # the drawn causes are those of the seed, and one worker gives the same digits as two
    np.testing.assert_allclose(ds.index["set_thickness"], draw_causes(8, 5)["thickness"])
    build_morpho_mnist(src, tmp_path / "mm1", seed=5, scale=4, workers=1)
    np.testing.assert_array_equal(load_dataset(tmp_path / "mm1").images, ds.images)
    meas = measure_batch(ds.images)
    assert np.corrcoef(meas["intensity"], ds.index["set_intensity"])[0, 1] > 0.95


def test_features_are_cached_per_id_and_read_back_in_dataset_order(tmp_path):
    ds = _strokes(6)
    write_features(ds, tmp_path / "f", scale=4, workers=2)
    table = pd.read_csv(tmp_path / "f/features.csv", dtype={"id": str})
    assert list(table.columns) == ["id", *FEATURES] and len(table) == 6
    np.testing.assert_allclose(table[list(FEATURES)].to_numpy(), measure_batch(ds.images).to_numpy(), rtol=1e-5)
    got = read_features(tmp_path / "f", ds, ["slant", "area"])
    np.testing.assert_allclose(got, table[["slant", "area"]].to_numpy())
    other = ImageDataset("x", ds.images, ds.index.assign(id=[f"z{k}" for k in range(6)]), {})
    with pytest.raises(KeyError, match="no features for 6 images of x"):
        read_features(tmp_path / "f", other, ["slant"])
    with pytest.raises(KeyError, match=r"no columns \['girth'\]"):
        read_features(tmp_path / "f", ds, ["girth"])
    with pytest.raises(FileNotFoundError, match="run the morpho_features stage"):
        read_features(tmp_path / "nothing", ds, ["slant"])


def _small_params():
    g = load_params("params.yaml").glance
    return g.model_copy(update={
        "features": ["thickness", "slant", "intensity"],
        "surrogate": g.surrogate.model_copy(update={"free": 2, "width": 8, "style_dim": 8, "epochs": 2,
                                                    "batch_size": 8}),
        "graph": g.graph.model_copy(update={"w_threshold": 0.05}),
        "local": g.local.model_copy(update={"grid": [1.0, 3.0]}), "figure_examples": 2})


def test_one_run_written_read_back_and_its_maps_reproduced(tmp_path):
    torch.manual_seed(0)
    ds = _strokes(40)
    clf = Classifier("toy", freeze(build_small("mnist_cnn", 1, 28, 3)), 28, 1, (0.1,), (0.3,),
                     ("block1", "block2", "block3"), ["a", "b", "c"])
    gp = _small_params()
    feats = measure_batch(ds.images)[list(gp.features)].to_numpy()
    trained, m = P.run_glance(clf, ds, feats, gp, P.GlanceRun(classifier="toy", dataset="mnist"), 0, tmp_path / "g",
                              progress=False)
    assert m["n_train"] == 30 and m["n_test"] == 10 and m["tap"] == "block3"  # the last spatial tap
    assert set(m["alignment_r2"]) == {"thickness", "slant", "intensity"} and 0 <= m["fidelity"] <= 1
    assert all(b != "free0" or a != P.OUTPUT for a, b, _ in m["graph_edges"])
    assert not [e for e in m["graph_edges"] if e[0] == P.OUTPUT]  # the output is a sink
    weights = pd.read_csv(tmp_path / "g/graph.csv", index_col=0)
    assert list(weights.index) == ["thickness", "slant", "intensity", "free0", "free1", P.OUTPUT]
    assert (weights.loc[P.OUTPUT] == 0).all() and "graph_recovery" not in m  # this dataset has no true graph
    with np.load(tmp_path / "g/maps.npz") as z:
        assert list(z["ids"]) == [f"d{k:03d}" for k in range(0, 40, 4)] and z["map"].shape == (10, 28, 28)
        assert z["importance"].shape == (10, 5) and set(z["cf_node"].tolist()) <= {-1, 0, 1, 2, 3, 4}
        found = z["cf_node"] >= 0
        assert np.all(np.abs(z["cf_delta"][found]) <= 3.0) and np.all(z["cf_label"][found] != z["y_hat"][found])
        # each stored map is |G(z') − G(z)| of its stored (node, δ), recomputed from the saved surrogate
        E, G, ck = P.load_surrogate(tmp_path / "g")
        x = torch.from_numpy(ds.images[ds.split_indices("test")]).permute(0, 3, 1, 2).float() / 255
        from actmatch.glance import local as L
        from actmatch.glance.train import decode, encode
        zz = encode(clf.model, clf.mean, clf.std, E, x)
        lat = L.LatentMap(dims=[0, 1, 2, 3, 4, None], scales=ck["scales"])
        j, k, d = 3, int(z["effect_node"][3]), float(z["effect_delta"][3])
        again = L.effect_map(lambda q: decode(G, q), zz[j:j + 1], L.intervene(zz[j:j + 1], ck["W"], lat, k, d))
        np.testing.assert_allclose(z["map"][j].astype(np.float32), again[0, 0].numpy(), atol=2e-3)
    with np.load(tmp_path / "g/strips.npz") as z:
        assert z["strips"].shape == (3, 5, 2, 28, 28)  # features × strip deltas × examples
        # δ = 0 decodes the unmoved latent: the reconstruction itself
        with np.load(tmp_path / "g/maps.npz") as mz:
            pos = [list(mz["ids"]).index(i) for i in z["ids"]]
            np.testing.assert_array_equal(z["strips"][0, 2], mz["x_hat"][pos])
    assert yaml.safe_load((tmp_path / "g/config.yaml").read_text())["method"] == "glance"


def test_graph_recovery_is_scored_on_the_recipe_variables_only():
    names = ["area", "thickness", "intensity", "slant", P.OUTPUT]
    w = pd.DataFrame(0.0, index=names, columns=names)
    w.loc["thickness", "intensity"] = 0.9   # right
    w.loc["slant", "thickness"] = 0.5       # reversed
    w.loc["area", "thickness"] = 0.7        # outside the recipe's variables: not scored
    got = P._graph_scores(w, [["thickness", "intensity"], ["thickness", "slant"]])
    assert got["variables"] == ["intensity", "slant", "thickness"]
    assert got["shd"] == 1 and got["precision"] == 0.5 and got["recall"] == 0.5


def test_effect_target_falls_back_to_the_most_important_node_lowering_the_logit():
    from actmatch.glance.local import Counterfactual
    cf = Counterfactual(node=np.array([2, -1, -1]), delta=np.array([-1.5, np.nan, np.nan]), label=np.array([1, -1, -1]))
    imp = np.array([[0.1, 0.2, 0.3], [0.5, -2.0, 0.1], [0.4, 0.1, 0.0]])
    node, delta = P._effect_targets(cf, imp, 3.0)
    assert node.tolist() == [2, 1, 0] and delta.tolist() == [-1.5, 3.0, -3.0]


def test_glance_maps_are_scored_like_baselines_at_our_area(tmp_path, monkeypatch):
    clf, ds, regimes, cfg = _setup(tmp_path)  # toy 3-class classifier on 8 px images, ids i0..i5
    folder = tmp_path / "group" / "glance"
    folder.mkdir(parents=True)
    ids = ["i1", "i0", "i4", "i3"]
    np.savez(folder / "maps.npz", ids=np.array(ids), map=np.random.default_rng(2).random((4, 8, 8)).astype(np.float32))
    (folder / "config.yaml").write_text(yaml.safe_dump({"method": "glance"}))
    maps = P.load_glance_maps(tmp_path / "group")
    assert list(maps) == ["glance"] and P.load_glance_maps(tmp_path / "nothing") == {}
    monkeypatch.setattr(P.GlanceMaps, "cost", lambda self, c: (lambda x: x))  # no surrogate file here
    per_image, _, metrics, cost = evaluate(clf, ds, regimes, cfg, progress=False, maps=maps)
    ours = per_image[per_image.method == "ours:per_image"].set_index("id")
    theirs = per_image[per_image.method == "glance"].set_index("id")
    assert sorted(theirs.index) == sorted(ids)
    np.testing.assert_allclose(theirs["area"], ours.loc[theirs.index, "area"], atol=1 / 64 / 2)
    assert metrics["methods"]["glance"]["metrics"]["kept"]["n"] == 4 and "glance" in cost


def test_glance_params_errors_name_the_key():
    raw = yaml.safe_load(open("params.yaml"))
    raw["glance"]["runs"]["mnist_cnn-mnist"]["dataset"] = "cluttered_mnist"
    with pytest.raises(ParamsError, match=r"glance.runs.mnist_cnn-mnist: the explainer group mnist_cnn-mnist explains"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["glance"]["feature_datasets"] = ["mnist"]
    with pytest.raises(ParamsError, match=r"glance.runs.mnist_cnn-morpho_mnist.dataset: 'morpho_mnist' needs"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["glance"]["features"] = ["thickness", "girth"]
    with pytest.raises(ParamsError, match="girth"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["glance"]["weights"]["allign"] = 1
    with pytest.raises(ParamsError, match="allign"):
        parse_params(raw)
    raw = yaml.safe_load(open("params.yaml"))
    raw["glance"]["runs"]["x"] = {"classifier": "efficientnet_lite0", "dataset": "mnist"}
    with pytest.raises(ParamsError, match=r"glance.runs.x.classifier: 'efficientnet_lite0' must be a train_classifier"):
        parse_params(raw)
