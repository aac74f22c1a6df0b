"""Each loss term against a value computed by hand on a tiny tensor (method.md §3); gradients
reach the mask network and never the classifier; the authors' rob variant sends no gradient."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from actmatch.classifiers.registry import freeze
from actmatch.config.explainer import LossConfig
from actmatch.explainer import losses as L
from actmatch.explainer.objective import loss_terms, reference, weighted_total
from actmatch.classifiers.taps import tapped
from actmatch.explainer.unet import UNet
from actmatch.core.masks import apply_mask, fill_values, hard_mask, soft_mask

P = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])  # (1, 1, 2, 2)


def test_area_bin_tv_by_hand():
    assert L.area_loss(P).item() == pytest.approx(0.5)
    assert L.bin_loss(P).item() == pytest.approx((0 + 0 + 0.25 + 0.25) / 4)
    # vertical |0.5-0|,|0.5-1| -> 0.5; horizontal |1-0|,|0.5-0.5| -> 0.5
    assert L.tv_loss(P, 4).item() == pytest.approx(1.0)
    # diagonal |0.5-0| = 0.5, anti-diagonal |0.5-1| = 0.5 -> + (0.5 + 0.5)/sqrt(2)
    assert L.tv_loss(P, 8).item() == pytest.approx(1.0 + 1.0 / math.sqrt(2))
    assert L.tv_loss(torch.full((2, 1, 5, 7), 0.3), 8).tolist() == [0.0, 0.0]


def test_ce_and_tempered_kl_by_hand():
    z = torch.tensor([[0.0, math.log(3.0)]])
    assert L.ce_loss(z, torch.tensor([1])).item() == pytest.approx(math.log(4 / 3))
    z_x = torch.tensor([[0.0, 0.0]])
    z_e = torch.tensor([[0.0, 2 * math.log(3.0)]])  # at T = 2: p_e = (1/4, 3/4), p_x = (1/2, 1/2)
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert L.kl_loss(z_x, z_e, 2.0).item() == pytest.approx(4 * kl)
    assert L.kl_loss(z_e, z_e, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_activation_distances_by_hand():
    a_x = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # (1, C=2, 1, 2): positions (1,0), (0,1)
    a_e = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])  # positions (1,0), (1,0)
    assert L.activation_distance(a_x, a_e, "cosine").item() == pytest.approx(0.5)
    c1 = torch.tensor([[[[1.0, 3.0]]]])  # one channel over two positions: z-score (-1, 1)
    assert L.activation_distance(c1, c1 * 2 + 5, "zmse").item() == pytest.approx(0.0, abs=1e-6)
    assert L.activation_distance(c1, torch.tensor([[[[3.0, 1.0]]]]), "zmse").item() == pytest.approx(4.0, rel=1e-4)
    tx = torch.tensor([[[0.0, 0.0]]])  # tokens (B=1, N=1, C=2)
    te = torch.tensor([[[0.0, math.log(3.0)]]])
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert L.activation_distance(tx, te, "kl").item() == pytest.approx(kl)
    total = L.act_loss([a_x, tx], [a_e, te], ["cosine", "kl"], [2.0, 3.0])
    assert total.item() == pytest.approx(2 * 0.5 + 3 * kl)
    with pytest.raises(ValueError, match="allowed: cosine, zmse, kl"):
        L.activation_distance(a_x, a_e, "l2")


def test_nec_hinge_by_hand():
    z_x = torch.tensor([[5.0, 0.0], [5.0, 0.0]])
    z_c = torch.tensor([[4.5, 0.0], [3.0, 0.0]])
    assert L.nec_loss(z_x, z_c, torch.tensor([0, 0]), 1.0).tolist() == pytest.approx([0.5, 0.0])


def test_rob_backgrounds_and_fills():
    x = torch.randn(2, 3, 4, 4)
    g = torch.Generator().manual_seed(0)
    zero, gauss, unif = L.rob_backgrounds(x, ["zero", "gaussian", "uniform"], g)
    assert zero.abs().sum() == 0 and gauss.shape == x.shape and unif.min() >= -1 and unif.max() <= 1
    black = fill_values(x, "black", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert torch.allclose(black, torch.full_like(x, -1.0))
    assert torch.allclose(fill_values(x, "mean", (0,), (1,))[0, 1], x[0, 1].mean().expand(4, 4))
    assert fill_values(x, "normalized_zero", (0,), (1,)).abs().sum() == 0
    assert fill_values(x, "blur", (0,), (1,), blur_sigma=1.0).shape == x.shape
    with pytest.raises(ValueError, match="allowed: normalized_zero, black, blur, mean"):
        fill_values(x, "gray", (0,), (1,))


def test_hard_mask_ste():
    p = torch.tensor([0.2, 0.7], requires_grad=True)
    m = hard_mask(p, ste=True)
    assert m.tolist() == [0.0, 1.0]
    m.sum().backward()
    assert p.grad.tolist() == [1.0, 1.0]
    assert not hard_mask(p, ste=False).requires_grad
    e = apply_mask(torch.ones(1, 3, 1, 2), torch.tensor([[[[0.0, 1.0]]]]), torch.full((1, 3, 1, 2), -2.0))
    assert e[0, :, 0, 0].tolist() == [-2.0] * 3 and e[0, :, 0, 1].tolist() == [1.0] * 3


def test_unet_shapes_and_initial_area():
    net = UNet(3, widths=(8, 16), bottleneck=32, init_area=0.1)
    x = torch.randn(2, 3, 30, 27)  # not a multiple of 4: padded and cropped back
    p = soft_mask(net(x))
    assert p.shape == (2, 1, 30, 27) and 0.05 < p.mean().item() < 0.2
    assert UNet(1, widths=(8,), bottleneck=8).head.bias.item() == pytest.approx(0.0)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        return self.head(self.block2(self.block1(x)))


def _cfg(**weights) -> LossConfig:
    w = dict(act=0, ce=0, kl=0, area=0, bin=0, tv=0, rob=0, nec=0) | weights
    return LossConfig(weights=w, temperature=2.0, act_distance="paper", act_alphas=[1, 2, 2, 4, 8], tv_neighbours=8,
                      rob_backgrounds=["zero", "gaussian", "uniform"], rob_ste=True, nec_margin=1.0)


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    clf = freeze(Toy())
    net = UNet(1, widths=(4,), bottleneck=8)
    x = torch.randn(2, 1, 8, 8)
    ref = reference(clf, ("block1", "block2"), x)
    return clf, net, x, ref


def test_gradients_reach_mask_net_never_classifier(setup):
    clf, net, x, ref = setup
    cfg = _cfg(act=10, ce=15, kl=5, area=100, bin=1, tv=500, rob=100, nec=1)
    p = soft_mask(net(x))
    terms = loss_terms(clf, ("block1", "block2"), x, ref, p, cfg, torch.zeros_like(x), torch.Generator().manual_seed(0))
    assert set(terms) == {"act", "ce", "kl", "area", "bin", "tv", "rob", "nec", "area_hard", "kept"}
    assert all(t.shape == (2,) for t in terms.values())
    weighted_total(terms, cfg).mean().backward()
    assert all(q.grad is not None and torch.isfinite(q.grad).all() for q in net.parameters())
    assert any(q.grad.abs().sum() > 0 for q in net.parameters())
    assert all(q.grad is None for q in clf.parameters())


@pytest.mark.parametrize("ste,expect_grad", [(True, True), (False, False)])
def test_rob_gradient_only_with_ste(setup, ste, expect_grad):
    clf, net, x, ref = setup
    cfg = _cfg(rob=1).model_copy(update={"rob_ste": ste})
    p = soft_mask(net(x))
    p.retain_grad()
    terms = loss_terms(clf, ("block1", "block2"), x, ref, p, cfg, torch.zeros_like(x), torch.Generator().manual_seed(0))
    weighted_total(terms, cfg).sum().backward()
    # the authors' hard threshold makes the term a constant of the mask: exactly zero gradient
    assert (p.grad.abs().sum() > 0) == expect_grad


def test_reference_is_one_forward_with_taps_removed(setup):
    clf, _, x, ref = setup
    assert ref.logits.shape == (2, 3) and len(ref.acts) == 2 and ref.acts[0].shape == (2, 4, 8, 8)
    with tapped(clf, ["block1", "block2"]) as t:
        clf(x)
        clf(x)
    assert t.calls == {"block1": 2, "block2": 2}  # once per forward
    assert all(not m._forward_hooks for m in clf.modules())  # removed on exit
    with pytest.raises(KeyError, match="tap 'block9' is not a submodule"):
        with tapped(clf, ["block9"]):
            raise AssertionError("tapped() should have refused the unknown tap")
