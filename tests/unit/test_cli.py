"""The ``actmatch`` CLI and image reading: any image mode converts; every bad input gives a
message naming the problem, exit status 2, and no output at all."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from ruamel.yaml import YAML

from actmatch.classifiers.small import build_small
from actmatch.classifiers.train import save_trained
from actmatch.cli import main
from actmatch.config.explainer import AmortizedParams, ExplainerRun, LossConfig, UNetParams
from actmatch.config.classifiers import TrainRunConfig
from actmatch.explainer.api import save_explainer
from actmatch.explainer.unet import UNet
from actmatch.images import explanation_images, read_image
from tests.conftest import ROOT

LOSS = LossConfig(weights=dict(act=1, ce=1, kl=0, area=5, bin=0, tv=0, rob=0, nec=0), temperature=2.0,
                  act_distance="cosine", act_alphas=[1, 1, 1], tv_neighbours=8, rob_backgrounds=["zero"],
                  rob_ste=True, nec_margin=1.0)


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "img"
    d.mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8)).save(d / "gray.png")
    Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA").save(d / "alpha.png")
    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(d / "photo.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert("P").save(d / "palette.png")
    Image.fromarray((rng.integers(0, 65536, (10, 12))).astype(np.uint16)).save(d / "deep.png")
    Image.fromarray(rng.integers(0, 2, (9, 9), dtype=np.uint8) * 255).convert("1").save(d / "bits.png")
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_text("not an image")
    full = (d / "photo.jpg").read_bytes()
    (d / "cut.jpg").write_bytes(full[: len(full) // 2])
    return d


def test_every_image_mode_becomes_uint8(images):
    shapes = {n: read_image(images / n).shape for n in ("gray.png", "alpha.png", "photo.jpg", "palette.png",
                                                         "deep.png", "bits.png")}
    assert shapes == {"gray.png": (40, 30), "alpha.png": (20, 20, 3), "photo.jpg": (28, 28, 3),
                      "palette.png": (16, 16, 3), "deep.png": (10, 12), "bits.png": (9, 9)}
    deep = read_image(images / "deep.png")
    assert deep.dtype == np.uint8 and deep.min() == 0 and deep.max() == 255      # scaled by its own range


@pytest.mark.parametrize("name,message", [("missing.png", "image not found"), ("empty.png", "is empty"),
                                          ("notes.png", "is not an image"), ("cut.jpg", "damaged image")])
def test_bad_image_files_name_the_problem(images, name, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_image(images / name)


def test_explanation_images_are_at_the_original_resolution():
    img = np.full((6, 4, 3), 200, dtype=np.uint8)
    mask = np.zeros((2, 2))
    mask[0, 0] = 1.0
    out = explanation_images(img, mask)
    assert out["mask"].shape == (6, 4) and out["mask"][:3, :2].min() == 255 and out["mask"][3:].max() == 0
    assert out["explanation"][0, 0].tolist() == [200] * 3 and out["explanation"][5, 3].tolist() == [0] * 3


@pytest.fixture()
def trained(tmp_path):
    """A (random-weight) mnist_cnn saved the way train_classifier saves it, and an explainer for it."""
    torch.manual_seed(0)
    folder = tmp_path / "classifiers" / "mnist_cnn-mnist" / "model"
    folder.mkdir(parents=True)
    cfg = TrainRunConfig(name="mnist_cnn-mnist", arch="mnist_cnn", dataset="mnist", epochs=1, batch_size=8, lr=1e-3,
                         weight_decay=0.0, augment_shift=0, seed=0)
    info = {"in_channels": 1, "input_size": 28, "num_classes": 10, "mean": [0.13], "std": [0.31],
            "class_names": [str(i) for i in range(10)]}
    save_trained(folder / "model.pt", build_small("mnist_cnn", 1, 28, 10), cfg, info, {})
    from actmatch.classifiers import load_classifier_dir
    clf = load_classifier_dir(folder)
    unet = UNetParams(widths=[4], bottleneck=8, init_area=0.7)  # ≈ 0.7 everywhere: the whole image kept
    run = ExplainerRun(classifier="mnist_cnn-mnist", dataset="mnist", preset="p", fill="black", unet=unet,
                       eval_images=1, amortized=AmortizedParams(lr=1e-3, epochs=1, batch_size=2))
    save_explainer(tmp_path / "explainer.pt", UNet(1, [4], 8, 0.7), run, LOSS, clf)
    return folder, tmp_path / "explainer.pt"


def test_explain_with_an_amortized_checkpoint_writes_four_files_per_image(images, trained, tmp_path, capsys):
    """The barely trained checkpoint keeps every pixel of `gray` (area 1.0): a full mask keeps the label and
    explains nothing, so, like an empty one, it is reported as no explanation (no picture files); an image
    whose mask is smaller gets its mask, explanation and overlay."""
    folder, ckpt = trained
    out = tmp_path / "out"
    rc = main(["explain", str(images / "gray.png"), str(images / "photo.jpg"), "--classifier", str(folder),
               "--explainer", str(ckpt), "--out", str(out), "--no-progress", "--device", "cpu"])
    assert rc == 0
    metas = {s: json.loads((out / f"{s}.json").read_text()) for s in ("gray", "photo")}
    explained = [s for s, m in metas.items() if m["label_kept"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s}{k}" for s in explained for k in ("_mask.png", "_explanation.png", "_overlay.png")]
        + ["gray.json", "photo.json", "index.html"])                          # two images: a gallery
    meta = metas["gray"]
    assert meta["classifier"] == "mnist_cnn-mnist" and meta["regime"] == "amortized" and meta["area"] == 1.0
    assert meta["label_kept"] is False and meta["p_ratio"] == 1.0 and meta["ladder"][0]["kept"] is True
    assert meta["reason"].startswith("only the full mask (every pixel) keeps")
    # a random-weight classifier may already say y on the black fill alone: then the keep is trivial, and said so
    assert meta["trivial"] == (meta["null_class_name"] == meta["class_name"])
    assert set(meta) >= {"label", "class_name", "p_x", "p_e", "label_kept", "fill", "margin_x", "trivial", "ladder"}
    for s in explained:
        assert Image.open(out / f"{s}_mask.png").size == Image.open(images / f"{s}.{'png' if s == 'gray' else 'jpg'}").size
    printed = capsys.readouterr()
    assert "class_name" in printed.out and "!!  gray.png" in printed.out   # the failure's row is marked


def test_explain_per_image_takes_the_run_from_params(images, trained, tmp_path):
    folder, _ = trained
    params = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    run = params["explainer"]["per_image_runs"]["mnist_cnn-mnist"]
    run["unet"] = {"widths": [4], "bottleneck": 8, "init_area": 0.1}
    YAML(typ="safe", pure=True).dump(params, tmp_path / "params.yaml")
    out = tmp_path / "out"
    rc = main(["explain", str(images / "gray.png"), "--classifier", "mnist_cnn-mnist", "--classifiers-dir",
               str(tmp_path / "classifiers"), "--per-image", "--steps", "2", "--out", str(out), "--params",
               str(tmp_path / "params.yaml"), "--no-progress", "--device", "cpu"])
    assert rc == 0
    meta = json.loads((out / "gray.json").read_text())
    assert meta["regime"] == "per_image" and meta["steps"] == 2 and meta["recipe"] == "mnist_cnn-mnist"
    batched = tmp_path / "batched"
    rc = main(["explain", str(images / "gray.png"), str(images / "photo.jpg"), "--classifier", "mnist_cnn-mnist",
               "--classifiers-dir", str(tmp_path / "classifiers"), "--per-image", "--steps", "2", "--batch", "2",
               "--out", str(batched), "--params", str(tmp_path / "params.yaml"), "--no-progress", "--device", "cpu"])
    assert rc == 0 and json.loads((batched / "gray.json").read_text())["area"] == pytest.approx(meta["area"], abs=0.01)


@pytest.mark.parametrize("case", ["bad_image", "other_classifier", "no_classifier", "unwritable", "both_modes",
                                  "params_typo", "bad_batch"])
def test_bad_input_exits_2_names_the_problem_and_writes_nothing(images, trained, tmp_path, capsys, case):
    folder, ckpt = trained
    out = tmp_path / "out"
    argv = ["explain", str(images / "gray.png"), "--classifier", str(folder), "--explainer", str(ckpt),
            "--out", str(out), "--no-progress", "--device", "cpu"]
    expected = {"bad_image": "cut.jpg is a damaged image", "other_classifier": "explains toy at 8 px",
                "no_classifier": "no classifier 'resnet99'", "unwritable": "is not a writable folder",
                "both_modes": "--explainer (amortized) takes no per-image settings", "params_typo": "preset 'tuned_mnist': wieghts: Extra inputs are not permitted",
                "bad_batch": "--batch must be at least 1, got 0"}[case]
    if case == "bad_image":
        argv.insert(2, str(images / "cut.jpg"))
    elif case == "other_classifier":
        from actmatch.classifiers.registry import Classifier
        from tests.unit.test_losses import Toy
        toy = Classifier("toy", Toy(), 8, 1, (0.0,), (1.0,), ("block1",), ["a"])
        save_explainer(ckpt, UNet(1, [4], 8, 0.3), ExplainerRun(
            classifier="toy", dataset="mnist", preset="p", fill="black", unet=UNetParams(widths=[4], bottleneck=8,
            init_area=0.3), eval_images=1, amortized=AmortizedParams(lr=1e-3, epochs=1, batch_size=2)), LOSS, toy)
    elif case == "no_classifier":
        argv[argv.index(str(folder))] = "resnet99"
    elif case == "unwritable":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "out"
        argv[argv.index("--out") + 1] = str(out)
    elif case == "both_modes":
        argv.append("--per-image")
    elif case == "bad_batch":
        argv += ["--batch", "0"]
    elif case == "params_typo":
        params = (ROOT / "params.yaml").read_text().replace("weights: {act: 0.6", "wieghts: {act: 0.6")
        (tmp_path / "params.yaml").write_text(params)
        i = argv.index("--explainer")
        argv[i:i + 2] = ["--per-image", "--params", str(tmp_path / "params.yaml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err, err
    assert not out.exists()


def test_classifiers_and_info(trained, capsys):
    folder, ckpt = trained
    assert main(["classifiers", "--classifiers-dir", str(folder.parent.parent)]) == 0
    text = capsys.readouterr().out
    assert "efficientnet_lite0" in text and "pip package" in text and "download.pytorch.org" in text
    assert "mnist_cnn-mnist" in text
    assert main(["info", str(ckpt)]) == 0
    info = capsys.readouterr().out
    assert "classifier: mnist_cnn-mnist" in info and "input_size: 28" in info


def test_explain_anywhere_with_a_registry_classifier_and_a_shipped_recipe(tmp_path, monkeypatch, capsys):
    """From an empty folder, no params.yaml, no pipeline: efficientnet_lite0's weights come from its pip
    package into ACTMATCH_CACHE (once), the recipe from the package, --area makes the area a target."""
    import skimage.data

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTMATCH_CACHE", str(tmp_path / "cache"))
    Image.fromarray(skimage.data.coffee()).save(tmp_path / "coffee.jpg")
    # two steps from a head bias of logit(0.1): every pixel's soft mask is below 0.5, an empty mask: the label is
    # not kept, the JSON says why, no mask is written as an explanation, and --strict exits with status 1
    argv = ["explain", "coffee.jpg", "--classifier", "efficientnet_lite0", "--steps", "2", "--area", "0.05",
            "--out", "out", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    meta = json.loads((tmp_path / "out/coffee.json").read_text())
    assert meta["class_name"] == "espresso" and meta["recipe"] == "photos" and meta["area_target"] == 0.05
    assert meta["steps"] == 2 and 0 < meta["p_x"] <= 1 and meta["input_region"] == [125.0, 25.0, 475.0, 375.0]
    assert meta["rungs"] == [0.05] and meta["area"] == 0.0 and meta["label_kept"] is False and meta["files"] == []
    assert meta["reason"].startswith("every mask up to 5% of the pixels came out empty (the fill alone is classified")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["coffee.json"]
    assert main(argv + ["--strict"]) == 1
    weights = tmp_path / "cache/classifiers/efficientnet_lite0/weights.pth"
    assert weights.stat().st_size > 10_000_000
    stamp = weights.stat().st_mtime_ns
    assert main(["explain", "coffee.jpg", "--classifier", "efficientnet_lite0", "--steps", "1", "--rung-steps", "1",
                 "--out", "out2", "--no-progress", "--device", "cpu"]) == 0
    assert weights.stat().st_mtime_ns == stamp  # fetched once
    ladder = json.loads((tmp_path / "out2/coffee.json").read_text())["ladder"]   # the photos recipe: the ladder
    assert [r["area_target"] for r in ladder] == [0.02, 0.05, 0.1, 0.2, 0.4]
    assert main(["explain", "coffee.jpg", "--classifier", "efficientnet_lite0", "--preset", "nope", "--out", "o3",
                 "--no-progress"]) == 2
    assert "--preset 'nope' is not a shipped recipe; known: digits, photos" in capsys.readouterr().err


def test_shipped_recipes_match_params_yaml():
    """The CLI's recipes are generated from this repository's params.yaml: they must not drift."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(ROOT / "tools/sync_recipes.py"), "--check"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture()
def stand_ins(tmp_path, monkeypatch):
    """The CLI with a stand-in classifier (tests/unit/test_ladder.py) and a small recipe with the ladder; two
    16×16 grey ramps in a folder. Returns a function that sets the stand-in."""
    from tests.unit.test_ladder import LOSS as LADDER_LOSS, RUNGS, STEPS, UNET as LADDER_UNET

    import actmatch.cli as cli

    d = tmp_path / "photos"
    d.mkdir()
    ramp = np.round(127.5 + 0.5 * np.arange(256.0)).reshape(16, 16).astype(np.uint8)
    Image.fromarray(ramp).save(d / "ramp.png")
    Image.fromarray(ramp.T.copy()).save(d / "ramp_t.png")
    (d / "notes.txt").write_text("not an image: skipped")
    monkeypatch.setattr(cli, "_recipe", lambda name: (LADDER_LOSS, LADDER_UNET, "black",
                                                      STEPS.model_copy(update={"ladder": RUNGS})))

    def use(clf):
        monkeypatch.setattr(cli, "_classifier", lambda name, root: clf)
    return d, use


def test_explain_a_folder_climbs_the_ladder_and_writes_a_gallery(stand_ins, tmp_path, capsys):
    from tests.unit.test_ladder import stand_in

    d, use = stand_ins
    use(stand_in(0.1))  # keeps its label only above 10 % of the pixels
    out = tmp_path / "out"
    assert main(["explain", str(d), "--classifier", "stand_in", "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0
    for stem in ("ramp", "ramp_t"):
        meta = json.loads((out / f"{stem}.json").read_text())
        chosen = [r for r in meta["ladder"] if r["chosen"]]
        assert meta["label_kept"] and chosen == [meta["ladder"][-1]]        # it stopped at the chosen rung
        assert chosen[0]["area_target"] in (0.1, 0.2) and meta["area"] > 0.1 and meta["p_ratio"] >= 0.25
        assert meta["rungs"] == [0.02, 0.05, 0.1, 0.2, 0.4] and meta["files"] == [
            f"{stem}_explanation.png", f"{stem}_mask.png", f"{stem}_overlay.png"]
    page = (out / "index.html").read_text()
    assert page.count('<section class="card') == 2 and "http" not in page and "<script" not in page
    assert page.count("<img ") == page.count('src="data:image/') == 6  # photo, overlay, mask per photo
    table = capsys.readouterr().out
    assert "ramp.png" in table and "NO" not in table and f"gallery: {out / 'index.html'}" in table


def test_no_rung_keeps_the_label_is_never_silent(stand_ins, tmp_path, capsys, caplog):
    from tests.unit.test_ladder import stand_in

    d, use = stand_ins
    use(stand_in(0.6, k=0.05, names=("tiger cat", "Egyptian cat")))  # a near tie; any mask under 60 % flips it
    out = tmp_path / "out"
    argv = ["explain", str(d / "ramp.png"), "--classifier", "stand_in", "--steps", "3", "--rung-steps", "3",
            "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv + ["--strict"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["ramp.json"]          # no mask written as an explanation
    meta = json.loads((out / "ramp.json").read_text())
    assert meta["label_kept"] is False and meta["files"] == [] and len(meta["ladder"]) == 5
    assert "'tiger cat' 0.505 vs 'Egyptian cat' 0.495 (margin_x 0.010, a near tie)" in meta["reason"]
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith(f"{d / 'ramp.png'}: no explanation written: ") and "near tie" in m for m in warning)
    printed = capsys.readouterr().out
    assert "!!" in printed and "NO EXPLANATION" in printed and "1 of 1 image(s) without an explanation" in printed
    assert main(argv) == 0                                                  # without --strict: reported, status 0


@pytest.mark.parametrize("area, message", [("0", "--area: fractions of the pixels in (0, 1)"),
                                           ("0.2,0.1", "strictly increasing"), ("big", "--area is 'auto'")])
def test_bad_area_is_refused(stand_ins, tmp_path, capsys, area, message):
    d, _ = stand_ins
    assert main(["explain", str(d), "--classifier", "x", "--area", area, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_the_gallery_lists_failures_first_and_inlines_everything():
    from actmatch.images import GalleryItem, render_gallery

    def rec(kept, trivial=False):
        return {"label": 3, "class_name": "a<b", "p_x": 0.5, "p_e": 0.4, "p_ratio": 0.8, "area": 0.05,
                "label_kept": kept, "trivial": trivial, "reason": None if kept else "lost it",
                "ladder": [{"area_target": 0.05, "area": 0.05, "kept": kept, "p_ratio": 0.8, "class_name_e": "a",
                            "chosen": kept}]}
    photo = np.zeros((8, 8, 3), np.uint8)
    mask = np.full((8, 8), 255, np.uint8)
    page = render_gallery([GalleryItem("ok.png", rec(True), photo, {"overlay": photo, "mask": mask}),
                           GalleryItem("triv.png", rec(True, True), photo, {"overlay": photo, "mask": mask}),
                           GalleryItem("bad.png", rec(False), photo, {})], "t")
    assert page.index("bad.png") < page.index("triv.png") < page.index("ok.png")
    assert "a&lt;b" in page and "lost it" in page and "&#10003; chosen" in page
    assert page.count("<img ") == 7                                      # 3 + 3 pictures, the failure only its photo


@pytest.mark.slow
def test_the_gallery_renders_in_a_real_browser(stand_ins, tmp_path):
    """Headless Chromium (Debian's package) opens index.html offline and takes a screenshot: the page has
    the photos laid out (not blank), with the red band of the failure first."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium (apt-get install -y chromium)")
    from actmatch.images import GalleryItem, write_gallery

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[30:60, 40:90] = 255
    ok = {"label": 1, "class_name": "cat", "p_x": 0.9, "p_e": 0.8, "p_ratio": 0.89, "area": 0.08, "label_kept": True,
          "trivial": False, "reason": None, "ladder": []}
    bad = {**ok, "label_kept": False, "reason": "no mask up to 40% keeps the label"}
    page = tmp_path / "index.html"
    write_gallery(page, [GalleryItem("ok.png", ok, photo, {"overlay": photo, "mask": mask}),
                         GalleryItem("bad.png", bad, photo, {})], "gallery")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,900", f"--screenshot={shot}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (900, 1000) and img.std() > 20               # not a blank page
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)  # the failure card's band (#c33)
    green = (img[..., 0] < 100) & (img[..., 1] > 150) & (img[..., 2] < 100)  # the kept card's band (#4a4)
    assert red.any() and green.any() and np.argwhere(red)[:, 0].min() < np.argwhere(green)[:, 0].min()
