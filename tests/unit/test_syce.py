"""SyCE / CyCE (method.md §8.1): each loss term against a hand-computed value, the models' routing
and ranges, and gradients reaching the generators but never the frozen classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actmatch.syce import losses as L
from actmatch.syce.models import CEDiscriminator, CEGenerator, Conditioned, PerClass
from actmatch.classifiers.registry import freeze
from actmatch.classifiers.small import MnistCNN

W = L.SyceWeights(adv=0.2, rec_same=10, rec_other=2, cls_same=0.01, cls_other=0.005, rec_cycle=10, cls_cycle=0.005,
                gan=0.25, gp=1.0)


def test_reconstruction_is_mse_plus_mae():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]])
    assert L.reconstruction(a, b).item() == pytest.approx((1 + 9) / 4 + (1 + 3) / 4)


def test_binary_logits_zero_z_make_cross_entropy_the_authors_bce():
    z = torch.tensor([0.7, -1.2, 3.0])
    y = torch.tensor([1, 0, 0])
    ce = L.classification(torch.stack([torch.zeros_like(z), z], 1), y)
    bce = F.binary_cross_entropy_with_logits(z, y.float())
    assert ce.item() == pytest.approx(bce.item(), abs=1e-6)


def test_targets_are_top_class_and_runner_up():
    c, t = L.targets(torch.tensor([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]]))
    assert c.tolist() == [1, 0] and t.tolist() == [2, 2]
    c, t = L.targets(torch.tensor([[0.0, 2.0], [0.0, -2.0]]))  # binary: t = 1 - c
    assert c.tolist() == [1, 0] and t.tolist() == [0, 1]


# Hand-checkable pieces: G inverts the image whatever the classes, D scores mean + class,
# f is binary with z = 10 (mean - 0.5).
def _G(x, c, t):
    return 1 - x


def _D(x, k):
    return x.mean((1, 2, 3)) + k.float()


def _f(x):
    z = 10 * (x.mean((1, 2, 3)) - 0.5)
    return torch.stack([torch.zeros_like(z), z], 1)


@pytest.mark.parametrize("variant", ["syce", "cyce"])
def test_generator_terms_by_hand(variant):
    x = torch.full((2, 1, 4, 4), 0.2)
    c, t = L.targets(_f(x))
    assert c.tolist() == [0, 0] and t.tolist() == [1, 1]
    terms, imgs = L.generator_terms(variant, _G, _D, _f, x, c, t)
    small = math.log1p(math.exp(-3))  # CE of logits (0, 3) toward 1, and of (0, -3) toward 0
    assert terms["adv"].item() == pytest.approx(small, rel=1e-5)
    assert terms["gan"].item() == pytest.approx(-(0.8 + 1))
    assert torch.allclose(imgs["x_a"], torch.full_like(x, 0.8)) and torch.allclose(imgs["x_st"], x)
    if variant == "syce":
        assert set(terms) == {"adv", "gan", "rec_same", "rec_other", "cls_same", "cls_other"}
        assert terms["rec_same"].item() == pytest.approx(0, abs=1e-6) and terms["rec_other"].item() == pytest.approx(0, abs=1e-6)
        assert terms["cls_same"].item() == pytest.approx(small, rel=1e-5)
        want = 0.2 * small + 0.01 * small + 0.005 * small - 0.25 * 1.8
    else:
        assert set(terms) == {"adv", "gan", "rec_cycle", "cls_cycle"}
        want = 0.2 * small + 0.005 * small - 0.25 * 1.8
    assert L.weighted(terms, W).item() == pytest.approx(want, rel=1e-5)
    e = L.explanation(variant, x, imgs["x_a"], imgs["x_st"])
    assert e.shape == (2, 1, 4, 4) and torch.allclose(e, torch.full_like(e, 0.6))


def test_syce_and_cyce_maps_differ_when_the_stable_image_is_not_the_input():
    x = torch.zeros(1, 3, 2, 2)
    x_a, x_st = torch.full_like(x, 0.5), torch.full_like(x, 0.25)
    assert L.explanation("syce", x, x_a, x_st).flatten().tolist() == [0.25] * 4
    assert L.explanation("cyce", x, x_a, x_st).flatten().tolist() == [0.5] * 4
    with pytest.raises(ValueError, match="'syce' or 'cyce'"):
        L.explanation("glance", x, x_a, x_st)


def test_gradient_penalty_of_a_linear_critic():
    w = torch.full((1, 1, 2, 2), 0.5)  # ‖∇‖ = sqrt(4 · 0.25) = 1 → penalty 0
    real, fake, k = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2), torch.zeros(3, dtype=torch.long)
    assert L.gradient_penalty(lambda x, _: (w * x).sum((1, 2, 3)), real, fake, k).item() == pytest.approx(0, abs=1e-10)
    w2 = 2 * w  # ‖∇‖ = 2 → (2 - 1)² = 1
    assert L.gradient_penalty(lambda x, _: (w2 * x).sum((1, 2, 3)), real, fake, k).item() == pytest.approx(1.0)


def test_match_reals_pairs_same_class_or_marks_missing():
    idx = L.match_reals(torch.tensor([0, 1, 1]), torch.tensor([1, 1, 2, 0]), torch.Generator().manual_seed(0))
    assert idx[0].item() in (1, 2) and idx[1].item() in (1, 2) and idx[2].item() == -1 and idx[3].item() == 0


def test_critic_loss_by_hand_and_without_any_real():
    x = torch.tensor([0.1, 0.9]).view(2, 1, 1, 1).expand(2, 1, 2, 2).contiguous()
    c = torch.tensor([0, 1])
    x_a = torch.full_like(x, 0.3)
    t = torch.tensor([1, 1])
    w = torch.full((1, 1, 2, 2), 0.5)
    loss, parts = L.critic_loss(lambda z, k: (w * z).sum((1, 2, 3)) + k, x, c, x_a, t, gp_weight=1.0)
    # fakes score 4·0.5·0.3 + 1 = 1.6; the only class-1 real scores 4·0.5·0.9 + 1 = 2.8; penalty 0
    assert parts["d_fake"] == pytest.approx(1.6) and parts["d_real"] == pytest.approx(2.8)
    assert loss.item() == pytest.approx(1.6 - 2.8, abs=1e-6)
    loss, parts = L.critic_loss(lambda z, k: z.sum((1, 2, 3)), x, torch.tensor([0, 0]), x_a, t, gp_weight=1.0)
    assert loss.item() == 0 and parts["gp"] == 0


def test_generator_range_shape_and_discriminator_shape():
    torch.manual_seed(0)
    g = CEGenerator(1, 1)
    y = g(torch.rand(3, 1, 28, 28) * 4 - 2)
    assert y.shape == (3, 1, 28, 28) and y.min() >= 0 and y.max() <= 1
    assert CEDiscriminator(1, 28)(torch.rand(5, 1, 28, 28)).shape == (5,)


class _Const(nn.Module):
    def __init__(self, v: float) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.tensor(v))

    def forward(self, x):
        return x * 0 + self.v


def test_per_class_routes_each_sample_and_conditioned_appends_one_hot():
    pc = PerClass([_Const(0.0), _Const(1.0)])
    out = pc(torch.rand(4, 1, 2, 2), torch.tensor([1, 0, 0, 1]))
    assert out[:, 0, 0, 0].tolist() == [1.0, 0.0, 0.0, 1.0]
    out.sum().backward()
    assert pc.nets[0].v.grad.item() == 8 and pc.nets[1].v.grad.item() == 8  # 2 samples × 4 pixels each
    cond = Conditioned(nn.Identity(), 3)
    y = cond(torch.zeros(2, 1, 2, 2), torch.tensor([2, 0]))
    assert y.shape == (2, 4, 2, 2) and y[0, 3].eq(1).all() and y[0, 1:3].eq(0).all() and y[1, 1].eq(1).all()


@pytest.mark.parametrize("variant", ["syce", "cyce"])
def test_generators_get_gradients_and_the_frozen_classifier_none(variant):
    torch.manual_seed(0)
    gens = PerClass([CEGenerator(1, 1), CEGenerator(1, 1)])
    crit = PerClass([CEDiscriminator(1, 28), CEDiscriminator(1, 28)])
    model = freeze(MnistCNN(num_classes=2))
    f = L.PixelClassifier(model, (0.1307,), (0.3081,))
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        c, t = L.targets(f(x))
    terms, _ = L.generator_terms(variant, lambda z, a, b: gens(z, a), crit, f, x, c, t)
    L.weighted(terms, W).backward()
    used = {int(k) for k in torch.cat([c, t]).unique()}
    for k in used:
        grads = [p.grad for p in gens.nets[k].parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.parameters())


class _LeftRight(nn.Module):
    """A frozen binary classifier on 8×8 images: z = 10 (mean of the left half − mean of the right half)."""

    def forward(self, x):
        z = 10 * (x[..., :4].mean((1, 2, 3)) - x[..., 4:].mean((1, 2, 3)))
        return torch.stack([torch.zeros_like(z), z], 1)


def _toy_set(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    x[: n // 2, ..., :4] += 0.6
    x[n // 2:, ..., 4:] += 0.6
    return x


def _cfg(**kw):
    from actmatch.syce.train import SyceTrainConfig

    base = dict(kind="binary", g_widths=(4, 8), d_widths=(4, 8), dropout=0.2, lr=1e-3, batch_size=16, max_epochs=3,
                critic_steps=2, plateau_factor=0.3, plateau_patience=1, early_stop_patience=5)
    return SyceTrainConfig(**{**base, **kw})


@pytest.mark.parametrize("variant,kind,classes", [("syce", "binary", 2), ("cyce", "conditional", 2)])
def test_training_resumes_to_the_same_weights(tmp_path, variant, kind, classes):
    from actmatch.syce.train import train_syce

    f = L.PixelClassifier(freeze(_LeftRight()), (0.0,), (1.0,))
    xt, xv = _toy_set(48, 0), _toy_set(16, 1)
    full = train_syce(variant, f, xt, xv, classes, _cfg(kind=kind), W, 0, progress=False)
    assert full.epochs_run == 3 and 1 <= full.best_epoch <= 3
    assert all(math.isfinite(v) for vals in full.curves.values() for v in vals)
    assert {"adv", "gan", "d_loss", "gp", "val_loss", "lr"} <= set(full.curves)
    cut = tmp_path / "cut.pt"
    seen = []

    def stop_after_two(epoch, _means):
        seen.append(epoch)
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_syce(variant, f, xt, xv, classes, _cfg(kind=kind), W, 0, state_path=cut, on_epoch=stop_after_two,
                 progress=False)
    assert seen == [0, 1] and cut.is_file()
    resumed = train_syce(variant, f, xt, xv, classes, _cfg(kind=kind), W, 0, state_path=cut,
                       on_epoch=lambda e, _m: seen.append(e), progress=False)
    assert seen == [0, 1, 1, 2]
    # the cut came after epoch 2's on_epoch but before its state was saved: the rerun redoes epoch 2
    assert resumed.epochs_run == 3 and resumed.curves["val_loss"] == pytest.approx(full.curves["val_loss"], rel=1e-5)
    for a, b in zip(full.generator.state_dict().values(), resumed.generator.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_early_stop_after_patience_epochs_without_improvement_and_best_weights_returned(monkeypatch):
    from actmatch.syce import train as T

    vals = iter([5.0, 4.0, 4.5, 4.2, 4.1, 1.0])  # best at epoch 2; 3 epochs without improvement → stop after 5
    monkeypatch.setattr(T, "_validation", lambda *a: next(vals))
    kept = []
    f = L.PixelClassifier(freeze(_LeftRight()), (0.0,), (1.0,))

    def keep(epoch, _means):
        if epoch == 1:
            kept.append({k: v.clone() for k, v in gen_state().items()})

    res_holder = {}

    def gen_state():
        return res_holder["G"].state_dict()

    orig = T.build_syce

    def spy(*a):
        G, D = orig(*a)
        res_holder["G"] = G
        return G, D

    monkeypatch.setattr(T, "build_syce", spy)
    res = T.train_syce("cyce", f, _toy_set(32, 0), _toy_set(8, 1), 2, _cfg(max_epochs=10, early_stop_patience=3), W, 0,
                     on_epoch=keep, progress=False)
    assert res.best_epoch == 2 and res.epochs_run == 5 and res.curves["val_loss"] == [5.0, 4.0, 4.5, 4.2, 4.1]
    # plateau (patience 1, factor 0.3): 2 bad epochs after epoch 4 → epoch 5 runs at 0.3 × lr
    assert res.curves["lr"] == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 3e-4])
    for k, v in res.generator.state_dict().items():
        assert torch.equal(v, kept[0][k]), k


def test_binary_kind_needs_two_classes():
    from actmatch.syce.models import build_syce

    with pytest.raises(ValueError, match="2-class classifier, got 10 classes"):
        build_syce("binary", 1, 28, 10, (16, 32, 64), (32, 64, 96), 0.2)


def test_explain_ce_and_its_metrics_by_hand():
    from actmatch.syce.explain import syce_metrics, explain_syce
    from actmatch.syce.models import Translator

    class Invert(nn.Module):
        def forward(self, x, cls):
            return 1 - x

    f = L.PixelClassifier(freeze(_LeftRight()), (0.0,), (1.0,))
    x = _toy_set(4, 0)  # two left-bright (class 1), two right-bright (class 0)
    G = Translator(Invert(), "source")
    for variant in ("syce", "cyce"):
        out = explain_syce(variant, G, f, x, batch_size=3)
        assert out["c"].tolist() == [1, 1, 0, 0] and out["t"].tolist() == [0, 0, 1, 1]
        assert torch.allclose(out["x_a"], 1 - x) and torch.allclose(out["x_st"], x)
        assert torch.allclose(out["map"], (1 - 2 * x).abs())  # |x_st − x_a| = |x − x_a| here
        m = syce_metrics(f, x, out)
        # inverting swaps the bright half: every x_a flips and hits the target, every x_st is stable
        assert m["flip"].tolist() == [1.0] * 4 and m["hit_target"].tolist() == [1.0] * 4
        assert m["stable"].tolist() == [1.0] * 4
        assert torch.allclose(m["l1"], (x - (1 - x)).abs().flatten(1).mean(1))


def test_frechet_and_js_distances_by_hand():
    from actmatch.syce.vae import frechet_distance, frechet_from_stats, js_distance

    # diag(1, 4) vs diag(4, 1): sqrt(Σ1Σ2) = diag(2, 2); trace term 5 + 5 - 8 = 2; means differ by (3, 4): 25
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
    assert frechet_from_stats(np.zeros(2), s1, np.array([3.0, 4.0]), s2) == pytest.approx(27.0)
    a = np.random.default_rng(0).normal(size=(500, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + np.array([1.0, 2.0, 2.0])) == pytest.approx(9.0, rel=1e-6)  # shift only
    assert js_distance(a, a) == 0.0
    assert js_distance(np.zeros((10, 2)), np.ones((10, 2))) == pytest.approx(1.0)  # disjoint: the maximum


def test_vae_shapes_loss_and_a_few_epochs_lower_it():
    from actmatch.syce.vae import VAE, embed, train_vae, vae_loss

    x = _toy_set(64, 0)
    losses = []
    vae = train_vae(x, latent=4, epochs=6, lr=3e-3, batch_size=16, seed=0, on_epoch=lambda e, v: losses.append(v),
                    progress=False)
    assert losses[-1] < losses[0]
    assert embed(vae, x).shape == (64, 4)
    with pytest.raises(ValueError, match="divisible by 4, got 30"):
        VAE(1, 30, 4)
    # mu = logvar = 0 (KL 0) and logits 0 on an all-0.5 image: BCE = log 2 per pixel
    x1 = torch.full((2, 1, 4, 4), 0.5)
    assert vae_loss(torch.zeros_like(x1), x1, torch.zeros(2, 3), torch.zeros(2, 3)).item() == pytest.approx(
        16 * math.log(2), rel=1e-6)
