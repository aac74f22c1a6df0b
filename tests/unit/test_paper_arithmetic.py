"""The ``paper`` preset equals the authors' arithmetic (method.md §3, "The authors' exact arithmetic"),
term by term and in the gradient w.r.t. the soft mask, on a random-weight torchvision ResNet-18 at
224 px; and every activation distance gives a finite, non-zero gradient at every registered
classifier's default taps (vector and 1×1 taps included)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from actmatch.classifiers.registry import CLASSIFIERS, build_classifier, freeze
from actmatch.classifiers.small import SMALL_TAPS, build_small
from actmatch.classifiers.taps import tapped
from actmatch.config.base import read_params
from actmatch.config.explainer import LossConfig, resolve_preset
from actmatch.explainer import losses as L
from actmatch.explainer.objective import loss_terms, reference, weighted_total
from tests.conftest import ROOT

T = 2.0


def _paper() -> LossConfig:
    return LossConfig.model_validate(resolve_preset(read_params(ROOT / "params.yaml")["explainer"]["presets"], "paper"))


# --- an independent transcription of the authors' notebook (method.md §3); batch-mean scalars ---

def authors_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.reshape(a.shape[0], a.shape[1], -1), b.reshape(b.shape[0], b.shape[1], -1)  # (B, C, H·W)
    a, b = F.normalize(a, dim=1, eps=1e-8), F.normalize(b, dim=1, eps=1e-8)
    return 1 - (a * b).sum(dim=1).mean()


def authors_zmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    def z(t: torch.Tensor) -> torch.Tensor:
        return (t - t.mean(dim=(2, 3), keepdim=True)) / (t.std(dim=(2, 3), keepdim=True) + 1e-6)  # unbiased
    return ((z(a) - z(b)) ** 2).mean()


def authors_kl(z_e: torch.Tensor, z_x: torch.Tensor) -> torch.Tensor:
    return F.kl_div(F.log_softmax(z_e / T, dim=1), F.softmax(z_x / T, dim=1), reduction="batchmean") * T * T


def authors_tv(p: torch.Tensor) -> torch.Tensor:
    dv = (p[:, :, 1:, :] - p[:, :, :-1, :]).abs().mean()
    dh = (p[:, :, :, 1:] - p[:, :, :, :-1]).abs().mean()
    d1 = (p[:, :, 1:, 1:] - p[:, :, :-1, :-1]).abs().mean() / math.sqrt(2)
    d2 = (p[:, :, 1:, :-1] - p[:, :, :-1, 1:]).abs().mean() / math.sqrt(2)
    return dv + dh + d1 + d2


def authors_losses(model, x: torch.Tensor, p: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    names = ("relu", "layer1", "layer2", "layer3", "layer4")
    feats: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda mod, i, o, n=n: feats.__setitem__(n, o))
             for n in names]
    try:
        with torch.no_grad():
            z_x = model(x)
            a_x = [feats[n] for n in names]
        m = p + ((p > 0.5).float() - p).detach()
        z_e = model(m * x)
        a_e = [feats[n] for n in names]
    finally:
        for h in hooks:
            h.remove()
    act = (1 * authors_cosine(a_x[0], a_e[0]) + 2 * authors_cosine(a_x[1], a_e[1]) + 2 * authors_zmse(a_x[2], a_e[2])
           + 4 * authors_zmse(a_x[3], a_e[3]) + 8 * authors_zmse(a_x[4], a_e[4]))
    m_rob = (p > 0.5).float()
    backgrounds = [torch.zeros_like(x), torch.randn(x.shape, generator=g), torch.rand(x.shape, generator=g) * 2 - 1]
    rob = sum(authors_kl(model(m_rob * x + (1 - m_rob) * r), z_x) for r in backgrounds) / 3
    out = {"act": act, "ce": F.cross_entropy(z_e, z_x.argmax(1)), "kl": authors_kl(z_e, z_x), "area": p.mean(),
           "bin": (p * (1 - p)).mean(), "tv": authors_tv(p), "rob": rob}
    w = {"act": 10, "ce": 15, "kl": 5, "area": 100, "bin": 1, "tv": 500, "rob": 100}
    out["total"] = sum(w[k] * out[k] for k in w)
    return out


def test_paper_preset_is_the_authors_arithmetic():
    cfg = _paper()
    assert cfg.weights.model_dump() == dict(act=10, ce=15, kl=5, area=100, bin=1, tv=500, rob=100, nec=0)
    assert (cfg.temperature, cfg.act_distance, cfg.act_alphas[:5], cfg.rob_ste, cfg.rob_backgrounds, cfg.area_target) \
        == (T, "paper", [1, 2, 2, 4, 8], False, ["fill", "gaussian", "uniform"], None)
    torch.manual_seed(0)
    clf = build_classifier("resnet18")
    assert clf.taps == ("relu", "layer1", "layer2", "layer3", "layer4")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    logits = torch.randn(2, 1, 224, 224, generator=torch.Generator().manual_seed(2)) * 2
    grads = {}
    for side in ("ours", "authors"):
        p = torch.sigmoid(logits).requires_grad_(True)
        if side == "ours":  # fill normalized_zero: the baseline is 0, the authors' first background
            terms = loss_terms(clf.model, clf.taps, x, reference(clf.model, clf.taps, x), p, cfg, torch.zeros_like(x),
                               torch.Generator().manual_seed(3))
            total = weighted_total(terms, cfg).mean()
            ours = {k: v.mean() for k, v in terms.items()} | {"total": total}
        else:
            theirs = authors_losses(clf.model, x, p, torch.Generator().manual_seed(3))
            total = theirs["total"]
        total.backward()
        grads[side] = p.grad
    assert set(theirs) - {"total"} == set(ours) - {"area_hard", "kept", "total"}
    for k, v in theirs.items():
        assert ours[k].item() == pytest.approx(v.item(), rel=1e-4), k
        assert v.abs().item() > 1e-3, k  # every term is non-trivial
    g_o, g_a = grads["ours"], grads["authors"]
    assert g_a.abs().max() > 0
    assert ((g_o - g_a).norm() / g_a.norm()).item() < 1e-4
    torch.testing.assert_close(g_o, g_a, rtol=1e-4, atol=1e-4 * g_a.abs().max().item())


NETS = [(name, None) for name in CLASSIFIERS] + [(None, arch) for arch in SMALL_TAPS]  # registry at import


@pytest.mark.parametrize("name,arch", NETS, ids=[n or a for n, a in NETS])
def test_every_distance_has_a_finite_nonzero_gradient_at_every_default_tap(name, arch):
    torch.manual_seed(0)
    if name is not None:  # random weights, no download; 32 px makes the last conv tap a 1x1 map (one position)
        clf = build_classifier(name)
        model, taps, shape = clf.model, clf.taps, (1, clf.in_channels, 32, 32)
        if name == "vit_b_16":
            shape = (1, 3, 224, 224)  # torchvision's ViT takes 224 px only
    else:  # lenet's third tap is a vector (B, 84)
        model, taps, shape = freeze(build_small(arch, 1, 28, 10)), SMALL_TAPS[arch], (1, 1, 28, 28)
    x = torch.randn(shape)
    e = (0.5 * x + 0.5 * torch.randn_like(x)).requires_grad_(True)
    ref = reference(model, taps, x)
    with tapped(model, taps) as t:
        model(e)
        acts = t.ordered()
    for kind in L.DISTANCES:
        for ax, ae, tap in zip(ref.acts, acts, taps):  # each tap on its own: its gradient w.r.t. its activation
            leaf = ae.detach().requires_grad_(True)
            d = L.activation_distance(ax, leaf, kind)
            (g,) = torch.autograd.grad(d.sum(), leaf)
            assert torch.isfinite(d).all() and torch.isfinite(g).all() and g.abs().max() > 0, (kind, tap)
        total = sum(L.activation_distance(ax, ae, kind) for ax, ae in zip(ref.acts, acts)).sum()
        (g,) = torch.autograd.grad(total, e, retain_graph=True)
        assert torch.isfinite(g).all() and g.abs().max() > 0, kind
