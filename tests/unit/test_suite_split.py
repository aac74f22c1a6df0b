"""Issue 27: score_masks split into the soft map's ranking metrics and the hard mask's metrics, and the
unmasked forward pass computed once. Pure speed changes: every per-image value must be the same, bit for
bit, as the code before the change (kept below as a reference copy, on fixed inputs)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actmatch.classifiers.taps import tapped
from actmatch.core.masks import apply_mask
from actmatch.metrics.curves import auc, deletion_insertion, pixel_ranks, top_fraction_masks
from actmatch.metrics.fidelity import predict_logits, predict_proba
from actmatch.metrics.localization import iou_with_boxes, pointing_game
from actmatch.metrics.minimality import area, crispness, removable_patch
from actmatch.metrics.perturbation import sufficiency
from actmatch.metrics.suite import (ScoreSettings, clean_pass, combine, metric_columns, score_hard, score_masks,
                                    score_soft)


# ---- the reference: score_masks and the four functions it changed, as they were before issue 27 ----
def _old_fidelity(model, x, masks, baseline, y, batch_size):
    e = apply_mask(x, masks, baseline)
    zx, ze = predict_logits(model, x, batch_size), predict_logits(model, e, batch_size)
    lx, le = F.log_softmax(zx, 1), F.log_softmax(ze, 1)
    kl = (lx.exp() * (lx - le)).sum(1).clamp_min(0.0)
    px, pe = lx.exp().gather(1, y[:, None])[:, 0], le.exp().gather(1, y[:, None])[:, 0]
    others = lx.exp().scatter(1, y[:, None], float("-inf"))
    return {"kept": (ze.argmax(1) == zx.argmax(1)).float(), "kl": kl,
            "kl_norm": (kl / math.log(zx.shape[1])).clamp(max=1.0), "conf_change": pe - px,
            "p_ratio": pe / px, "p_x": px, "p_e": pe, "margin_x": px - others.max(1).values}


def _old_act_sim(model, taps, x, masks, baseline, batch_size):
    e = apply_mask(x, masks, baseline)
    out = []
    for i in range(0, len(x), batch_size):
        with tapped(model, taps) as t:
            model(x[i:i + batch_size])
            ax = [a.flatten(1) for a in t.ordered()]
            model(e[i:i + batch_size])
            ae = [a.flatten(1) for a in t.ordered()]
        out.append(torch.stack([F.cosine_similarity(a, b, dim=1, eps=1e-8) for a, b in zip(ax, ae)], 1))
    return torch.cat(out)


def _old_preservation(model, x, ranks, baseline, y, budgets, batch_size):
    px = predict_logits(model, x, batch_size).softmax(1).gather(1, y[:, None])[:, 0]
    out = {}
    best = torch.ones(len(x), dtype=x.dtype, device=x.device)
    for b in budgets:
        z = predict_logits(model, apply_mask(x, top_fraction_masks(ranks, b), baseline), batch_size)
        kept = z.argmax(1) == y
        out[f"kept@{b:g}"] = kept.to(x.dtype)
        out[f"p_ratio@{b:g}"] = z.softmax(1).gather(1, y[:, None])[:, 0] / px
        best = torch.where(kept, torch.minimum(best, torch.full_like(best, b)), best)
    out["p_star"] = best
    return out


def _old_complement(model, x, masks, baseline, y, batch_size):
    c = apply_mask(x, 1.0 - masks, baseline)
    px = predict_proba(model, x, batch_size).gather(1, y[:, None])[:, 0]
    pc = predict_proba(model, c, batch_size)
    return {"flip": (pc.argmax(1) != y).float(), "drop": px - pc.gather(1, y[:, None])[:, 0]}


@torch.no_grad()
def _old_score_masks(model, taps, x, y, soft, hard, baseline, blurred, cfg, boxes=None):
    bs = cfg.batch_size
    ranks = pixel_ranks(soft, cfg.seed)
    cols = dict(_old_fidelity(model, x, hard, baseline, y, bs))
    sim = _old_act_sim(model, taps, x, hard, baseline, bs)
    cols["act_sim"] = sim.mean(1)
    cols.update({f"act_sim_{i}": sim[:, i] for i in range(sim.shape[1])})
    cols["area"], cols["crispness"] = area(hard), crispness(soft)
    cols.update(_old_preservation(model, x, ranks, baseline, y, cfg.budgets, bs))
    cols["removable"] = removable_patch(model, x, hard, baseline, y, cfg.max_pieces, bs)
    cols.update(_old_complement(model, x, hard, baseline, y, bs))
    pixel_noise = x.shape[1] == 1 and cfg.mean is not None and cfg.std is not None
    suff = sufficiency(model, x, hard, y, draws=cfg.perturb_draws, seed=cfg.seed, batch_size=bs,
                       mean=cfg.mean if pixel_noise else None, std=cfg.std if pixel_noise else None)
    cols.update({f"suff_{k}": v for k, v in suff.items()})
    dele, ins = deletion_insertion(model, x, ranks, baseline, blurred, y, cfg.curve_steps, bs)
    cols["deletion_auc"], cols["insertion_auc"] = auc(dele), auc(ins)
    if boxes is not None:
        cols["pointing"], cols["iou"] = pointing_game(ranks, boxes), iou_with_boxes(hard, boxes)
    out = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in cols.items()}
    return out, {"deletion": dele.cpu().numpy(), "insertion": ins.cpu().numpy()}


class Net(nn.Module):
    """A small conv net with two taps and a linear head (real matmuls, so batching could show)."""

    def __init__(self, channels: int, classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block1 = nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 6 * 6, classes))

    def forward(self, x):
        return self.head(self.block2(self.block1(x)))


def _inputs(channels: int, n: int = 11):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, channels, 12, 12, generator=g)
    soft = torch.rand(n, 1, 12, 12, generator=g)
    soft[0] = 0.5                                   # a flat map: ties everywhere
    hard = (soft > 0.6).float()
    hard[1] = 0.0                                   # an empty mask
    hard[2] = 1.0                                   # a full one
    baseline = torch.full_like(x, -1.0)
    blurred = x * 0.3
    boxes = torch.tensor([[1, 1, 8, 9]] * n)
    return x, soft, hard, baseline, blurred, boxes


def test_split_scoring_is_bit_for_bit_the_old_score_masks():
    for channels, bs, mean in ((1, 4, (0.5,)), (3, 64, None)):
        model = Net(channels).eval()
        x, soft, hard, baseline, blurred, boxes = _inputs(channels)
        y = predict_logits(model, x).argmax(1)
        cfg = ScoreSettings(batch_size=bs, curve_steps=5, perturb_draws=2, budgets=(0.5, 0.1, 0.02), max_pieces=4,
                            seed=1, mean=mean, std=None if mean is None else (0.25,))
        old, old_curves = _old_score_masks(model, ["block1", "block2"], x, y, soft, hard, baseline, blurred, cfg, boxes)
        new, new_curves = score_masks(model, ["block1", "block2"], x, y, soft, hard, baseline, blurred, cfg, boxes)
        assert list(new) == list(old)                       # same columns, same order
        for k in old:
            np.testing.assert_array_equal(new[k], old[k], err_msg=k)   # NaN == NaN, otherwise exact
        for k in old_curves:
            np.testing.assert_array_equal(new_curves[k], old_curves[k])
        # the halves, called separately with one shared forward pass, give the same columns
        clean = clean_pass(model, ["block1", "block2"], x, cfg)
        soft_cols, _ = score_soft(model, x, y, soft, baseline, blurred, cfg, clean, boxes)
        both = combine(score_hard(model, ["block1", "block2"], x, y, hard, baseline, cfg, clean, boxes), soft_cols)
        assert list(both) == list(old) and all(np.array_equal(both[k], old[k], equal_nan=True) for k in old)


def test_the_clean_pass_runs_the_unmasked_images_once():
    """Before: f(x) ran in fidelity, activation_similarity, preservation and complement_scores (4 passes
    over the unmasked images); now once."""
    model = Net(1).eval()
    x, soft, hard, baseline, blurred, _ = _inputs(1)
    y = predict_logits(model, x).argmax(1)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, inp: seen.append(torch.equal(inp[0], x[: len(inp[0])])))
    try:
        score_masks(model, ["block1"], x, y, soft, hard, baseline, blurred,
                    ScoreSettings(batch_size=64, curve_steps=2, perturb_draws=1, budgets=(0.5,)))
    finally:
        hook.remove()
    assert sum(seen) == 1   # (the deletion curve's first point is x too, but batched with the insertion start)


def test_image_columns_are_not_metrics():
    cols = ["method", "seed", "id", "label", "y", "kept", "p_x", "p_e", "margin_x", "null_y", "trivial", "area"]
    assert metric_columns(cols) == ["kept", "area"]
