"""The evaluate stage's library side on a toy classifier and a tiny dataset: every method scored
on the same images at our mask's area, a regime with fewer images scored on the ones it has, every
seed scored and aggregated (a collapsed seed named and left out), clear errors, and a rerun that
reuses finished methods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import actmatch.evaluation as ev
from actmatch.classifiers.registry import Classifier, freeze
from actmatch.config.evaluate import EvaluateRunConfig
from actmatch.config.explainer import ExplainerRun, LossConfig
from actmatch.data.store import ImageDataset
from actmatch.evaluation import Regime, evaluate, load_regimes


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.block1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.block1(x))


def _setup(tmp_path, n=6):
    clf = Classifier("toy", freeze(Toy()), 8, 1, (0.5,), (0.5,), ("block1",), ["a", "b", "c"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    index = pd.DataFrame({"id": [f"i{k}" for k in range(n)], "label": rng.integers(0, 3, n), "split": "test",
                          "x0": 0, "y0": 0, "x1": 4, "y1": 4})
    ds = ImageDataset("toy", images, index, {})
    loss = LossConfig(weights=dict(act=1, ce=1, kl=0, area=1, bin=0, tv=0, rob=0, nec=0), temperature=1.0,
                      act_distance="cosine", act_alphas=[1], tv_neighbours=8, rob_backgrounds=["zero"], rob_ste=True,
                      nec_margin=1.0)
    run = ExplainerRun(classifier="toy", dataset="mnist", preset="p", fill="black",
                       unet={"widths": [4], "bottleneck": 4, "init_area": 0.3}, eval_images=n,
                       per_image={"lr": 1e-3, "steps": 1}, group="toy-mnist", regime="per_image")
    soft = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    hard = (soft > 0.5).float()
    regimes = {"per_image": [Regime("per_image", list(index["id"]), soft, tmp_path, run, loss, hard)],
               "per_image_few": [Regime("per_image_few", ["i4", "i1"], soft[[4, 1]], tmp_path, run, loss,
                                        hard[[4, 1]])]}
    cfg = EvaluateRunConfig(name="toy-mnist", classifier="toy", dataset="mnist", seed=0, match_area="per_image",
                            batch_size=4, curve_steps=4, perturb_draws=1, budgets=[0.5, 0.1], max_pieces=4,
                            bootstrap=100, cost_images=1,
                            baselines={"random": {}, "centre": {}, "rise": {"masks": 8}})
    return clf, ds, regimes, cfg


def test_every_method_is_scored_on_the_same_images_at_our_area(tmp_path):
    clf, ds, regimes, cfg = _setup(tmp_path)
    per_image, curves, metrics, cost = evaluate(clf, ds, regimes, cfg, progress=False)
    assert set(per_image["method"]) == {"ours:per_image", "ours:per_image_few", "random", "centre", "rise"}
    ours = per_image[per_image.method == "ours:per_image"].set_index("id")
    for m in ("random", "centre", "rise"):
        theirs = per_image[per_image.method == m].set_index("id")
        np.testing.assert_allclose(theirs.loc[ours.index, "area"], ours["area"], atol=1 / 64 / 2)
    few = per_image[per_image.method == "ours:per_image_few"]
    assert list(few["id"]) == ["i1", "i4"] and metrics["methods"]["ours:per_image_few"]["metrics"]["kept"]["n"] == 2
    assert metrics["settings"]["tie_seed"] == 0 and metrics["settings"]["fill"] == "black"
    assert "pointing" in per_image and per_image["pointing"].between(0, 1).all()
    # ours are not timed again here: their cost is their explain stage's own timing (results/timing/)
    assert len(curves) == 5 * (cfg.curve_steps + 1) and set(cost) == {"random", "centre", "rise"}
    assert set(per_image.loc[per_image.method == "random", "seed"]) == {0}   # binarized at ours seed 0
    assert all(c["ms_per_explanation"] > 0 for c in cost.values())


def test_finished_methods_are_reused_after_an_interruption(tmp_path, monkeypatch):
    clf, ds, regimes, cfg = _setup(tmp_path)
    state = tmp_path / "state"
    first = evaluate(clf, ds, regimes, cfg, state, progress=False)[0]
    assert len(list(state.glob("*.pt"))) == 5

    def boom(*a, **k):
        raise RuntimeError("recomputed")
    monkeypatch.setattr(ev, "build_baseline", boom)
    again = evaluate(clf, ds, regimes, cfg, state, progress=False)[0]
    pd.testing.assert_frame_equal(first, again)


def test_clear_errors(tmp_path):
    clf, ds, regimes, cfg = _setup(tmp_path)
    with pytest.raises(KeyError, match="match_area 'amortized' has no masks; found"):
        evaluate(clf, ds, regimes, cfg.model_copy(update={"match_area": "amortized"}), progress=False)
    other = regimes["per_image"][0]
    regimes["x"] = [Regime("x", other.ids, other.soft, tmp_path, other.run.model_copy(update={"fill": "mean"}),
                           other.loss, other.hard)]
    with pytest.raises(ValueError, match="different fills"):
        evaluate(clf, ds, regimes, cfg, progress=False)
    with pytest.raises(FileNotFoundError, match="run the explainer stages first"):
        load_regimes(tmp_path / "nothing")
    clf2, ds2, regimes2, cfg2 = _setup(tmp_path)
    regimes2["per_image"][0].ids[0] = "zz"
    with pytest.raises(KeyError, match="not in dataset 'toy'"):
        evaluate(clf2, ds2, regimes2, cfg2, progress=False)


def test_load_regimes_reads_every_seed_and_the_stored_hard_masks(tmp_path):
    """Soft masks are stored float32 (a mask near the paper's flat start, 0.5001, survives) beside the
    hard masks the regime made; every seed folder is a separate Regime, sorted by seed."""
    from actmatch.explainer.outputs import write_config, write_masks
    _, _, regimes, _ = _setup(tmp_path)
    reg = regimes["per_image"][0]
    for seed, value in ((1, 0.5001), (0, 0.4999)):
        folder = tmp_path / "ex" / "per_image" / f"seed{seed}"
        folder.mkdir(parents=True)
        write_masks(folder / "masks.npz", reg.ids[:2], per_image=torch.full((2, 1, 8, 8), value))
        write_config(folder / "config.yaml", reg.run, reg.loss, seed=seed)
    loaded = load_regimes(tmp_path / "ex")["per_image"]
    assert [r.seed for r in loaded] == [0, 1]
    assert loaded[1].soft.dtype == torch.float32 and float(loaded[1].soft[0, 0, 0, 0]) == pytest.approx(0.5001)
    assert loaded[1].hard_masks().min() == 1.0 and loaded[0].hard_masks().max() == 0.0
    assert loaded[0].ids == reg.ids[:2] and loaded[0].run == reg.run


def test_seeds_are_aggregated_and_a_collapsed_seed_is_named_not_averaged(tmp_path):
    clf, ds, regimes, cfg = _setup(tmp_path)
    r0 = regimes["per_image"][0]
    empty = torch.zeros_like(r0.soft)  # seed 1 collapsed: every hard mask empty
    r2 = Regime("per_image", r0.ids, r0.soft.flip(-1), tmp_path, r0.run, r0.loss, (r0.soft.flip(-1) > 0.5).float(), 2)
    regimes["per_image"] = [r0, Regime("per_image", r0.ids, empty, tmp_path, r0.run, r0.loss, empty, 1), r2]
    per_image, _, metrics, _ = evaluate(clf, ds, regimes, cfg.model_copy(update={"baselines": {}}), progress=False)
    ours = per_image[per_image.method == "ours:per_image"]
    assert sorted(ours["seed"].unique()) == [0, 1, 2]
    entry = metrics["methods"]["ours:per_image"]
    assert entry["seeds"] == 3 and entry["collapsed"] == [1]
    by_seed = ours[ours.seed != 1].groupby("seed")["area"].mean()
    area = entry["metrics"]["area"]
    assert area["mean"] == pytest.approx(by_seed.mean()) and area["min"] == pytest.approx(by_seed.min())
    assert area["sd"] == pytest.approx(by_seed.std(ddof=1)) and area["n"] == 6


def test_previews_keep_every_methods_first_seed_map_of_the_first_images(tmp_path):
    clf, ds, regimes, cfg = _setup(tmp_path)
    previews: dict = {}
    evaluate(clf, ds, regimes, cfg, progress=False, previews=previews)
    assert list(previews["ids"]) == ["i0", "i1", "i2", "i3", "i4", "i5"]          # 6 < PREVIEW_IMAGES
    assert set(previews) == {"ids", "ours:per_image", "random", "centre", "rise"}  # the 2-image regime has too few
    for name in ("ours:per_image", "rise"):
        assert previews[name].dtype == np.uint8 and previews[name].shape == (6, 8, 8)
        assert previews[name].max() == 255 or previews[name].max() == 0
    soft = regimes["per_image"][0].soft[:, 0]
    lo, hi = soft.flatten(1).min(1).values, soft.flatten(1).max(1).values
    expected = ((soft - lo[:, None, None]) / (hi - lo)[:, None, None] * 255).round()
    np.testing.assert_allclose(previews["ours:per_image"], expected.numpy(), atol=1)   # the map, rescaled
