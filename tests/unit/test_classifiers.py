"""Classifier registry (random weights, no download), preprocessing, freezing, small nets,
training helpers and checkpoint round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from actmatch.classifiers import CLASSIFIERS, Classifier, build_classifier, get_spec, load_classifier, load_trained
from actmatch.classifiers.registry import fetch_weights
from actmatch.classifiers.small import SMALL_TAPS, build_small
from actmatch.classifiers.train import random_shift, save_trained
from actmatch.config.classifiers import TrainRunConfig

IMAGENET = ["efficientnet_lite0", "resnet18", "efficientnet_b0", "mobilenet_v3_large", "vit_b_16"]


def test_registry_entries_and_pins():
    assert set(IMAGENET) <= set(CLASSIFIERS)
    for name in IMAGENET:
        spec = get_spec(name)
        assert spec.weights is not None and len(spec.weights.sha256) == 64
        assert spec.weights.url is None or spec.weights.url.startswith("https://download.pytorch.org/models/")
        if spec.weights.url:  # torchvision file names carry the first 8 hex digits of the sha256
            assert spec.weights.sha256.startswith(spec.weights.url.rsplit("-", 1)[1][:8])
        assert len(spec.class_names()) == 1000
    with pytest.raises(KeyError, match="unknown classifier 'resnet19'; known: .*resnet18"):
        get_spec("resnet19")


CAM_LAYERS = {"efficientnet_lite0": "_conv_head", "resnet18": "layer4", "efficientnet_b0": "features.8",
              "mobilenet_v3_large": "features.16", "vit_b_16": None}


@pytest.mark.parametrize("name", IMAGENET)
def test_architecture_taps_resolve_and_fire_once_and_cam_layer_is_the_last_conv(name):
    clf = build_classifier(name)
    x = torch.zeros(1, 3, 224, 224)
    calls: dict[str, int] = {}
    handles = [clf.model.get_submodule(t).register_forward_hook(
        lambda m, i, o, t=t: calls.__setitem__(t, calls.get(t, 0) + 1)) for t in clf.taps]
    convs: list[str] = []  # every Conv2d in the order it runs
    handles += [m.register_forward_hook(lambda m, i, o, n=n: convs.append(n))
                for n, m in clf.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        out = clf(x)
    finally:
        for h in handles:
            h.remove()
    assert out.shape == (1, 1000)
    assert calls == {t: 1 for t in clf.taps}  # block outputs, never a shared activation module
    assert not any(p.requires_grad for p in clf.model.parameters()) and not clf.model.training
    assert clf.cam_layer == CAM_LAYERS[name] == get_spec(name).cam_layer and clf.resize == "crop"
    if clf.cam_layer is not None:  # Grad-CAM reads the last conv layer: no convolution runs after it
        assert convs[-1] == clf.cam_layer or convs[-1].startswith(clf.cam_layer + "."), (name, convs[-1])


def test_shared_relu_would_fire_twice():
    """Why taps are block outputs: torchvision's BasicBlock calls one ReLU module twice."""
    clf = build_classifier("resnet18")
    n = []
    h = clf.model.get_submodule("layer1.0.relu").register_forward_hook(lambda *a: n.append(1))
    clf(torch.zeros(1, 3, 64, 64))
    h.remove()
    assert len(n) == 2


def test_preprocess_resizes_normalizes_and_converts_channels():
    clf = build_classifier("resnet18")
    img = np.full((300, 451, 3), 255, np.uint8)
    x = clf.preprocess(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    expect = (1 - torch.tensor(clf.mean)) / torch.tensor(clf.std)
    assert torch.allclose(x[:, 100, 100], expect, atol=1e-5)
    gray = clf.preprocess(np.zeros((50, 60), np.uint8))
    assert gray.shape == (3, 224, 224)
    assert torch.allclose(gray[:, 0, 0], -torch.tensor(clf.mean) / torch.tensor(clf.std), atol=1e-5)
    rgba = np.zeros((10, 10, 4), np.uint8)
    assert clf.preprocess(rgba).shape == (3, 224, 224)
    with pytest.raises(ValueError, match="uint8"):
        clf.preprocess(np.zeros((10, 10, 3), np.float32))


def _two_edges(h: int = 300, w: int = 450) -> np.ndarray:
    """uint8 (h, w, 3): red 255 from column w/3 on, green 255 from row h/10 on, blue 0."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 3:, 0] = 255
    img[h // 10:, :, 1] = 255
    return img


def test_crop_and_stretch_put_a_known_pattern_where_each_resize_says():
    crop = build_classifier("resnet18")                       # ImageNet entries crop
    stretch = dataclasses.replace(crop, resize="stretch")
    assert crop.resize == "crop" and Classifier("t", crop.model, 8, 3, (0.0,), (1.0,), (), []).resize == "stretch"
    img = _two_edges()                                         # 300 × 450: red edge at x = 150, green at y = 30
    for clf, red_x, green_y in ((crop, 150 * 384 / 450 - 80, 30 * 256 / 300 - 16),   # 256 × 384, crop from (80, 16)
                                (stretch, 150 * 224 / 450, 30 * 224 / 300)):        # 224 × 224 of the whole image
        x = clf.preprocess(img) * torch.tensor(clf.std).view(3, 1, 1) + torch.tensor(clf.mean).view(3, 1, 1)
        red, green = x[0, 112], x[1, :, 112]
        assert red[: int(red_x) - 2].max() < 0.01 and red[int(red_x) + 3:].min() > 0.99, clf.resize
        assert green[: int(green_y) - 2].max() < 0.01 and green[int(green_y) + 3:].min() > 0.99, clf.resize
        assert 0.2 < red[int(red_x) - 1: int(red_x) + 2].mean() < 0.8        # the edge itself
    region = (80 * 450 / 384, 16 * 300 / 256, 304 * 450 / 384, 240 * 300 / 256)     # the crop, in photo pixels
    assert crop.input_region(300, 450) == pytest.approx(region)
    assert stretch.input_region(300, 450) == (0.0, 0.0, 450.0, 300.0)


def test_crop_equals_torchvision_imagenet1k_v1_transforms():
    from torchvision.models import ResNet18_Weights
    clf = build_classifier("resnet18")
    rng = np.random.default_rng(0)
    for shape in [(300, 451, 3), (451, 300, 3), (224, 224, 3)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        ref = ResNet18_Weights.IMAGENET1K_V1.transforms()(torch.from_numpy(img).permute(2, 0, 1).float() / 255.0)
        torch.testing.assert_close(clf.preprocess(img), ref, rtol=0, atol=1e-5)


def test_unknown_resize_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown resize 'pad'; allowed: crop, stretch"):
        dataclasses.replace(get_spec("resnet18"), resize="pad")
    with pytest.raises(ValueError, match="unknown resize 'pad'"):
        Classifier("t", torch.nn.Identity(), 8, 1, (0.0,), (1.0,), (), [], resize="pad")


def test_efficientnet_lite0_real_weights_label_the_photos(tmp_path):
    """Centre crop (the default): coffee is an espresso (0.95); chelsea's centre crop is a cat between
    "tiger cat" and "Egyptian cat" (≈ 0.38 each). Stretched, the whole chelsea photo is an Egyptian cat (0.79)."""
    import skimage.data
    path = fetch_weights("efficientnet_lite0", tmp_path / "lite0.pth")
    clf = load_classifier("efficientnet_lite0", path)
    assert clf.resize == "crop" and clf.cam_layer == "_conv_head"
    with torch.no_grad():
        p = clf(torch.stack([clf.preprocess(skimage.data.coffee()), clf.preprocess(skimage.data.chelsea())])).softmax(1)
        ps = dataclasses.replace(clf, resize="stretch")
        q = ps(ps.preprocess(skimage.data.chelsea())[None]).softmax(1)[0]
    assert clf.class_names[int(p[0].argmax())] == "espresso" and 0.9 < float(p[0].max()) < 0.98
    assert {clf.class_names[int(i)] for i in p[1].topk(3).indices} == {"tiger cat", "Egyptian cat", "tabby"}
    assert clf.class_names[int(q.argmax())] == "Egyptian cat" and 0.7 < float(q.max()) < 0.85


def test_load_classifier_rejects_foreign_weights(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="does not fit resnet18"):
        load_classifier("resnet18", tmp_path / "w.pth")
    with pytest.raises(FileNotFoundError, match="download_classifier@resnet18"):
        load_classifier("resnet18", tmp_path / "none.pth")


@pytest.mark.parametrize("arch,size,features", [("mnist_cnn", 28, 6400), ("mnist_cnn", 64, 256 * 14 * 14),
                                                ("small_resnet", 28, 64), ("small_resnet", 64, 64)])
def test_small_architectures(arch, size, features):
    m = build_small(arch, 1, size, 10)
    assert m(torch.zeros(2, 1, size, size)).shape == (2, 10)
    if arch == "mnist_cnn":  # the companion paper's linear 6400 -> 128 at 28 px
        assert m.head[1].in_features == features
    for t in SMALL_TAPS[arch]:
        m.get_submodule(t)


def test_random_shift_moves_each_image_by_its_own_offset():
    x = torch.zeros(3, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0
    g = torch.Generator().manual_seed(0)
    out = random_shift(x, 1, torch.tensor([-7.0]), g)
    g2 = torch.Generator().manual_seed(0)
    d = torch.randint(0, 3, (3, 2), generator=g2) - 1  # the offsets drawn inside
    for b in range(3):
        # output row r reads padded row r + d + 1, i.e. input row r + dy  -> the dot moves by -dy
        assert out[b, 0, 2 - d[b, 0], 2 - d[b, 1]] == 1.0
        assert (out[b] == 1.0).sum() == 1
    assert x.sum() == 3  # input untouched
    assert torch.equal(random_shift(x, 0, torch.tensor([0.0]), g), x)


def test_trained_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_small("mnist_cnn", 1, 28, 10).eval()
    cfg = TrainRunConfig(name="mnist_cnn-mnist", arch="mnist_cnn", dataset="mnist", epochs=1, batch_size=8,
                         lr=1e-3, weight_decay=0.0, augment_shift=0, seed=0)
    info = {"mean": [0.13], "std": [0.3], "input_size": 28, "in_channels": 1, "num_classes": 10,
            "class_names": [str(i) for i in range(10)]}
    save_trained(tmp_path / "m.pt", model, cfg, info, {"test_accuracy": 0.5})
    clf = load_trained(tmp_path / "m.pt")
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(clf(x), model(x))
    assert clf.taps == SMALL_TAPS["mnist_cnn"] and clf.mean == (0.13,)
    assert torch.allclose(clf.preprocess(np.zeros((28, 28), np.uint8))[0, 0, 0], torch.tensor(-0.13 / 0.3))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable actmatch classifier checkpoint"):
        load_trained(tmp_path / "bad.pt")
