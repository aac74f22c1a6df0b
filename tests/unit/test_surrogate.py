"""GLANCE twin surrogate pieces (method.md §8.2): each loss against a hand-computed value, the
modulated convolution against an explicit per-sample convolution, shapes and ranges, and the
penultimate features of a real small classifier."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actmatch.classifiers.registry import freeze
from actmatch.classifiers.small import MnistCNN
from actmatch.glance import surrogate as S


def test_l1_alignment_and_gan_losses_by_hand():
    x = torch.zeros(1, 1, 2, 2)
    x_hat = torch.tensor([[[[1.0, -1.0], [0.0, 2.0]]]])
    assert S.l1_reconstruction(x_hat, x).item() == pytest.approx(1.0)
    assert S.alignment(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])).item() == pytest.approx(2.5)
    zero = torch.zeros(3)
    assert S.gan_generator(zero).item() == pytest.approx(math.log(2))
    assert S.gan_discriminator(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert S.gan_discriminator(torch.tensor([50.0]), torch.tensor([-50.0])).item() == pytest.approx(0, abs=1e-12)
    assert S.feature_matching(torch.ones(2, 3), torch.zeros(2, 3)).item() == 1.0


def test_logit_kl_by_hand_at_temperature_2():
    t = 2.0
    lx = torch.tensor([[0.0, 0.0]])                 # p = (1/2, 1/2)
    lh = torch.tensor([[0.0, t * math.log(3)]])     # q = (1/4, 3/4)
    want = t ** 2 * (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))
    assert S.logit_kl(lx, lh, t).item() == pytest.approx(want, rel=1e-6)
    assert S.logit_kl(lh, lh, t).item() == pytest.approx(0.0, abs=1e-7)


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0]]))
    assert S.r1_penalty(lambda x: D(x)[:, 0], torch.randn(3, 1, 2, 2)).item() == pytest.approx(1 + 4 + 0.25)


def test_decorrelation_is_one_for_copies_and_zero_for_orthogonal_dims():
    a = torch.tensor([1.0, -1.0, 1.0, -1.0])
    b = torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert S.decorrelation(torch.stack([a, a], 1)).item() == pytest.approx(1.0, abs=1e-6)
    assert S.decorrelation(torch.stack([a, b], 1)).item() == pytest.approx(0.0, abs=1e-12)
    assert S.decorrelation(torch.stack([a, -a, b], 1)).item() == pytest.approx(2 / 6, abs=1e-6)


def test_modulated_conv_equals_an_explicit_per_sample_convolution():
    torch.manual_seed(0)
    conv = S.ModulatedConv2d(3, 4, 3, style_dim=5)
    x = torch.randn(2, 3, 6, 6)
    w = torch.randn(2, 5)
    plain = S.ModulatedConv2d(3, 4, 3, style_dim=5, demodulate=False)
    plain.load_state_dict(conv.state_dict())  # at init the style is all ones: an ordinary convolution
    torch.testing.assert_close(plain(x, w), F.conv2d(x, plain.weight, plain.bias, padding=1))
    nn.init.normal_(conv.affine.weight)
    out = conv(x, w)
    for i in range(2):
        s = conv.affine(w[i:i + 1])[0]
        k = conv.weight * s[None, :, None, None]
        k = k / torch.sqrt(k.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
        torch.testing.assert_close(out[i:i + 1], F.conv2d(x[i:i + 1], k, conv.bias, padding=1), rtol=1e-4, atol=1e-5)


def test_generator_and_discriminator_shapes_ranges_and_noise_switch():
    torch.manual_seed(0)
    G, D = S.StyleGenerator(latent=6, size=28, width=16, style_dim=8), S.Discriminator(size=28)
    z = torch.randn(3, 6)
    img = G(z)
    assert img.shape == (3, 1, 28, 28) and 0 <= img.min() and img.max() <= 1 and D(img).shape == (3,)
    with torch.no_grad():
        for p in G.noise_scale:
            p.fill_(1.0)
    torch.testing.assert_close(G(z, noise=False), G(z, noise=False))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(G(z, generator=g1), G(z, generator=g2))
    assert not torch.allclose(G(z, noise=False), G(z, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="divisible by 4"):
        S.StyleGenerator(4, size=30)


def test_penultimate_features_of_mnist_cnn_and_no_gradient_into_the_frozen_classifier():
    torch.manual_seed(0)
    model = freeze(MnistCNN())
    x = torch.randn(2, 1, 28, 28)
    h, logits = S.penultimate(model, x)
    want = model.head[:3](model.block3(model.block2(model.block1(x))))
    torch.testing.assert_close(h, want)
    torch.testing.assert_close(logits, model(x))
    assert h.shape == (2, 128) and not model.head[3]._forward_hooks  # hook removed
    E, G = S.Encoder(128, aligned=3, free=2), S.StyleGenerator(5, width=8, style_dim=8)
    z = E(h)
    _, logits_hat = S.penultimate(model, G(z))
    S.logit_kl(logits, logits_hat, 2.0).backward()
    assert all(p.grad is None for p in model.parameters())
    assert E.net[0].weight.grad is not None and G.convs[0].weight.grad is not None
    with pytest.raises(ValueError, match="no linear layer"):
        S.penultimate(nn.Conv2d(1, 1, 1), x)
