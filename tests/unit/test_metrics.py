"""Every metric of method.md §5 against values computed by hand on tiny tensors, plus the
invariances (batch size, inputs untouched, all-ones mask = unmasked score)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from actmatch.metrics import (activation_similarity, area, auc, complement_scores, crispness, deletion_insertion,
                              fidelity, iou_with_boxes, minimal_budget, pixel_ranks, pointing_game, removable_patch,
                              score_masks, sufficiency, top_fraction_masks, ScoreSettings)
from actmatch.metrics.aggregate import aggregate, mean_ci
from actmatch.metrics.cost import measure


class PixelLogits(nn.Module):
    """Logits ``[w · x, bias]`` for ``(B, 1, H, W)`` images: class 0 sees only where ``w`` ≠ 0."""

    def __init__(self, w: torch.Tensor, bias: float = 0.5) -> None:
        super().__init__()
        self.w, self.bias = w, bias
        self.feat = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.feat(x * self.w)
        return torch.stack([f.flatten(1).sum(1), torch.full((len(x),), self.bias)], 1)


def two_pixel_model() -> PixelLogits:
    """Logits [x0, x1] on a 1×2 image (the second class logit = pixel 1 via w and bias 0 trick)."""
    class M(nn.Module):
        def forward(self, x):
            return x.flatten(1)
    return M()


def test_fidelity_hand_computed_kl_and_confidence():
    model = two_pixel_model()                   # logits [x0, x1]
    x = torch.tensor([[[[2.0, 1.0]]]])
    mask = torch.tensor([[[[0.0, 1.0]]]])       # drops pixel 0 → e = [0, 1]
    out = fidelity(model, x, mask, torch.zeros_like(x), torch.tensor([0]))
    p0 = 1 / (1 + math.exp(-1))                 # p_x = softmax([2, 1]) = [p0, 1 − p0]; p_e = [1 − p0, p0]
    kl = p0 * math.log(p0 / (1 - p0)) + (1 - p0) * math.log((1 - p0) / p0)   # = 2 p0 − 1 = 0.4621
    assert out["kl"].item() == pytest.approx(kl, rel=1e-5) and kl == pytest.approx(0.46211716)
    assert out["kl_norm"].item() == pytest.approx(kl / math.log(2), rel=1e-5)
    assert out["conf_change"].item() == pytest.approx((1 - p0) - p0, rel=1e-5)
    assert out["kept"].item() == 0.0 and out["p_x"].item() == pytest.approx(p0)


def test_all_ones_mask_gives_the_unmasked_score_and_ignored_pixels_change_nothing():
    w = torch.tensor([[[[1.0, 0.0], [2.0, 0.0]]]])           # pixels in column 1 are ignored
    model = PixelLogits(w)
    x = torch.tensor([[[[1.0, 5.0], [0.5, -3.0]]]])
    b = torch.zeros_like(x)
    ones = fidelity(model, x, torch.ones(1, 1, 2, 2), b, torch.tensor([0]))
    assert ones["kl"].item() == pytest.approx(0.0, abs=1e-7) and ones["conf_change"].item() == 0.0
    drop_ignored = fidelity(model, x, torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]), b, torch.tensor([0]))
    assert drop_ignored["kl"].item() == pytest.approx(0.0, abs=1e-7) and drop_ignored["kept"].item() == 1.0


def test_fidelity_is_batch_invariant_and_does_not_mutate_inputs():
    torch.manual_seed(0)
    model = PixelLogits(torch.randn(1, 1, 4, 4))
    x, m = torch.randn(7, 1, 4, 4), (torch.rand(7, 1, 4, 4) > 0.5).float()
    b, y = torch.zeros_like(x), torch.zeros(7, dtype=torch.long)
    x0, m0 = x.clone(), m.clone()
    a, c = fidelity(model, x, m, b, y, batch_size=2), fidelity(model, x, m, b, y, batch_size=256)
    for k in a:
        torch.testing.assert_close(a[k], c[k])
    assert torch.equal(x, x0) and torch.equal(m, m0)


def test_activation_similarity_is_one_for_the_whole_image_and_hand_computed_otherwise():
    model = PixelLogits(torch.ones(1, 1, 1, 2))
    x = torch.tensor([[[[3.0, 4.0]]]])
    assert activation_similarity(model, ["feat"], x, torch.ones(1, 1, 1, 2), torch.zeros_like(x)).item() == \
        pytest.approx(1.0)
    # keep pixel 0 only: cos([3, 4], [3, 0]) = 9 / (5 · 3) = 0.6
    sim = activation_similarity(model, ["feat"], x, torch.tensor([[[[1.0, 0.0]]]]), torch.zeros_like(x))
    assert sim.shape == (1, 1) and sim.item() == pytest.approx(0.6)


def test_pixel_ranks_order_by_value_and_break_ties_by_the_seeded_order():
    soft = torch.tensor([[[[0.9, 0.1], [0.5, 0.5]]]])
    r = pixel_ranks(soft, tie_seed=0)
    assert r[0, 0, 0, 0] == 0 and r[0, 0, 0, 1] == 3
    assert sorted(r.flatten().tolist()) == [0, 1, 2, 3]
    orders = {tuple(pixel_ranks(torch.full((1, 1, 2, 2), 0.5), s).flatten().tolist()) for s in range(10)}
    assert len(orders) > 1                                   # ties follow the seed ...
    assert torch.equal(pixel_ranks(soft, 3), pixel_ranks(soft, 3))  # ... deterministically
    two = torch.cat([soft, soft.flip(-1)])
    assert torch.equal(pixel_ranks(two, 0)[:1], r)           # batch composition does not matter


def test_top_fraction_masks_keep_exact_counts_per_image():
    ranks = pixel_ranks(torch.rand(3, 1, 4, 5, generator=torch.Generator().manual_seed(0)), 0)
    m = top_fraction_masks(ranks, torch.tensor([0.1, 0.5, 1.0]))
    assert m.flatten(1).sum(1).tolist() == [2.0, 10.0, 20.0]
    assert top_fraction_masks(ranks, 0.0).sum() == 0


def test_auc_normalized_trapezoid():
    assert auc(torch.full((1, 11), 0.3)).item() == pytest.approx(0.3)
    assert auc(torch.linspace(0, 1, 51)[None]).item() == pytest.approx(0.5)
    assert auc(torch.tensor([[1.0, 0.0, 0.0]])).item() == pytest.approx(0.25)   # (1+0)/2 · 1/2


def test_deletion_and_insertion_curves_by_hand():
    model = two_pixel_model()                                  # logits [x0, x1]
    x = torch.tensor([[[[2.0, 0.0]]]])
    ranks = pixel_ranks(torch.tensor([[[[1.0, 0.0]]]]), 0)     # pixel 0 first
    zeros = torch.zeros_like(x)
    dele, ins = deletion_insertion(model, x, ranks, zeros, zeros, torch.tensor([0]), steps=2)
    p0 = math.exp(2) / (math.exp(2) + 1)
    torch.testing.assert_close(dele, torch.tensor([[p0, 0.5, 0.5]]))   # remove pixel 0, then pixel 1
    torch.testing.assert_close(ins, torch.tensor([[0.5, p0, p0]]))     # insert pixel 0, then pixel 1


def test_area_and_crispness():
    assert area(torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])).item() == 0.25
    assert crispness(torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])).item() == pytest.approx(0.125)


def test_minimal_budget_is_the_smallest_budget_that_keeps_the_label():
    model = PixelLogits(torch.ones(1, 1, 1, 4))                # logits [sum x, 0.5]
    x = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])
    ranks = pixel_ranks(torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]]), 0)
    y = torch.tensor([0])
    assert minimal_budget(model, x, ranks, torch.zeros_like(x), y, (0.5, 0.25, 0.01)).item() == 0.25
    ranks_bad = pixel_ranks(torch.tensor([[[[0.0, 1.0, 1.0, 1.0]]]]), 0)  # pixel 0 ranked last
    assert minimal_budget(model, x, ranks_bad, torch.zeros_like(x), y, (0.5, 0.25)).item() == 1.0


def test_removable_patch_finds_a_droppable_piece():
    w = torch.zeros(1, 1, 5, 5)
    w[..., 0, 0] = 1.0                                         # class 0 needs pixel (0, 0) only
    model = PixelLogits(w)
    x = torch.ones(1, 1, 5, 5)
    y = torch.tensor([0])
    two = torch.zeros(1, 1, 5, 5)
    two[..., 0, 0] = 1.0
    two[..., 4, 4] = 1.0                                       # two pieces; (4, 4) can go
    assert removable_patch(model, x, two, torch.zeros_like(x), y).item() == 1.0
    one = torch.zeros(1, 1, 5, 5)
    one[..., 0, 0] = 1.0
    assert removable_patch(model, x, one, torch.zeros_like(x), y).item() == 0.0
    assert removable_patch(model, x, torch.zeros(1, 1, 5, 5), torch.zeros_like(x), y).item() == 0.0


def test_complement_flip_and_drop_by_hand():
    model = PixelLogits(torch.tensor([[[[1.0, 0.0]]]]))       # logits [x0, 0.5]
    x = torch.tensor([[[[1.0, 1.0]]]])
    out = complement_scores(model, x, torch.tensor([[[[1.0, 0.0]]]]), torch.zeros_like(x), torch.tensor([0]))
    sig = lambda t: 1 / (1 + math.exp(-t))                     # noqa: E731
    assert out["flip"].item() == 1.0
    assert out["drop"].item() == pytest.approx(sig(0.5) - sig(-0.5), rel=1e-5)   # 0.2449
    keep = complement_scores(model, x, torch.tensor([[[[0.0, 1.0]]]]), torch.zeros_like(x), torch.tensor([0]))
    assert keep["flip"].item() == 0.0 and keep["drop"].item() == pytest.approx(0.0, abs=1e-7)


def test_sufficiency_all_ones_mask_always_keeps_and_other_needs_two_labels():
    torch.manual_seed(0)
    model = PixelLogits(torch.randn(1, 1, 3, 3), bias=0.0)
    x = torch.randn(4, 1, 3, 3)
    y = model(x).argmax(1)
    if len(set(y.tolist())) < 2:
        x[0] = -x[0]
        y = model(x).argmax(1)
    out = sufficiency(model, x, torch.ones(4, 1, 3, 3), y, draws=3)
    assert all(torch.equal(v, torch.ones(4)) for v in out.values())
    # an empty mask leaves only the background: the uniform draws decide
    empty = sufficiency(model, x, torch.zeros(4, 1, 3, 3), y, kinds=("uniform",), draws=50, seed=1)["uniform"]
    assert 0.0 < empty.mean().item() < 1.0
    same = sufficiency(model, x, torch.ones(4, 1, 3, 3), torch.zeros(4, dtype=torch.long), kinds=("other",))
    assert same["other"].isnan().all()          # no image of another label: undefined, not an error


def test_pointing_game_and_iou_by_hand():
    soft = torch.zeros(2, 1, 4, 4)
    soft[0, 0, 1, 1] = 1.0                                     # inside the box
    soft[1, 0, 3, 3] = 1.0                                     # outside
    boxes = torch.tensor([[0, 0, 2, 3], [0, 0, 2, 3]])         # x0, y0, x1, y1: 2 wide, 3 tall
    assert pointing_game(pixel_ranks(soft, 0), boxes).tolist() == [1.0, 0.0]
    m = torch.zeros(1, 1, 4, 4)
    m[..., 0:2, 0:2] = 1.0                                     # 4 pixels, all inside the 6-pixel box
    assert iou_with_boxes(m, boxes[:1]).item() == pytest.approx(4 / 6)


def test_mean_ci_constant_nan_and_coverage():
    c = mean_ci(np.array([1.0, 1.0, np.nan]))
    assert c == {"mean": 1.0, "lo": 1.0, "hi": 1.0, "n": 2}
    v = np.random.default_rng(0).normal(5.0, 1.0, 400)
    ci = mean_ci(v, 1000, 0)
    assert ci["lo"] < 5.0 < ci["hi"] and ci["hi"] - ci["lo"] < 0.3 and ci["n"] == 400
    import pandas as pd
    agg = aggregate(pd.DataFrame({"method": ["a", "a", "b"], "kept": [1.0, 0.0, 1.0]}), ["kept"])
    assert agg["a"]["kept"]["mean"] == 0.5 and agg["b"]["kept"]["n"] == 1


def test_measure_returns_result_time_and_memory():
    out, ms, mb = measure(lambda: torch.ones(2000, 2000).sum())
    assert out.item() == 4_000_000 and ms > 0 and mb >= 0


def test_score_masks_columns_and_batch_invariance():
    torch.manual_seed(0)
    model = PixelLogits(torch.randn(1, 1, 6, 6), bias=0.0)
    x = torch.randn(5, 1, 6, 6)
    y = model(x).argmax(1)
    soft = torch.rand(5, 1, 6, 6)
    hard = (soft > 0.5).float()
    b = torch.zeros_like(x)
    boxes = torch.tensor([[0, 0, 3, 3]] * 5)
    a, ca = score_masks(model, ["feat"], x, y, soft, hard, b, b, ScoreSettings(batch_size=2, curve_steps=4), boxes)
    c, cc = score_masks(model, ["feat"], x, y, soft, hard, b, b, ScoreSettings(batch_size=64, curve_steps=4), boxes)
    for k in ("kept", "kl", "act_sim", "area", "p_star", "removable", "flip", "suff_other", "insertion_auc",
              "deletion_auc", "pointing", "iou"):
        assert a[k].shape == (5,) and np.allclose(a[k], c[k], atol=1e-6), k
    assert ca["deletion"].shape == (5, 5)
    ones, _ = score_masks(model, ["feat"], x, y, soft, torch.ones_like(hard), b, b, ScoreSettings(curve_steps=4))
    assert np.allclose(ones["kept"], 1.0) and np.allclose(ones["act_sim"], 1.0) and np.allclose(ones["kl"], 0.0)
