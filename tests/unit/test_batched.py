"""The batched per-image regime gives the sequential regime's masks for the same seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actmatch.config.explainer import StepsParams
from actmatch.explainer import train as T
from actmatch.explainer.batched import explain_per_image_batched
from actmatch.explainer.losses import rob_backgrounds
from tests.unit.test_explainer_train import LOSS, UNET, clf  # noqa: F401 (fixture)


def test_one_generator_per_image_draws_what_each_image_would_alone():
    x = torch.zeros(3, 1, 4, 4)
    together = rob_backgrounds(x, ["zero", "gaussian", "uniform"], [torch.Generator().manual_seed(s) for s in (5, 6, 7)])
    for i, s in enumerate((5, 6, 7)):
        alone = rob_backgrounds(x[i:i + 1], ["zero", "gaussian", "uniform"], torch.Generator().manual_seed(s))
        for a, b in zip(alone, together):
            assert torch.equal(a, b[i:i + 1])
    with pytest.raises(ValueError, match="2 generators for 3 images"):
        rob_backgrounds(x, ["gaussian"], [torch.Generator(), torch.Generator()])


@pytest.mark.parametrize("select, chunk", [("last", 3), ("smallest_kept", 2), ("lowest_loss", 2)])
def test_batched_equals_sequential_for_the_same_seeds(clf, select, chunk):  # noqa: F811
    torch.manual_seed(1)
    x = torch.randn(3, 1, 8, 8)
    steps = StepsParams(lr=1e-2, steps=3, select=select)
    seq = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, progress=False)
    bat = explain_per_image_batched(clf, x, LOSS, UNET, steps, "black", 0, chunk=chunk, progress=False)
    assert bat.soft.shape == seq.soft.shape
    # three Adam steps: only the summation order of batched convolutions differs
    assert torch.allclose(bat.soft, seq.soft, atol=1e-4)
    assert (seq.last is None) == (select == "last") and (bat.last is None) == (select == "last")
    if select != "last":
        assert torch.allclose(bat.last, seq.last, atol=1e-4)
    for k in seq.final:
        np.testing.assert_allclose(bat.final[k], seq.final[k], rtol=1e-3, atol=1e-4, err_msg=k)
    for k in seq.curves:
        np.testing.assert_allclose(bat.curves[k], seq.curves[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_batched_finetune_starts_every_image_from_the_given_weights_and_resumes(clf, tmp_path):  # noqa: F811
    torch.manual_seed(2)
    x = torch.randn(3, 1, 8, 8)
    init = T.build_unet(clf, UNET).state_dict()
    steps = StepsParams(lr=1e-2, steps=2)
    seq = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, init_state=init, progress=False)
    first = explain_per_image_batched(clf, x, LOSS, UNET, steps, "black", 0, chunk=2, init_state=init,
                                      progress=False)
    assert torch.allclose(first.soft, seq.soft, atol=1e-4)
    # the state files are interchangeable: a finished sequential run's state is taken as done
    state = tmp_path / "state.pt"
    T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, init_state=init, state_path=state, progress=False)
    again = explain_per_image_batched(clf, x, LOSS, UNET, steps, "black", 0, chunk=2, init_state=init,
                                      state_path=state, progress=False)
    assert torch.equal(again.soft, seq.soft)
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        explain_per_image_batched(clf, x, LOSS, UNET, steps, "black", 0, chunk=0, progress=False)
