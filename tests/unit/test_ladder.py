"""The area ladder (explainer/ladder.py, issue 29) on stand-in classifiers whose answer is known: one keeps
its label only when more than 10 % of the pixels are kept, one only above 99 % (never on the ladder), one
is a near tie on the image itself, one says the same whatever it sees (a trivial keep)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from actmatch.classifiers.registry import Classifier, freeze
from actmatch.config.explainer import LossConfig, StepsParams, UNetParams
from actmatch.explainer import ladder as L
from actmatch.explainer.ladder import explain_ladder, judge, write_ladder
from actmatch.report.ladder import read_ladders

RUNGS = [0.02, 0.05, 0.1, 0.2, 0.4]
# the area term alone (a ranking constraint toward each rung's target): the stand-in only judges the masks
LOSS = LossConfig(weights=dict(act=0, ce=0, kl=0, area=10, bin=0, tv=0, rob=0, nec=0), temperature=2.0,
                  act_distance="cosine", act_alphas=[1], tv_neighbours=8, rob_backgrounds=["zero"], rob_ste=True,
                  nec_margin=1.0, area_target=0.05)
UNET = UNetParams(widths=[4], bottleneck=8, init_area=0.1)
STEPS = StepsParams(lr=1e-2, steps=40, select="lowest_loss", rung_steps=40)


class Gate(nn.Module):
    """Logits (k·(kept − need), 0) with ``kept`` the share of pixels above the black fill (0): class 0 exactly
    when more than ``need`` of the pixels are kept; p_x(0) ≈ 1 on a whole image for a large k."""

    def __init__(self, need: float, k: float = 200.0, bias: float = 0.0):
        super().__init__()
        self.need, self.k, self.bias = need, k, bias
        self.unused = nn.Linear(1, 1)  # a parameter, so that the classifier has a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = (x > 0.25).float().mean((1, 2, 3))
        return torch.stack([self.k * (kept - self.need), torch.full_like(kept, self.bias)], 1)


def stand_in(need: float, k: float = 200.0, names=("kept", "other"), bias: float = 0.0) -> Classifier:
    return Classifier("stand_in", freeze(Gate(need, k, bias)), 16, 1, (0.0,), (1.0,), (), list(names))


def ramps() -> torch.Tensor:
    """Two 16×16 images of distinct values in [0.5, 1] (a raster ramp and its transpose), (2, 1, 16, 16)."""
    r = 0.5 + 0.5 * torch.arange(256.0).view(16, 16) / 255
    return torch.stack([r, r.T])[:, None]


@pytest.fixture(scope="module")
def gate10():
    clf = stand_in(0.1)
    return clf, explain_ladder(clf, ramps(), LOSS, UNET, STEPS, "black", 0, RUNGS, rung_steps=STEPS.rung_steps,
                               progress=False)


def test_the_ladder_stops_at_the_first_rung_that_keeps_never_below(gate10):
    clf, res = gate10
    for im in res.images:
        assert im.y == 0 and im.p_x == pytest.approx(1.0) and not im.trivial
        assert im.chosen is not None and RUNGS[im.chosen] in (0.1, 0.2), [(r.area_target, r.area) for r in im.rungs]
        assert len(im.rungs) == im.chosen + 1                      # it stopped there
        assert all(not r.passes(0.25) for r in im.rungs[:-1])
        shown = im.rungs[im.chosen]
        assert shown.kept and shown.area > 0.1 and shown.p_ratio >= 0.25
        assert im.reason(clf.class_names, 0.25) is None
    # the stored masks are the chosen rung's
    hard = (res.masks.soft > 0.5).float().mean((1, 2, 3))
    assert hard.tolist() == pytest.approx([im.rungs[im.chosen].area for im in res.images])


def test_the_batched_ladder_equals_the_sequential_one(gate10):
    clf, seq = gate10
    bat = explain_ladder(clf, ramps(), LOSS, UNET, STEPS, "black", 0, RUNGS, rung_steps=STEPS.rung_steps, chunk=2,
                         progress=False)
    assert [im.chosen for im in bat.images] == [im.chosen for im in seq.images]
    assert torch.allclose(bat.masks.soft, seq.masks.soft, atol=1e-3)


def test_a_label_no_rung_keeps_is_reported_with_the_measured_reason():
    clf = stand_in(0.99)  # class 0 only above 99 % of the pixels; on the image: logits (200 · 0.01, 0), σ(2) = 0.881
    res = explain_ladder(clf, ramps()[:1], LOSS, UNET, STEPS.model_copy(update={"steps": 5}), "black", 0, RUNGS,
                         rung_steps=5, progress=False)
    im = res.images[0]
    assert im.chosen is None and not im.label_kept and len(im.rungs) == len(RUNGS)
    rec = im.record(clf.class_names, 0.25)
    assert rec["label_kept"] is False and rec["area_target"] == 0.4 and not any(r["chosen"] for r in rec["ladder"])
    assert rec["reason"].startswith(("no mask up to 40% of the pixels keeps the label 'kept'",
                                     "every mask up to 40% of the pixels came out empty"))
    assert "the classifier's own top two on the image: 'kept' 0.881 vs 'other' 0.119 (margin_x 0.762)" in rec["reason"]
    assert "near tie" not in rec["reason"]


def _mask(area_rows: int) -> torch.Tensor:
    m = torch.zeros(1, 1, 16, 16)
    m[..., :area_rows, :] = 1.0
    return m


def test_each_kind_of_failure_has_its_reason():
    x = ramps()[:1]
    lost = judge(stand_in(0.5), x, _mask(4), "black", 0.25)[0]          # 25 % kept: class 'other'
    assert lost.reason(["kept", "other"], 0.25).startswith(
        "no mask up to the recipe's area keeps the label 'kept': at 25.0% of the pixels the explanation is 'other' "
        "(p_ratio 0.00)")
    weak = judge(stand_in(0.2, k=4.0), x, _mask(4), "black", 0.25)[0]   # kept, p_e/p_x = σ(0.2)/σ(3.2) ≈ 0.57
    assert weak.label_kept and weak.rungs[0].p_ratio == pytest.approx(0.5498 / 0.9608, abs=1e-3)
    weaker = judge(stand_in(0.2, k=4.0), x, _mask(4), "black", 0.6)[0]
    assert weaker.reason(["kept", "other"], 0.6).startswith(
        "no mask up to the recipe's area keeps 'kept' with p_e(y)/p_x(y) >= 0.6: the best keeps p_ratio 0.57 at "
        "25.0% of the pixels")
    empty = judge(stand_in(0.5), x, _mask(0), "black", 0.25)[0]
    assert empty.reason(["kept", "other"], 0.25).startswith(
        "every mask up to the recipe's area came out empty (the fill alone is classified 'other')")


def test_a_near_tie_names_both_classes():
    # on the whole image: logits (0.05 · 0.4, 0) → p = 0.505 vs 0.495; any mask under 60 % flips it
    clf = stand_in(0.6, k=0.05, names=("tiger cat", "Egyptian cat"))
    res = explain_ladder(clf, ramps()[:1], LOSS, UNET, STEPS.model_copy(update={"steps": 5}), "black", 0, RUNGS,
                         rung_steps=5, progress=False)
    im = res.images[0]
    assert im.margin_x == pytest.approx(0.01, abs=1e-4) and not im.label_kept
    reason = im.reason(clf.class_names, 0.25)
    assert "'tiger cat' 0.505 vs 'Egyptian cat' 0.495 (margin_x 0.010, a near tie)" in reason
    assert "'Egyptian cat'" in reason.split("; the classifier's own")[0]  # what the explanation / the fill became


def test_a_trivial_keep_is_said_so():
    clf = stand_in(0.1, k=0.0, bias=-1.0)  # logits (0, -1) whatever it sees: the fill alone gives class 0
    [im] = judge(clf, ramps()[:1], _mask(8), "black", 0.25)
    assert im.trivial and im.label_kept and im.y_null == 0 and im.rungs[0].area == 0.5
    assert im.reason(clf.class_names, 0.25).startswith("trivial: the fill alone (no pixel kept) is already classified")


def test_an_empty_mask_never_passes():
    clf = stand_in(0.1, k=0.0, bias=-1.0)
    [im] = judge(clf, ramps()[:1], torch.zeros(1, 1, 16, 16), "black", 0.25)
    assert im.rungs[0].kept and im.rungs[0].area == 0 and not im.label_kept
    assert im.reason(clf.class_names, 0.25).startswith("every mask up to the recipe's area came out empty")


def test_a_finished_ladder_resumes_from_its_state_and_is_written_and_read(gate10, tmp_path, monkeypatch):
    clf, res = gate10
    state = tmp_path / "state.pt"
    first = explain_ladder(clf, ramps()[:1], LOSS, UNET, STEPS, "black", 0, RUNGS[:3], rung_steps=10,
                           state_path=state, progress=False)
    monkeypatch.setattr(L, "_optimize", lambda *a, **k: pytest.fail("a finished image was recomputed"))
    again = explain_ladder(clf, ramps()[:1], LOSS, UNET, STEPS, "black", 0, RUNGS[:3], rung_steps=10,
                           state_path=state, progress=False)
    assert torch.equal(again.masks.soft, first.masks.soft) and again.images[0].rungs == first.images[0].rungs
    write_ladder(tmp_path / "seed3" / "ladder.json", ["a", "b"], res, clf.class_names)
    rec = json.loads((tmp_path / "seed3" / "ladder.json").read_text())
    assert rec["keep_ratio"] == 0.25 and sorted(rec["images"]) == ["a", "b"]
    rows = read_ladders(tmp_path)
    assert rows["seed"].tolist() == [3, 3] and rows["label_kept"].all()
    assert rows["area"].tolist() == pytest.approx([im.shown.area for im in res.images])


@pytest.mark.parametrize("rungs, message", [([0.1, 0.05], "strictly increasing"), ([0.0, 0.1], "strictly increasing"),
                                            ([], "one or more"), ([None, 0.1], "one or more")])
def test_bad_rungs_are_refused(rungs, message):
    with pytest.raises(ValueError, match=message):
        explain_ladder(stand_in(0.1), ramps(), LOSS, UNET, STEPS, "black", 0, rungs, progress=False)


def test_the_report_shows_each_photo_and_seed_smallest_kept_area(tmp_path):
    import pandas as pd

    from actmatch.report.build import _ladder_columns

    def rec(kept, area, ratio, trivial=False):
        return {"label_kept": kept, "area": area, "area_target": area, "p_ratio": ratio, "trivial": trivial}
    for seed, images in ((0, {"cat": rec(True, 0.05, 0.5), "cup": rec(True, 0.3, 0.7)}),
                         (1, {"cat": rec(True, 0.08, 0.6, True), "cup": rec(False, 0.4, 0.01)})):
        (tmp_path / "per_image" / f"seed{seed}").mkdir(parents=True)
        (tmp_path / "per_image" / f"seed{seed}" / "ladder.json").write_text(json.dumps({"images": images}))
    table = pd.DataFrame({"image": ["cat", "cup", "dog"]})
    out, note = _ladder_columns(table, tmp_path, ["ours:per_image", "ours:per_image_paper", "extremal"])
    assert out["ours:per_image ladder area"].tolist() == ["0.050 / 0.080*", "0.300 / none", "–"]
    assert out["ours:per_image ladder p_ratio"].tolist() == ["0.50 / 0.60", "0.70 / –", "–"]
    assert "ours:per_image_paper ladder area" not in out                   # ran without a ladder
    assert "1 of 2 photos keep their label at <= 10 % of the pixels on every seed (1 of them trivial: cat)" in note


def test_reflect_padding_gives_the_unet_no_border_on_a_flat_image():
    """Zero padding makes a fresh U-Net's logits on a constant image stand out along the border (where the photo
    run's masks drew strips, issue 29); with reflect padding the border looks like the interior (whose only
    pattern is the transposed convolutions' period-2 checkerboard)."""
    from actmatch.explainer.unet import UNet

    flat = torch.full((1, 3, 32, 32), 0.7)
    ratios = {}
    for padding in ("zeros", "reflect"):
        torch.manual_seed(0)
        with torch.no_grad():
            z = UNet(3, [4, 8], 8, 0.1, padding)(flat)[0, 0]
        inner = z[4:-4, 4:-4]
        ratios[padding] = float((z[0] - inner.mean()).abs().max() / (inner.max() - inner.min()))
    assert ratios["zeros"] > 5 and ratios["reflect"] < 1, ratios
    with pytest.raises(ValueError, match="padding must be one of zeros, reflect, replicate"):
        UNet(3, [4], 8, 0.1, "circular")


def test_a_passing_mask_over_its_target_does_not_stop_the_climb_and_the_smallest_passing_mask_is_chosen():
    """A rung whose mask keeps the label but overshoots its target (a 2 % rung ending at 30 %) is remembered,
    the climb goes on, and the answer is the smallest passing mask over every rung tried (ties: the lower rung)."""
    from actmatch.explainer.ladder import AREA_SLACK, ImageLadder, Rung

    im = ImageLadder(y=1, p_x=0.8, runner_up=0, p_runner_up=0.1, y_null=0, p_null=0.05)
    im.rungs = [Rung(0.02, 0.30, True, 0.6, 0.75, 1),    # passes, but 15x its target
                Rung(0.05, 0.00, True, 0.7, 0.875, 1),   # empty: never passes
                Rung(0.10, 0.12, True, 0.5, 0.625, 1),   # passes, within 2x its target: stops a climb
                Rung(0.20, 0.12, True, 0.5, 0.1, 1)]     # same area, p_ratio below 0.25: fails
    assert AREA_SLACK == 2.0
    assert [r.on_target for r in im.rungs] == [False, True, True, True]
    im.choose(0.25)
    assert im.chosen == 2 and not im.over_target and im.reason(["a", "b"], 0.25) is None
    im.rungs[2] = Rung(0.10, 0.31, True, 0.5, 0.625, 1)  # now over its target too, and larger than the first
    im.choose(0.25)
    assert im.chosen == 0 and im.over_target
    assert "30.0% of the pixels, over its rung's target (2% of the pixels)" in im.reason(["a", "b"], 0.25)
    assert im.record(["a", "b"], 0.25)["over_target"] is True


def test_a_full_or_oversized_mask_is_never_an_explanation():
    """A mask that keeps every pixel keeps the label and explains nothing: like the empty mask, it never counts;
    over a ladder, neither does one above AREA_SLACK x the highest target tried (0.8 for a top rung of 0.4)."""
    from actmatch.explainer.ladder import ImageLadder, Rung

    clf = stand_in(0.1, k=0.0, bias=-1.0)
    [full] = judge(clf, ramps()[:1], torch.ones(1, 1, 16, 16), "black", 0.25)
    assert full.rungs[0].kept and full.rungs[0].area == 1.0 and full.area_cap == 1.0 and not full.label_kept
    assert full.reason(clf.class_names, 0.25).startswith(
        "only the full mask (every pixel) keeps 'kept' (p_ratio 1.00): it explains nothing")
    im = ImageLadder(y=1, p_x=0.8, runner_up=0, p_runner_up=0.1, y_null=0, p_null=0.05)
    im.rungs = [Rung(0.2, 0.10, False, 0.1, 0.125, 0),   # loses the label
                Rung(0.4, 0.85, True, 0.8, 1.0, 1)]      # keeps it at 85 %: over 2 x 0.4
    im.choose(0.25)
    assert im.area_cap == pytest.approx(0.8) and im.chosen is None and not im.label_kept
    assert im.reason(["a", "b"], 0.25).startswith("only masks over 80% of the pixels keep 'b' (the smallest: 85.0%")
    im.rungs[1] = Rung(0.4, 0.79, True, 0.8, 1.0, 1)    # 79 %: under the cap -> chosen
    im.choose(0.25)
    assert im.chosen == 1 and im.label_kept
