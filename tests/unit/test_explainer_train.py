"""Regimes on a tiny frozen classifier: a few steps lower the loss, masks have the right shape
and range, interrupted runs resume to the same numbers, checkpoints round-trip."""

from __future__ import annotations

import pytest
import torch

from actmatch.classifiers.registry import Classifier, freeze
from actmatch.config.explainer import AmortizedParams, ExplainerRun, LossConfig, StepsParams, UNetParams
from actmatch.explainer import train as T
from actmatch.explainer.api import load_explainer, masks_for, save_explainer
from tests.unit.test_losses import Toy

UNET = UNetParams(widths=[4], bottleneck=8, init_area=0.3)
LOSS = LossConfig(weights=dict(act=1, ce=1, kl=1, area=5, bin=1, tv=1, rob=1, nec=1), temperature=2.0,
                  act_distance="paper", act_alphas=[1, 2], tv_neighbours=8,
                  rob_backgrounds=["zero", "gaussian", "uniform"], rob_ste=True, nec_margin=1.0)


@pytest.fixture()
def clf():
    torch.manual_seed(0)
    return Classifier("toy", freeze(Toy()), 8, 1, (0.0,), (1.0,), ("block1", "block2"), ["a", "b", "c"])


def test_per_image_lowers_loss_and_shapes(clf):
    x = torch.randn(2, 1, 8, 8)
    res = T.explain_per_image(clf, x, LOSS, UNET, StepsParams(lr=1e-2, steps=15), "normalized_zero", 0,
                              progress=False)
    assert res.soft.shape == (2, 1, 8, 8) and res.soft.min() >= 0 and res.soft.max() <= 1
    assert res.curves["total"][-1] < res.curves["total"][0]
    assert set(res.final) >= {"act", "ce", "kl", "area", "bin", "tv", "rob", "nec", "total", "kept"}
    assert len(res.curves["total"]) == 15


def test_per_image_resume_gives_identical_masks(clf, tmp_path, monkeypatch):
    x = torch.randn(3, 1, 8, 8)
    steps = StepsParams(lr=1e-2, steps=5)
    full = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, progress=False)
    real_save = T.save_state
    calls = []

    def crash_after_first(path, state):
        real_save(path, state)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(T, "save_state", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, state_path=tmp_path / "s", progress=False)
    monkeypatch.setattr(T, "save_state", real_save)
    resumed = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, state_path=tmp_path / "s", progress=False)
    assert torch.equal(resumed.soft, full.soft)
    assert (resumed.final["total"] == full.final["total"]).all()


def test_amortized_resume_gives_identical_model(clf, tmp_path):
    x = torch.randn(10, 1, 8, 8)
    cfg = AmortizedParams(lr=1e-2, epochs=3, batch_size=4)
    net_full, curves_full = T.train_amortized(clf, x, LOSS, UNET, cfg, "normalized_zero", 0, progress=False)

    def stop_after_first(epoch, means):
        if epoch == 0:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        T.train_amortized(clf, x, LOSS, UNET, cfg, "normalized_zero", 0, state_path=tmp_path / "a",
                          on_epoch=stop_after_first, progress=False)
    # the epoch-0 state was saved before the interruption? on_epoch runs first: nothing saved yet
    net_res, curves_res = T.train_amortized(clf, x, LOSS, UNET, cfg, "normalized_zero", 0, state_path=tmp_path / "a",
                                            progress=False)
    for a, b in zip(net_full.state_dict().values(), net_res.state_dict().values()):
        assert torch.equal(a, b)
    assert curves_res["total"] == curves_full["total"]


def test_amortized_resume_from_saved_epoch(clf, tmp_path, monkeypatch):
    x = torch.randn(10, 1, 8, 8)
    cfg = AmortizedParams(lr=1e-2, epochs=3, batch_size=4)
    net_full, _ = T.train_amortized(clf, x, LOSS, UNET, cfg, "black", 1, progress=False)
    real_save = T.save_state

    def crash_on_second_save(path, state):
        real_save(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(T, "save_state", crash_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        T.train_amortized(clf, x, LOSS, UNET, cfg, "black", 1, state_path=tmp_path / "a", progress=False)
    monkeypatch.setattr(T, "save_state", real_save)
    assert torch.load(tmp_path / "a", weights_only=False)["epoch"] == 2
    net_res, _ = T.train_amortized(clf, x, LOSS, UNET, cfg, "black", 1, state_path=tmp_path / "a", progress=False)
    for a, b in zip(net_full.state_dict().values(), net_res.state_dict().values()):
        assert torch.equal(a, b)


def test_state_from_other_settings_is_not_resumed(clf, tmp_path):
    x = torch.randn(2, 1, 8, 8)
    T.explain_per_image(clf, x, LOSS, UNET, StepsParams(lr=1e-2, steps=2), "black", 0, state_path=tmp_path / "s",
                        progress=False)
    other = T.explain_per_image(clf, x, LOSS, UNET, StepsParams(lr=1e-2, steps=3), "black", 0,
                                state_path=tmp_path / "s", progress=False)
    assert len(other.curves["total"]) == 3


def test_explainer_checkpoint_round_trip_and_mismatch(clf, tmp_path):
    net = T.build_unet(clf, UNET)
    run = ExplainerRun(classifier="toy", dataset="mnist", preset="p", fill="black", unet=UNET, eval_images=2,
                       amortized=AmortizedParams(lr=1e-3, epochs=1, batch_size=2))
    save_explainer(tmp_path / "e.pt", net, run, LOSS, clf)
    loaded, meta = load_explainer(tmp_path / "e.pt", clf)
    assert meta["classifier"] == "toy" and meta["loss"]["weights"]["area"] == 5
    import numpy as np
    imgs = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    soft, hard = masks_for(clf, loaded, imgs)
    assert soft.shape == (3, 1, 8, 8) and set(hard.unique().tolist()) <= {0.0, 1.0}
    other = Classifier("other", clf.model, 16, 1, (0.0,), (1.0,), clf.taps, clf.class_names)
    with pytest.raises(ValueError, match="explains toy at 8 px, not other at 16 px"):
        load_explainer(tmp_path / "e.pt", other)


def test_smallest_kept_selection_never_loses_a_label_that_was_kept(clf):
    x = torch.randn(3, 1, 8, 8)
    loss = LOSS.model_copy(update={"weights": LOSS.weights.model_copy(update={"area": 50.0})})
    last = T.explain_per_image(clf, x, loss, UNET, StepsParams(lr=3e-2, steps=12), "black", 0, progress=False)
    best = T.explain_per_image(clf, x, loss, UNET, StepsParams(lr=3e-2, steps=12, select="smallest_kept"), "black", 0,
                               progress=False)
    assert (best.final["kept"] >= last.final["kept"]).all()
    # same optimization path: where the last mask keeps the label, the selected one is no larger
    both = (best.final["kept"] > 0) & (last.final["kept"] > 0)
    assert (best.final["area_hard"][both] <= last.final["area_hard"][both] + 1e-12).all()
    assert best.curves["total"] == last.curves["total"]


def test_training_curves_has_one_panel_per_logged_quantity():
    from actmatch.core.figures import training_curves
    fig = training_curves({"total": [3.0, 2.0, 1.0], "area": [0.5, 0.4, 0.3], "nec": []}, "step")
    drawn = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_title() for ax in drawn] == ["total", "area"]
    assert list(drawn[0].lines[0].get_ydata()) == [3.0, 2.0, 1.0]


def test_a_nan_loss_stops_training_names_the_term_and_keeps_the_last_good_epoch(clf, tmp_path, monkeypatch):
    x = torch.randn(8, 1, 8, 8)
    cfg = AmortizedParams(lr=1e-2, epochs=3, batch_size=4)
    net_full, _ = T.train_amortized(clf, x, LOSS, UNET, cfg, "black", 0, progress=False)
    real, calls = T.loss_terms, {"n": 0}

    def poisoned(*a, **k):
        terms = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 3:              # epoch 2, batch 1 (two batches per epoch)
            terms["tv"] = terms["tv"] * float("nan")
        return terms
    monkeypatch.setattr(T, "loss_terms", poisoned)
    state = tmp_path / "s"
    with pytest.raises(T.LossNotFiniteError, match=r"epoch 2, batch 1: term\(s\) tv; .*after epoch 1\) is kept"):
        T.train_amortized(clf, x, LOSS, UNET, cfg, "black", 0, state_path=state, progress=False)
    assert torch.load(state, weights_only=False)["epoch"] == 1
    monkeypatch.setattr(T, "loss_terms", real)
    net_res, _ = T.train_amortized(clf, x, LOSS, UNET, cfg, "black", 0, state_path=state, progress=False)
    for a, b in zip(net_full.state_dict().values(), net_res.state_dict().values()):
        assert torch.equal(a, b)                       # the rerun resumed from the good epoch


def test_a_nan_loss_in_a_per_image_run_names_the_image_and_step(clf, monkeypatch):
    real = T.loss_terms
    monkeypatch.setattr(T, "loss_terms", lambda *a, **k: {**real(*a, **k), "act": torch.tensor([float("inf")])})
    with pytest.raises(T.LossNotFiniteError, match=r"image 1, step 1: term\(s\) act"):
        T.explain_per_image(clf, torch.randn(1, 1, 8, 8), LOSS, UNET, StepsParams(lr=1e-3, steps=2), "black", 0,
                            progress=False)


@pytest.mark.filterwarnings("error::UserWarning")  # no tensor that requires grad turned into a float per step
def test_lowest_loss_keeps_the_step_with_the_lowest_objective(clf):  # noqa: F811
    """select: lowest_loss returns, per image, whichever mask (a step's, or the final one) had the lowest
    weighted total, so its recomputed loss is never above the final mask's."""
    from actmatch.explainer.objective import loss_terms, reference, weighted_total
    from actmatch.core.masks import fill_values

    torch.manual_seed(3)
    x = torch.randn(2, 1, 8, 8)
    loss = LOSS.model_copy(update={"rob_backgrounds": ["fill"]})  # no noise: every total can be recomputed
    steps = StepsParams(lr=5e-2, steps=4, select="lowest_loss")
    res = T.explain_per_image(clf, x, loss, UNET, steps, "black", 0, progress=False)
    assert res.last is not None and res.soft.shape == res.last.shape == (2, 1, 8, 8)
    ref, base = reference(clf.model, clf.taps, x), fill_values(x, "black", clf.mean, clf.std)
    for i in range(2):
        sl = slice(i, i + 1)
        def total(p):
            return float(weighted_total(loss_terms(clf.model, clf.taps, x[sl], ref.index(sl), p, loss, base[sl],
                                                   torch.Generator().manual_seed(0)), loss)[0])
        # the chosen mask's loss is no higher than the final mask's (which competes too)
        assert total(res.soft[sl]) <= total(res.last[sl]) + 1e-5


def test_area_ramp_scales_only_the_area_term_from_one_over_ramp_to_one():
    from actmatch.explainer.train import ramped

    terms = {"area": torch.tensor([0.2, 0.5]), "ce": torch.tensor([1.0, 2.0])}
    total = LOSS.weights.area * terms["area"] + LOSS.weights.ce * terms["ce"]
    steps = StepsParams(lr=1e-3, steps=5, area_ramp=10.0)
    first, mid, last = (ramped(total, terms, LOSS, steps, t) for t in (0, 2, 4))
    torch.testing.assert_close(first, LOSS.weights.area / 10 * terms["area"] + LOSS.weights.ce * terms["ce"])
    torch.testing.assert_close(mid, LOSS.weights.area / 10 ** 0.5 * terms["area"] + LOSS.weights.ce * terms["ce"])
    torch.testing.assert_close(last, total)
    assert ramped(total, terms, LOSS, StepsParams(lr=1e-3, steps=5), 0) is total   # no ramp: the loss as is


def test_foreach_adam_gives_the_per_tensor_loops_numbers_bit_for_bit(clf, monkeypatch):
    x = torch.randn(2, 1, 8, 8)
    steps = StepsParams(lr=1e-2, steps=4)
    assert T.ADAM_OPTIONS == {"foreach": True}  # the explainer's optimizers use it
    ours = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, progress=False)
    monkeypatch.setattr(T, "ADAM_OPTIONS", {"foreach": False})
    loop = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, progress=False)
    assert torch.equal(ours.soft, loop.soft) and (ours.final["total"] == loop.final["total"]).all()
