"""Each loss term against a value computed by hand on a tiny tensor (method.md §3); gradients
reach the mask network and never the classifier; the authors' rob variant sends no gradient."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from actmatch.classifiers.registry import freeze
from actmatch.check import check_params
from actmatch.config.explainer import LossConfig, LossWeights, UNetParams, explainer
from actmatch.core.errors import ParamsError
from actmatch.explainer import losses as L
from actmatch.explainer.objective import loss_terms, reference, weighted_total
from actmatch.explainer.train import LOGGED
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
    # unbiased std (the authors'): sqrt(2), so z = (-1, 1)/sqrt(2) against (1, -1)/sqrt(2): mean sq. diff 2
    assert L.activation_distance(c1, torch.tensor([[[[3.0, 1.0]]]]), "zmse").item() == pytest.approx(2.0, rel=1e-4)
    # one position (a vector tap, or a 1x1 map): z-score over channels, (-1, 0, 1) against (1, 0, -1)
    v = torch.tensor([[1.0, 2.0, 3.0]])
    assert L.activation_distance(v, v.flip(1), "zmse").item() == pytest.approx(8 / 3, rel=1e-4)
    one_by_one = L.activation_distance(v[..., None, None], v.flip(1)[..., None, None], "zmse")  # a 1x1 map
    assert one_by_one.item() == pytest.approx(8 / 3, rel=1e-4)
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


def test_area_target_ranking_constraint_by_hand():
    q = torch.tensor([[[[0.2, 0.9], [0.6, 0.1]]], [[[0.0, 1.0], [0.5, 0.5]]]])  # (2, 1, 2, 2)
    assert L.area_loss(q).tolist() == pytest.approx([0.45, 0.5])  # None: the paper's mean(p)
    # sorted (0.1, 0.2, 0.6, 0.9) against r_a with round(4a) ones at the end
    assert L.area_loss(q[:1], 0.25).item() == pytest.approx((0.1**2 + 0.2**2 + 0.6**2 + 0.1**2) / 4)  # (0,0,0,1)
    assert L.area_loss(q[:1], 0.5).item() == pytest.approx((0.1**2 + 0.2**2 + 0.4**2 + 0.1**2) / 4)  # (0,0,1,1)
    assert L.area_loss(q[:1], 0.75).item() == pytest.approx((0.1**2 + 0.8**2 + 0.4**2 + 0.1**2) / 4)  # (0,1,1,1)
    assert L.area_loss(q, 0.5).tolist() == pytest.approx([0.055, 0.125])  # per image
    assert L.area_loss(torch.tensor([[[[0.0, 0.0, 1.0, 0.0]]]]), 0.25).item() == 0.0  # a mask of that area


def test_rob_fill_background_is_the_baseline_and_draws_nothing():
    x, base = torch.randn(2, 3, 4, 4), torch.full((2, 3, 4, 4), -0.7)
    fill, gauss, unif = L.rob_backgrounds(x, ["fill", "gaussian", "uniform"], torch.Generator().manual_seed(0), base)
    _, gauss0, unif0 = L.rob_backgrounds(x, ["zero", "gaussian", "uniform"], torch.Generator().manual_seed(0))
    assert torch.equal(fill, base) and torch.equal(gauss, gauss0) and torch.equal(unif, unif0)
    assert torch.equal(gauss, torch.randn(x.shape, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="needs the run's fill values"):
        L.rob_backgrounds(x, ["fill"], None)
    with pytest.raises(ValueError, match="allowed: fill, zero, gaussian, uniform"):
        L.rob_backgrounds(x, ["pink"], None, base)


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
    assert UNet(1, widths=(8,), bottleneck=8, init_area=0.5).head.bias.item() == 0.0  # logit(0.5)
    # None: PyTorch's random default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 8 (the authors')
    biases = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        biases.append(UNet(1, widths=(8,), bottleneck=8, init_area=None).head.bias.item())
    assert all(0.0 < abs(b) <= 1 / math.sqrt(8) for b in biases) and biases[0] != biases[1]


def test_unet_mask_grid_averages_the_logits_per_cell_and_is_off_by_default():
    fine = UNet(1, widths=(4,), bottleneck=8, init_area=0.3)
    coarse = UNet(1, widths=(4,), bottleneck=8, init_area=0.3, grid=4)
    coarse.load_state_dict(fine.state_dict())
    x = torch.randn(1, 1, 8, 8)
    z = fine(x)
    # 8x8 logits in 4x4 cells: 2x2 cell means c, bilinear back to 8x8 (align_corners False): output pixel i
    # samples the cells at (i + 0.5) / 4 - 0.5, clamped to [0, 1]: pixels 0-1 are cell 0's mean, pixel 3 is
    # 0.625 of cell 0 and 0.375 of cell 1 along each axis
    c = z.view(2, 4, 2, 4).mean(dim=(1, 3))
    out = coarse(x)
    assert out.shape == (1, 1, 8, 8)
    torch.testing.assert_close(out[0, 0, :2, :2], c[0, 0].expand(2, 2))
    a, b = 0.625, 0.375
    torch.testing.assert_close(out[0, 0, 3, 3], a * a * c[0, 0] + a * b * (c[0, 1] + c[1, 0]) + b * b * c[1, 1])
    assert UNet(1, widths=(4,), bottleneck=8).grid == 1
    assert "grid" not in UNetParams(widths=[4], bottleneck=8, init_area=None).model_dump()  # old dumps unchanged
    assert UNetParams(widths=[4], bottleneck=8, init_area=None, grid=4).model_dump()["grid"] == 4


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


def test_every_preset_weighs_exactly_the_registered_terms_and_logged_follows_the_registry(params_dict):
    ex = explainer(params_dict)
    for name in ex.presets:
        assert list(L.check_weights(ex.loss(name).weights, name)) == list(L.TERMS)
    assert LOGGED == ("total", *L.TERMS, "area_hard", "kept")
    with pytest.raises(ParamsError, match=r"^p\.weights\.mass: not a registered loss term; registered: act, ce, "):
        L.check_weights({**dict.fromkeys(L.TERMS, 1.0), "mass": 1.0}, "p.weights")
    with pytest.raises(ParamsError, match=r"^p\.weights: no weight for loss term 'nec'"):
        L.check_weights({k: 1.0 for k in L.TERMS if k != "nec"}, "p.weights")


WEIGHTS = dict(act=2, ce=3, kl=5, area=7, bin=11, tv=13, rob=17, nec=19)  # distinct: a swapped weight fails


def test_loss_terms_and_total_equal_the_sum_by_hand(setup):
    clf, _, x, _ = setup
    with torch.no_grad():
        clf.head[2].weight.mul_(40.0)  # logits that move with the mask: no term is ~0
    x = x + torch.linspace(0, 1, 8)  # asymmetric input
    ref = reference(clf, ("block1", "block2"), x)
    p = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    base = torch.full_like(x, -0.3)
    cfg = _cfg(**WEIGHTS).model_copy(update={"rob_backgrounds": ["fill", "gaussian", "uniform"],
                                             "act_distance": "zmse", "nec_margin": 5.0})
    terms = loss_terms(clf, ("block1", "block2"), x, ref, p, cfg, base, torch.Generator().manual_seed(0))
    m = hard_mask(p)
    e = apply_mask(x, m, base)
    with tapped(clf, ["block1", "block2"]) as t:
        z_e = clf(e)
        acts = t.ordered()
    g = torch.Generator().manual_seed(0)
    bgs = [base, torch.randn(x.shape, generator=g), torch.rand(x.shape, generator=g) * 2 - 1]
    hand = {
        "act": (1 * L.activation_distance(ref.acts[0], acts[0], "zmse")
                + 2 * L.activation_distance(ref.acts[1], acts[1], "zmse")),
        "ce": L.ce_loss(z_e, ref.label), "kl": L.tempered_kl(ref.logits, z_e, 2.0), "area": p.mean(dim=(1, 2, 3)),
        "bin": L.bin_loss(p), "tv": L.tv_loss(p, 8),
        "rob": sum(L.tempered_kl(ref.logits, clf(apply_mask(x, m, r)), 2.0) for r in bgs) / 3,
        "nec": L.nec_loss(ref.logits, clf(apply_mask(x, 1 - m, base)), ref.label, 5.0),
    }
    assert set(terms) == set(hand) | {"area_hard", "kept"}
    for name, value in hand.items():
        torch.testing.assert_close(terms[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert len({round(v.sum().item(), 4) for v in hand.values()}) == len(hand)  # distinct values
    by_hand = sum(WEIGHTS[n] * hand[n] for n in hand)
    torch.testing.assert_close(weighted_total(terms, cfg), by_hand, rtol=1e-5, atol=1e-5)
    off = cfg.model_copy(update={"weights": LossWeights(**(WEIGHTS | {"act": 0, "rob": 0}))})
    assert set(loss_terms(clf, ("block1", "block2"), x, ref, p, off, base)) == set(hand) - {"act", "rob"} | {
        "area_hard", "kept"}


def test_a_registered_term_is_computed_batched_and_summed(setup, monkeypatch):
    clf, _, x, ref = setup
    monkeypatch.setattr(L, "TERMS", dict(L.TERMS))  # the registration is undone after the test
    seen = {}

    def toy_inputs(ctx):
        return [ctx.x, -ctx.x]  # classified after e, rob and nec, in registry order

    @L.term("toy", inputs=toy_inputs)
    def toy(ctx, z):
        seen["z"] = z
        return z[0].gather(1, ctx.ref.label[:, None])[:, 0] - z[1][:, 0]

    assert list(L.TERMS)[-1] == "toy"
    with pytest.raises(ValueError, match="already registered"):
        L.term("toy")(toy)
    p = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    base = torch.zeros_like(x)
    with pytest.raises(ParamsError, match="no weight for loss term 'toy'"):
        loss_terms(clf, ("block1", "block2"), x, ref, p, _cfg(ce=1), base)
    w = LossWeights(**WEIGHTS, toy=23)
    cfg = _cfg().model_copy(update={"weights": w})
    terms = loss_terms(clf, ("block1", "block2"), x, ref, p, cfg, base, torch.Generator().manual_seed(0))
    want = ref.logits.gather(1, ref.label[:, None])[:, 0] - clf(-x)[:, 0]
    torch.testing.assert_close(terms["toy"], want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(seen["z"][0], ref.logits, rtol=1e-5, atol=1e-5)
    without = loss_terms(clf, ("block1", "block2"), x, ref, p, cfg.model_copy(update={"weights": w.model_copy(
        update={"toy": 0.0})}), base, torch.Generator().manual_seed(0))
    assert "toy" not in without
    for name in WEIGHTS:  # the other terms are untouched by the extra inputs
        torch.testing.assert_close(terms[name], without[name], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weighted_total(terms, cfg), weighted_total(without, cfg) + 23 * terms["toy"])


def test_a_toy_term_added_through_the_registry_alone_is_validated_in_params_and_trains_one_step(setup, params_dict,
                                                                                               monkeypatch):
    """docs/extending.md's recipe for a loss term, whole: one function registered in the registry and its
    weight in params.yaml; nothing else is edited (no schema field, no list)."""
    clf, net, x, ref = setup
    monkeypatch.setattr(L, "TERMS", dict(L.TERMS))  # the registration is undone after the test

    @L.term("toy")
    def toy(ctx, z):
        return ctx.p.pow(2).mean(dim=(1, 2, 3))   # mean p² per image

    with pytest.raises(ParamsError, match=r"explainer\.presets\.paper\.weights: no weight for loss term 'toy'"):
        check_params(params_dict)                 # registered but not weighed: refused before any compute
    params_dict["explainer"]["presets"]["paper"]["weights"]["toy"] = 0.5   # the root preset; overlays inherit it
    params = check_params(params_dict)
    for name in params.explainer.presets:
        assert params.explainer.loss(name).weights.toy == 0.5
    typo = {**params_dict["explainer"]["presets"]["paper"]["weights"], "toyy": 1.0}
    params_dict["explainer"]["presets"]["paper"]["weights"] = typo
    with pytest.raises(ParamsError, match=r"explainer\.presets\.paper\.weights\.toyy: not a registered loss term"):
        check_params(params_dict)
    typo.pop("toyy")
    cfg = params.explainer.loss("paper").model_copy(update={"act_alphas": [1.0, 2.0], "rob_backgrounds": ["zero"]})
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    p = soft_mask(net(x))
    terms = loss_terms(clf, ("block1", "block2"), x, ref, p, cfg, torch.zeros_like(x), torch.Generator().manual_seed(0))
    torch.testing.assert_close(terms["toy"], p.detach().pow(2).mean(dim=(1, 2, 3)))
    rest = {k: v for k, v in terms.items() if k in L.TERMS and k != "toy"}
    total = weighted_total(terms, cfg)
    torch.testing.assert_close(total, weighted_total(rest, cfg) + 0.5 * terms["toy"])
    before = [q.detach().clone() for q in net.parameters()]
    total.mean().backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # one step moved the mask net


def test_no_grad_apart_classifies_rob_without_a_graph_and_keeps_the_values(setup, monkeypatch):
    """objective.NO_GRAD_APART: under rob_ste false the rob inputs (no gradient) go through the classifier in a
    batch of their own under no_grad; e and nec keep their graph. The values agree to float rounding (a
    convolution's summation on the CPU depends on its batch size), the gradient too."""
    from actmatch.explainer import objective as O

    clf, net, x, ref = setup
    cfg = _cfg(act=10, ce=15, kl=5, area=100, bin=1, tv=500, rob=100, nec=1).model_copy(update={"rob_ste": False})
    seen = []
    hook = clf.register_forward_hook(lambda m, i, o: seen.append((len(i[0]), torch.is_grad_enabled())))
    out = {}
    try:
        for apart in (False, True):
            monkeypatch.setattr(O, "NO_GRAD_APART", apart)
            net.zero_grad()
            terms = loss_terms(clf, ("block1", "block2"), x, ref, soft_mask(net(x)), cfg, torch.zeros_like(x),
                               torch.Generator().manual_seed(0))
            weighted_total(terms, cfg).sum().backward()
            out[apart] = ({k: v.detach() for k, v in terms.items()}, [q.grad.clone() for q in net.parameters()])
    finally:
        hook.remove()
    # one batch of e, 3 rob backgrounds and nec (5 x 2 images); apart: e + nec with a graph, the 6 rob without
    assert seen == [(10, True), (4, True), (6, False)]
    for k, v in out[False][0].items():
        assert torch.allclose(out[True][0][k], v, rtol=1e-5, atol=1e-6), k
    for a, b in zip(out[True][1], out[False][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
