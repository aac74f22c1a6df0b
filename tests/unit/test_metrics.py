"""Every metric of method.md §5 against values computed by hand on tiny tensors, plus the
invariances (batch size, inputs untouched, all-ones mask = unmasked score)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from actmatch.metrics.minimality import BUDGETS
from actmatch.metrics import (activation_similarity, area, auc, complement_scores, crispness, deletion_insertion,
                              fidelity, iou_with_boxes, minimal_budget, pixel_ranks, pointing_game, removable_patch,
                              score_masks, sufficiency, top_fraction_masks, METRICS, ScoreSettings)
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


def test_margin_x_is_the_target_minus_the_runner_up_on_the_original_image():
    """Three classes, logits = the three pixels. Image 1: x = [ln 5, ln 3, ln 2] → p_x = [.5, .3, .2]:
    margin for y = 0 is .5 − .3 = .2; for y = 2 (not the argmax) .2 − .5 = −.3. The mask does not enter."""
    model = two_pixel_model()
    x = torch.log(torch.tensor([[[[5.0, 3.0, 2.0]]], [[[5.0, 3.0, 2.0]]]]))
    out = fidelity(model, x, torch.tensor([[[[1.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0]]]]), torch.zeros_like(x),
                   torch.tensor([0, 2]))
    assert out["margin_x"].tolist() == pytest.approx([0.2, -0.3], abs=1e-6)
    assert out["p_x"].tolist() == pytest.approx([0.5, 0.2], abs=1e-6)


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


def test_a_mask_that_loses_the_label_is_never_removable():
    w = torch.zeros(1, 1, 5, 5)
    w[..., 0, 0], w[..., 2, 2], w[..., 4, 4] = 1.0, 1.0, -1.0  # (4, 4) is counter-evidence for class 0
    model = PixelLogits(w)                                     # logits [x00 + x22 − x44, 0.5]: on ones, 1 → class 0
    x, y, b = torch.ones(1, 1, 5, 5), torch.tensor([0]), torch.zeros(1, 1, 5, 5)
    both = torch.zeros(1, 1, 5, 5)
    both[..., 0, 0] = both[..., 4, 4] = 1.0                    # keeps (0, 0) and (4, 4), drops (2, 2): logit 0 → lost
    assert model(x).argmax(1).item() == 0 and fidelity(model, x, both, b, y)["kept"].item() == 0.0
    # dropping the piece at (4, 4) would give the label back, but the mask never was sufficient
    assert removable_patch(model, x, both, b, y).item() == 0.0
    w[..., 2, 2], w[..., 4, 4] = 0.0, 0.0                      # now the mask keeps the label and (4, 4) can go
    assert removable_patch(PixelLogits(w), x, both, b, y).item() == 1.0


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


def test_pointing_game_and_iou_tell_x_from_y():
    """Boxes are (x0, y0, x1, y1) = (column, row, ...): a transposed reading gives other answers."""
    soft = torch.zeros(2, 1, 4, 6)
    soft[0, 0, 0, 3] = 1.0                                     # row 0, column 3: inside (x 2–3, y 0)
    soft[1, 0, 3, 0] = 1.0                                     # row 3, column 0: inside the transposed box only
    boxes = torch.tensor([[2, 0, 4, 1], [2, 0, 4, 1]])         # columns 2–3 of row 0
    assert pointing_game(pixel_ranks(soft, 0), boxes).tolist() == [1.0, 0.0]
    m = torch.zeros(1, 1, 4, 6)
    m[..., 0, 1:4] = 1.0                                       # row 0, columns 1–3: 2 of 3 inside the 2-pixel box
    assert iou_with_boxes(m, boxes[:1]).item() == pytest.approx(2 / 3)
    assert iou_with_boxes(m.transpose(-1, -2).contiguous(), torch.tensor([[0, 2, 1, 4]])).item() == \
        pytest.approx(2 / 3)                                   # the same picture transposed, with its box


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


def test_mean_ci_is_a_95_percent_interval():
    """On a large normal sample the percentile bootstrap's width is 2 · 1.96 · SE (a 90 % interval
    would be 16 % narrower, a 99 % one 31 % wider)."""
    v = np.random.default_rng(1).normal(3.0, 2.0, 4000)
    se = v.std(ddof=1) / np.sqrt(len(v))
    ci = mean_ci(v, 4000, 0)
    assert (ci["hi"] - ci["lo"]) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.1)
    assert ci["lo"] < v.mean() < ci["hi"] and ci["mean"] == pytest.approx(v.mean())


def test_stored_float32_soft_maps_rank_their_hard_masks_first(tmp_path):
    """masks.npz layout (explainer/outputs.py): soft float32 and hard = soft > 0.5, (N, H, W). The top-``area``
    pixels of the stored soft map are exactly the stored hard mask — what scoring our masks assumes."""
    rng = np.random.default_rng(0)
    soft = rng.uniform(0, 1, (4, 24, 32))
    soft[0, :5] = 1.0                                          # saturated ties inside the mask ...
    soft[1] = 0.0                                              # ... an empty mask, exact 0.5s outside
    soft[2, 0, :4] = [0.5, 0.5 + 1e-4, 0.5, 0.5 - 1e-4]
    soft[3] = 1.0                                              # a full mask
    soft32 = soft.astype(np.float32)
    np.savez_compressed(tmp_path / "masks.npz", ids=np.array(["a", "b", "c", "d"]), x_soft=soft32, x_hard=soft32 > 0.5)
    with np.load(tmp_path / "masks.npz") as z:
        s, h = torch.from_numpy(z["x_soft"])[:, None], torch.from_numpy(z["x_hard"])[:, None]
    assert s.dtype == torch.float32 and h.dtype == torch.bool
    for seed in (0, 7):
        top = top_fraction_masks(pixel_ranks(s, seed), h.float().mean((1, 2, 3)))
        assert torch.equal(top.bool(), h)
    # float16 would break it: 0.5 + 1e-4 becomes 0.5, a tie outside the mask, while the hard mask keeps it
    assert not bool(torch.from_numpy(soft32.astype(np.float16))[2, 0, 1] > 0.5) and bool(h[2, 0, 0, 1])


def test_measure_returns_result_time_and_memory():
    out, ms, mb = measure(lambda: torch.ones(2000, 2000).sum())
    assert out.item() == 4_000_000 and ms > 0 and mb >= 0


def test_score_masks_batch_invariance():
    torch.manual_seed(0)
    model = PixelLogits(torch.randn(1, 1, 6, 6), bias=0.0)
    x = torch.randn(5, 1, 6, 6)
    y = model(x).argmax(1)
    soft = torch.rand(5, 1, 6, 6)
    hard = (soft > 0.5).float()
    b, blurred = torch.zeros_like(x), torch.full_like(x, 0.3)     # distinct removal and insertion starts
    boxes = torch.tensor([[0, 0, 3, 3]] * 5)
    a, ca = score_masks(model, ["feat"], x, y, soft, hard, b, blurred, ScoreSettings(batch_size=2, curve_steps=4),
                        boxes)
    c, cc = score_masks(model, ["feat"], x, y, soft, hard, b, blurred, ScoreSettings(batch_size=64, curve_steps=4),
                        boxes)
    budgets = {f"{k}@{b:g}" for b in BUDGETS for k in ("kept", "p_ratio")}
    assert set(a) == set(METRICS) | {"p_x", "p_e", "margin_x", "act_sim_0"} | budgets
    for k in a:
        assert a[k].shape == (5,) and np.allclose(a[k], c[k], atol=1e-6, equal_nan=True), k
    assert ca["deletion"].shape == (5, 5) and np.allclose(ca["insertion"], cc["insertion"])
    ones, _ = score_masks(model, ["feat"], x, y, soft, torch.ones_like(hard), b, blurred, ScoreSettings(curve_steps=4))
    assert np.allclose(ones["kept"], 1.0) and np.allclose(ones["act_sim"], 1.0) and np.allclose(ones["kl"], 0.0)


# ---------------------------------------------------------------------------------------------------------------
# score_masks on a toy whose every number follows by hand. A 6 × 10 one-channel image; three pixels matter:
#   E1 = (row 1, col 7) and E2 = (4, 8) add to logit 0, N = (4, 1) subtracts; logit 1 is 2.5.
#   Every other pixel ("O") is ignored unless one of them exceeds 1 in magnitude: then logit 0 loses 100
#   (so N(0, 1) noise on the ~50 O pixels always trips it, U(−1, 1) never does).
# Image 0: E1 = E2 = 2, N = 1, O = 0.5 → logits [3, 2.5], y = 0.  Image 1: E = 0, N = 1 → [−1, 2.5], y = 1.
# Removal fill −0.5 everywhere; the blurred image (insertion start) is O 0.9, E1 = E2 = 1, N = 0.
# Every value below changes if insertion/deletion, fill/blur, hard/soft or box x/y are swapped.
E1, E2, N = (1, 7), (4, 8), (4, 1)


class ThreePixels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Identity()
        w = torch.zeros(1, 1, 6, 10)
        w[..., E1[0], E1[1]], w[..., E2[0], E2[1]], w[..., N[0], N[1]] = 1.0, 1.0, -1.0
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.feat(x)
        other = (v.abs() * (self.w == 0)).flatten(1).amax(1)
        z0 = (v * self.w).flatten(1).sum(1) - 100.0 * (other > 1.0).to(v.dtype)
        return torch.stack([z0, torch.full_like(z0, 2.5)], 1)


def _toy():
    x = torch.full((2, 1, 6, 10), 0.5)
    for img, e in ((0, 2.0), (1, 0.0)):
        x[img, 0, E1[0], E1[1]] = x[img, 0, E2[0], E2[1]] = e
        x[img, 0, N[0], N[1]] = 1.0
    baseline = torch.full_like(x, -0.5)
    blurred = torch.full_like(x, 0.9)
    blurred[:, 0, E1[0], E1[1]] = blurred[:, 0, E2[0], E2[1]] = 1.0
    blurred[:, 0, N[0], N[1]] = 0.0
    soft = torch.zeros(2, 1, 6, 10)
    soft[0, 0] = torch.linspace(0.45, 0.01, 60).view(6, 10)          # distinct values below 0.5 ...
    soft[1, 0] = torch.linspace(0.45, 0.03, 60).view(6, 10)
    top0 = {E1: 0.95, (0, 7): 0.9, (1, 6): 0.85, (5, 8): 0.8, E2: 0.7, (2, 7): 0.6, N: 0.0}   # ... and the mask
    for (r, c), v in top0.items():
        soft[0, 0, r, c] = v
    soft[1, 0, N[0], N[1]], soft[1, 0, E1[0], E1[1]], soft[1, 0, E2[0], E2[1]] = 0.9, 0.02, 0.01
    boxes = torch.tensor([[6, 0, 9, 3], [0, 3, 3, 6]])   # (x0, y0, x1, y1): cols 6–8 × rows 0–2; cols 0–2 × rows 3–5
    return x, baseline, blurred, soft, (soft > 0.5).float(), boxes


def _sig(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def _kl2(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_score_masks_every_column_by_hand():
    model = ThreePixels()
    x, baseline, blurred, soft, hard, boxes = _toy()
    y = model(x).argmax(1)
    assert y.tolist() == [0, 1] and hard.flatten(1).sum(1).tolist() == [6.0, 1.0]
    cols, curves = score_masks(model, ["feat"], x, y, soft, hard, baseline, blurred,
                               ScoreSettings(batch_size=3, curve_steps=4), boxes)
    s = _sig
    # fidelity: e0 keeps E1, E2 and drops N (→ −0.5): logit 4.5; e1 keeps N only: E → −0.5, logit −2
    px, pe = [s(0.5), s(3.5)], [s(2.0), s(4.5)]
    kl = [_kl2(px[0], pe[0]), _kl2(px[1], pe[1])]
    # activation cosine, tap = the image: dot products and norms of x and e over the 60 pixels
    cos = [(4 * 0.25 - 53 * 0.25 + 4 + 4 - 0.5) / math.sqrt((57 * 0.25 + 9) * (57 * 0.25 + 8.25)),
           (-57 * 0.25 + 1) / math.sqrt((57 * 0.25 + 1) * (59 * 0.25 + 1))]
    # deletion (top pixels → −0.5; N is ranked last on image 0, E1/E2 last on image 1) and insertion (from blurred)
    dele = [[s(0.5), s(-4.5), s(-4.5), s(-4.5), s(-3.0)], [s(3.5), s(2.0), s(2.0), s(2.0), s(3.0)]]
    ins = [[s(-0.5), s(1.5), s(1.5), s(1.5), s(0.5)], [s(0.5), s(1.5), s(1.5), s(1.5), s(3.5)]]
    trap = lambda c: (c[0] + 2 * sum(c[1:-1]) + c[-1]) / 8         # noqa: E731
    expect = {
        "kept": [1.0, 1.0], "p_x": px, "p_e": pe, "margin_x": [2 * px[0] - 1, 2 * px[1] - 1],   # two classes
        "kl": kl, "kl_norm": [k / math.log(2) for k in kl],
        "conf_change": [pe[0] - px[0], pe[1] - px[1]], "p_ratio": [pe[0] / px[0], pe[1] / px[1]],
        "act_sim": cos, "act_sim_0": cos, "area": [0.1, 1 / 60],
        "crispness": (soft * (1 - soft)).mean((1, 2, 3)).tolist(),
        # top-3 of image 0 (E1 + two O) give logit 2 < 2.5; top-6 (+ E2) 4.5. Image 1: N alone keeps y = 1
        "p_star": [0.1, 0.01],
        # image 0: dropping either piece ({E1 + 3 O} or {E2 + O}) leaves logit 2; image 1: dropping N keeps y = 1
        "removable": [0.0, 1.0],
        # complements: image 0 keeps only N and O → logit −2; image 1 loses N → logit 0.5
        "flip": [1.0, 0.0], "drop": [s(0.5) - s(-4.5), s(3.5) - s(2.0)],
        # normalized noise: N(0, 1) trips the O-pixel penalty, U(−1, 1) never does; "other" = the other image
        "suff_gaussian": [0.0, 1.0], "suff_uniform": [1.0, 1.0], "suff_other": [1.0, 0.0],
        "deletion_auc": [trap(c) for c in dele], "insertion_auc": [trap(c) for c in ins],
        "pointing": [1.0, 1.0], "iou": [4 / 11, 1 / 9],
    }
    # the preservation curve (budgets 50 … 1 % of 60 pixels = 30 … 1): image 0 needs E1 and E2 (top-5), so it
    # keeps y down to 10 % (6 px) and loses it at 5 % (3 px: E1 only, logit 2 < 2.5); image 1's N is its top pixel
    for i, b in enumerate(BUDGETS):
        expect[f"kept@{b:g}"] = [1.0 if b >= 0.1 else 0.0, 1.0]
        expect[f"p_ratio@{b:g}"] = [(s(2.0) if b >= 0.1 else s(-0.5)) / px[0], s(4.5) / px[1]]
    assert set(cols) == set(expect)
    for k, v in expect.items():
        np.testing.assert_allclose(cols[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(curves["deletion"], dele, rtol=1e-5)
    np.testing.assert_allclose(curves["insertion"], ins, rtol=1e-5)
    # single-channel data with the classifier's mean/std: noise drawn in pixel space. With mean = std = 0.5
    # pixel noise in [0, 1] is [−1, 1] normalized, so the Gaussian no longer trips the penalty
    pix, _ = score_masks(model, ["feat"], x, y, soft, hard, baseline, blurred,
                         ScoreSettings(curve_steps=4, mean=(0.5,), std=(0.5,)), boxes)
    assert pix["suff_gaussian"].tolist() == [1.0, 1.0] and pix["suff_uniform"].tolist() == [1.0, 1.0]
    assert all(np.array_equal(pix[k], cols[k]) for k in cols if k not in ("suff_gaussian", "suff_uniform"))


def test_sufficiency_draws_pixel_space_noise_when_given_mean_and_std():
    seen: list[torch.Tensor] = []

    def record(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return torch.zeros(len(x), 2)

    x, y, empty = torch.zeros(2, 1, 16, 16), torch.tensor([0, 1]), torch.zeros(2, 1, 16, 16)
    mean, std = (0.13,), (0.31,)
    sufficiency(record, x, empty, y, draws=4, mean=mean, std=std)
    g, u = torch.cat(seen[:4]) * 0.31 + 0.13, torch.cat(seen[4:8]) * 0.31 + 0.13   # back to pixels
    assert g.min() >= -1e-6 and g.max() <= 1 + 1e-6 and u.min() >= -1e-6 and u.max() <= 1 + 1e-6
    assert g.mean().item() == pytest.approx(0.5, abs=0.02) and g.std().item() == pytest.approx(0.245, abs=0.02)
    assert u.mean().item() == pytest.approx(0.5, abs=0.02) and u.std().item() == pytest.approx(12 ** -0.5, abs=0.02)
    other_pixel = torch.cat(seen[8:])
    seen.clear()
    sufficiency(record, x, empty, y, draws=4)                          # normalized space: N(0, 1), U(−1, 1)
    assert torch.cat(seen[:4]).std().item() == pytest.approx(1.0, abs=0.05) and torch.cat(seen[4:8]).min() >= -1
    assert torch.equal(torch.cat(seen[8:]), other_pixel)              # the same generator stream either way
    with pytest.raises(ValueError, match="both mean and std"):
        sufficiency(record, x, empty, y, mean=mean)
    with pytest.raises(ValueError, match="one value per channel"):
        sufficiency(record, x, empty, y, mean=(0.5,) * 3, std=(0.5,) * 3)
