"""Dataset formats: shapes, dtypes, label ranges, split, boxes inside the canvas, round trips."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from actmatch.check import parse_params
from actmatch.data import load_dataset
from actmatch.data import sources
from actmatch.data.cluttered import build_cluttered_mnist, make_canvas
from actmatch.data.store import write_array_dataset
from tests.httpserver import LocalServer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """mnist (200 digits), cluttered_mnist built on it, and two photos."""
    import copy

    from ruamel.yaml import YAML

    from tests.conftest import ROOT
    d = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    d = copy.deepcopy(d)
    d["datasets"]["mnist"]["limit"] = 200
    d["datasets"]["photos"]["names"] = ["chelsea", "china"]
    p = parse_params(d)
    root = tmp_path_factory.mktemp("data")
    sources.build_mnist(p.datasets.mnist, 0, root / "mnist")
    build_cluttered_mnist(load_dataset(root / "mnist"), p.datasets.cluttered_mnist, 0, root / "cluttered_mnist")
    sources.build_photos(p.datasets.photos, root / "photos")
    return p, root


def test_mnist_format_and_stratified_split(tiny):
    p, root = tiny
    ds = load_dataset(root / "mnist")
    assert ds.images.shape == (200, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.images.max() == 255 and ds.images.min() == 0
    assert set(ds.labels) == set(range(10)) and ds.class_names == [str(i) for i in range(10)]
    tr, te = ds.split_indices("train"), ds.split_indices("test")
    assert len(tr) == 160 and len(te) == 40 and not set(tr) & set(te)
    assert np.all(np.bincount(ds.labels[tr], minlength=10) == 16)  # stratified: 16 per class
    assert np.all(np.bincount(ds.labels[te], minlength=10) == 4)


def test_mnist_split_is_seeded(tiny, tmp_path):
    p, root = tiny
    sources.build_mnist(p.datasets.mnist, 0, tmp_path / "again")
    sources.build_mnist(p.datasets.mnist, 1, tmp_path / "other")
    a, b, c = (load_dataset(x) for x in (root / "mnist", tmp_path / "again", tmp_path / "other"))
    assert (a.index["split"] == b.index["split"]).all() and np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_cluttered_boxes_hold_the_digit(tiny):
    p, root = tiny
    mn, cl = load_dataset(root / "mnist"), load_dataset(root / "cluttered_mnist")
    c, k = p.datasets.cluttered_mnist.canvas, p.datasets.cluttered_mnist.train_copies
    n = 160 * k + 40  # k canvases per train digit, one per test digit
    assert cl.images.shape == (n, c, c, 1) and cl.images.dtype == np.uint8
    src = mn.index.set_index("id").loc[cl.index["source_id"]]
    assert (cl.labels == src["label"].to_numpy()).all() and (cl.index["split"].to_numpy() == src["split"]).all()
    assert len(cl.split_indices("test")) == 40 and cl.index["id"].is_unique
    boxes = cl.boxes
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= c).all() and (boxes[:, 3] <= c).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    pos = {v: i for i, v in enumerate(mn.index["id"])}
    for row in range(0, n, 37):  # the digit's ink appears unchanged (max blending) inside its box
        i = pos[cl.index.loc[row, "source_id"]]
        x0, y0, x1, y1 = boxes[row]
        ys, xs = np.nonzero(mn.images[i, ..., 0])
        crop = mn.images[i, ys.min():ys.max() + 1, xs.min():xs.max() + 1, 0]
        region = cl.images[row, y0:y1, x0:x1, 0]
        assert region.shape == crop.shape and (region >= crop).all()
    assert (cl.images.reshape(n, -1) > 0).sum(1).mean() > (mn.images.reshape(200, -1) > 0).sum(1).mean()


def test_cluttered_train_copies_differ(tiny, tmp_path):
    p, root = tiny
    cfg = p.datasets.cluttered_mnist.model_copy(update={"train_copies": 2})
    build_cluttered_mnist(load_dataset(root / "mnist"), cfg, 0, tmp_path / "c2")
    cl = load_dataset(tmp_path / "c2")
    assert len(cl) == 2 * 160 + 40
    assert cl.index.loc[0, "source_id"] == cl.index.loc[1, "source_id"]
    assert not np.array_equal(cl.images[0], cl.images[1])  # new position and clutter


def test_make_canvas_box_exact():
    from actmatch.config.data import ClutteredMnistParams
    digit = np.zeros((28, 28), np.uint8)
    digit[10:15, 7:9] = 200
    cfg = ClutteredMnistParams(canvas=40, fragments=0, fragment_size=4)
    canvas, (x0, y0, x1, y1) = make_canvas(digit, [], cfg, np.random.default_rng(3))
    assert (x1 - x0, y1 - y0) == (2, 5)
    assert canvas.sum() == 200 * 10 and (canvas[y0:y1, x0:x1] == 200).all()


def test_photos_full_resolution(tiny):
    _, root = tiny
    ds = load_dataset(root / "photos")
    assert list(ds.index["id"]) == ["chelsea", "china"]
    assert ds.images[0].shape == (300, 451, 3) and ds.images[1].shape == (427, 640, 3)
    assert (ds.labels == -1).all() and (ds.index["split"] == "test").all()
    assert "scikit-learn" in ds.index.loc[1, "source"]


def test_incomplete_folder_is_named(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError, match="meta.json is missing"):
        load_dataset(tmp_path / "x")


def test_writer_rejects_mismatch_and_leaves_nothing(tmp_path):
    idx = pd.DataFrame({"id": ["a", "b"], "label": [0, 1], "split": ["train", "valid"]})
    with pytest.raises(ValueError, match="split values must be 'train' or 'test'"):
        write_array_dataset(tmp_path / "d", np.zeros((2, 4, 4, 1), np.uint8), idx, {"name": "d"})
    assert not (tmp_path / "d").exists() and list(tmp_path.iterdir()) == []


def _idx_gz(arr: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes(), mtime=0)


def test_fashion_mnist_from_web_when_debian_absent(tmp_path, monkeypatch, params_dict):
    rng = np.random.default_rng(0)
    blobs = {"train-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (12, 28, 28))),
             "train-labels-idx1-ubyte.gz": _idx_gz(np.arange(12) % 10),
             "t10k-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (10, 28, 28))),
             "t10k-labels-idx1-ubyte.gz": _idx_gz(np.arange(10))}
    with LocalServer() as srv:
        for name, blob in blobs.items():
            srv.files["/" + name] = blob
        monkeypatch.setattr(sources, "_FASHION_URL", srv.url + "/")
        monkeypatch.setattr(sources, "FASHION_MNIST_FILES",
                            {n: (hashlib.sha256(b).hexdigest(), "0" * 64) for n, b in blobs.items()})
        params_dict["datasets"]["fashion_mnist"]["debian_dir"] = str(tmp_path / "no-debian")
        cfg = parse_params(params_dict).datasets.fashion_mnist
        sources.build_fashion_mnist(cfg, 0, tmp_path / "fm", tmp_path / "cache")
    ds = load_dataset(tmp_path / "fm")
    assert ds.images.shape == (22, 28, 28, 1)
    assert list(ds.labels[12:]) == list(range(10))
    assert len(ds.split_indices("train")) == 12 and ds.class_names[9] == "Ankle boot"


def _jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 16), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_imagenette_archive_maps_to_imagenet_indices(tmp_path, params_dict):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for part, wnid, k in [("train", "n01440764", 3), ("val", "n01440764", 1), ("val", "n03888257", 2)]:
            for i in range(k):
                data = _jpeg((i * 40, 10, 200))
                info = tarfile.TarInfo(f"imagenette2-160/{part}/{wnid}/{wnid}_{i}.JPEG")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    with LocalServer() as srv:
        srv.files["/imagenette2-160.tgz"] = blob
        archives = {"160": (srv.url + "/imagenette2-160.tgz", hashlib.sha256(blob).hexdigest())}
        cfg = parse_params(params_dict).datasets.imagenette
        sources.build_imagenette(cfg, 0, tmp_path / "in", tmp_path / "cache", archives=archives)
    ds = load_dataset(tmp_path / "in")
    assert len(ds) == 6 and ds.images[0].shape == (16, 20, 3)
    assert sorted(set(ds.labels)) == [0, 701]
    assert ds.class_names[0] == "tench" and ds.class_names[701] == "parachute"
    assert (ds.index["split"] == "train").sum() == 3


def test_imagenette_class_table_matches_torchvision_names():
    from actmatch.classifiers.registry import imagenet_class_names
    names = imagenet_class_names()
    for wnid, (idx, name) in sources.IMAGENETTE_CLASSES.items():
        assert names[idx] == name, wnid


def test_stratified_sample_covers_every_class_in_proportion_and_is_seeded():
    from actmatch.core.sampling import stratified_sample
    from actmatch.explainer.outputs import train_subset

    labels = np.repeat(np.arange(10), [40, 45, 38, 41, 39, 37, 40, 42, 39, 39])  # stored sorted by class
    rows = np.arange(len(labels))
    s = stratified_sample(rows, labels, 160, seed=3)
    counts = np.bincount(labels[s], minlength=10)
    assert len(set(s)) == 160 and counts.sum() == 160 and counts.min() >= 14 and counts.max() <= 19
    np.testing.assert_array_equal(s, stratified_sample(rows, labels, 160, seed=3))
    assert not np.array_equal(s, stratified_sample(rows, labels, 160, seed=4))
    assert sorted(labels[stratified_sample(rows, labels, 10, seed=0)]) == list(range(10))  # one per class
    assert len(stratified_sample(rows, labels, 7, seed=0)) == 7                            # fewer than classes
    np.testing.assert_array_equal(np.sort(stratified_sample(rows, labels, None, 0)), rows)
    # "the first N" of a class-sorted split would hold 4 classes; the explainers' subset holds all 10
    index = pd.DataFrame({"id": [str(i) for i in rows], "label": labels, "split": "train"})
    ds = type("DS", (), {"split_indices": lambda self, s: rows, "labels": labels, "index": index})()
    sub = train_subset(ds, 160, 0)
    assert len(np.unique(labels[sub])) == 10 and np.all(np.diff(sub) > 0)  # every class, in storage order
    assert len(np.unique(labels[rows[:160]])) == 4


def test_a_folder_of_your_own_images_becomes_a_dataset(tmp_path):
    """data.registry.image_folder: <root>/<class>/<image> → the store format, stratified seeded split."""
    from actmatch.config.data import DatasetsParams  # noqa: F401 (the builder signature takes it)
    from actmatch.data.registry import DATASETS, image_folder

    root = tmp_path / "mine"
    rng = np.random.default_rng(0)
    for cls, n in (("cat", 5), ("dog", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    try:
        entry = image_folder("mine", root, test_fraction=0.4)
        entry.build(None, 0, tmp_path / "out", tmp_path / "cache")
    finally:
        DATASETS.pop("mine", None)
    ds = load_dataset(tmp_path / "out")
    assert ds.class_names == ["cat", "dog"] and len(ds) == 8
    assert list(ds.index.groupby("label")["split"].apply(lambda s: (s == "test").sum())) == [2, 1]
    assert ds.images[ds.index["id"].tolist().index("cat__4")].shape == (24, 30, 3)  # full resolution kept
    with pytest.raises(ValueError, match="holds no images"):
        (tmp_path / "empty").mkdir()
        from actmatch.data.sources import build_image_folder
        build_image_folder(tmp_path / "empty", "e", 0, tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_a_plugin_dataset_is_a_registry_entry_and_the_check_knows_it(params_dict, tmp_path):
    from actmatch.config.base import ParamsError
    from actmatch.data.registry import DATASETS, DatasetEntry, register_dataset

    params_dict["datasets"]["toy"] = {"size": 3}
    with pytest.raises(ParamsError, match="datasets: unknown name 'toy'"):
        parse_params(params_dict)
    built = []
    register_dataset(DatasetEntry("toy", lambda p, seed, out, cache: built.append(p.model_extra["toy"])))
    try:
        params_dict["download"]["datasets"].append("toy")
        p = parse_params(params_dict)
        DATASETS["toy"].build(p.datasets, 0, tmp_path, tmp_path)
        assert built == [{"size": 3}]
    finally:
        DATASETS.pop("toy", None)
    with pytest.raises(ValueError, match="either build"):
        register_dataset(DatasetEntry("bad"))


def test_no_code_path_slices_a_split_in_storage_order():
    """Datasets are stored sorted by class: a "first N" of a split is a few classes (issue 18's bug). Every
    subset goes through core.sampling / train_subset; this scans the code for the pattern that bit."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"split_indices\([^)]*\)\s*\[\s*:")
    hits = [f"{p.relative_to(root)}:{n}" for d in ("src", "stages", "tools") for p in (root / d).rglob("*.py")
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, f"a split sliced in storage order: {hits}"
    assert pattern.search('idx = ds.split_indices("train")[:max_train]')   # the pattern catches the old bug
