"""GLANCE surrogate training (method.md §8.2): a short run lowers the loss, gives the frozen
classifier no gradient, resumes to bit-identical weights after an interruption; the alignment R²
and the fidelity measure by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actmatch.classifiers.registry import freeze
from actmatch.classifiers.small import MnistCNN
from actmatch.glance import surrogate as S
from actmatch.glance.train import SurrogateConfig, alignment_r2, fidelity, train_surrogate

CFG = SurrogateConfig(free=2, width=8, style_dim=8, lr=2e-3, batch_size=8, epochs=3, tap="block2")
W = S.SurrogateWeights(rec=10, feat=1, kl=1, gan=0.1, align=1, decor=0.1, r1=1, temperature=2)


def _data(n=24):
    torch.manual_seed(0)
    model = freeze(MnistCNN())
    x = torch.rand(n, 1, 28, 28) ** 4  # mostly dark, like digits
    ctx = torch.randn(n, 3)
    return model, x, ctx


def test_training_lowers_the_loss_and_never_touches_the_classifier():
    model, x, ctx = _data()
    before = [p.clone() for p in model.parameters()]
    out = train_surrogate(model, (0.1,), (0.3,), x, ctx, CFG, W, seed=0, progress=False)
    assert len(out.curves["total"]) == 3 and out.curves["rec"][-1] < out.curves["rec"][0]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert 0.0 <= fidelity(model, (0.1,), (0.3,), out.encoder, out.generator, x) <= 1.0


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    model, x, ctx = _data()
    whole = train_surrogate(model, (0.1,), (0.3,), x, ctx, CFG, W, seed=0, progress=False)

    def stop(epoch, means):  # interrupted after epoch 2's update, before its state is saved
        if epoch == 1:
            raise KeyboardInterrupt
    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train_surrogate(model, (0.1,), (0.3,), x, ctx, CFG, W, seed=0, state_path=state, on_epoch=stop,
                        progress=False)
    assert torch.load(state, weights_only=False)["epoch"] == 1
    resumed = train_surrogate(model, (0.1,), (0.3,), x, ctx, CFG, W, seed=0, state_path=state, progress=False)
    for a, b in zip(whole.generator.state_dict().values(), resumed.generator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert whole.curves == resumed.curves


def test_alignment_r2_by_hand_and_mismatched_rows():
    c = np.array([[0.0, 1.0], [1.0, -1.0], [2.0, 1.0], [3.0, -1.0]])
    z = np.stack([2 * c[:, 0] + 1, np.array([1.0, 1.0, -1.0, -1.0])], 1)   # exact / orthogonal
    np.testing.assert_allclose(alignment_r2(z, c), [1.0, 0.0], atol=1e-12)
    model, x, ctx = _data(4)
    with pytest.raises(ValueError, match="4 images but 3 rows"):
        train_surrogate(model, (0.1,), (0.3,), x, ctx[:3], CFG, W, seed=0, progress=False)
