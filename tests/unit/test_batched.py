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


# the paper preset's rob (hard threshold, no gradient, the fill as its first background) and the photo recipe's
# area target; with the photos' blur fill
PAPER_ROB = LOSS.model_copy(update={"rob_ste": False, "rob_backgrounds": ["fill", "gaussian", "uniform"]})
AREA_TARGET = LOSS.model_copy(update={"area_target": 0.2})


@pytest.mark.parametrize("loss, fill, steps", [
    (PAPER_ROB, "blur", StepsParams(lr=1e-2, steps=3, select="last")),
    (PAPER_ROB, "black", StepsParams(lr=1e-2, steps=3, select="smallest_kept")),
    (AREA_TARGET, "blur", StepsParams(lr=1e-2, steps=4, select="lowest_loss", area_ramp=10.0)),
    (LOSS, "blur", StepsParams(lr=1e-2, steps=4, select="smallest_kept", area_ramp=10.0)),
])
def test_batched_equals_sequential_for_the_defaults_features(clf, loss, fill, steps):  # noqa: F811
    torch.manual_seed(3)
    x = torch.randn(3, 1, 32, 32)  # the blur's kernel (sigma 10 px) needs more than 30 px
    seq = T.explain_per_image(clf, x, loss, UNET, steps, fill, 0, progress=False)
    bat = explain_per_image_batched(clf, x, loss, UNET, steps, fill, 0, chunk=2, progress=False)
    assert torch.allclose(bat.soft, seq.soft, atol=1e-4)
    for k in seq.final:
        np.testing.assert_allclose(bat.final[k], seq.final[k], rtol=1e-3, atol=1e-4, err_msg=k)
    for k in seq.curves:
        np.testing.assert_allclose(bat.curves[k], seq.curves[k], rtol=1e-3, atol=1e-4, err_msg=k)


def _toy_dataset(n: int):
    import pandas as pd

    from actmatch.data.store import ImageDataset

    rng = np.random.default_rng(0)
    index = pd.DataFrame({"id": [f"i{k}" for k in range(n)], "label": rng.integers(0, 3, n),
                          "split": ["train"] * (n // 2) + ["test"] * (n - n // 2)})
    return ImageDataset("toy", rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8), index, {})


def test_finetune_through_run_amortized_is_batched_and_equals_one_at_a_time(clf, tmp_path):  # noqa: F811
    import pandas as pd

    from actmatch.config.explainer import ExplainerRun
    from actmatch.explainer.runs import RunContext, run_amortized

    run = ExplainerRun(classifier="toy", dataset="mnist", preset="p", fill="black", unet=UNET.model_dump(),
                       eval_images=5, amortized={"lr": 1e-2, "epochs": 1, "batch_size": 4},
                       finetune={"lr": 1e-2, "steps": 3, "select": "smallest_kept"})
    ds = _toy_dataset(12)
    out = {}
    for batch in (1, 2):
        d = tmp_path / f"b{batch}"
        ctx = RunContext(d / "out", d / "live", d / "state", per_image_batch=batch, progress=False)
        run_amortized(clf, ds, run, LOSS, [0], 0, ctx)
        masks = np.load(d / "out/seed0/masks.npz")
        out[batch] = ({k: masks[k] for k in masks.files}, pd.read_csv(d / "out/seed0/summary.csv"))
    (m1, s1), (m2, s2) = out[1], out[2]
    assert set(m1) == set(m2) and "finetune_soft" in m1 and "finetune_last_soft" in m1
    assert np.array_equal(m1["amortized_soft"], m2["amortized_soft"])  # the amortized regime is untouched
    np.testing.assert_allclose(m2["finetune_soft"], m1["finetune_soft"], atol=1e-4)
    assert list(s1.columns) == list(s2.columns) and list(s1["regime"]) == list(s2["regime"])
    np.testing.assert_allclose(s2.select_dtypes("number"), s1.select_dtypes("number"), rtol=1e-3, atol=1e-4)
