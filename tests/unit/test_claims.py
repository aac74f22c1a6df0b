"""Issue 27: claims that follow from the evidence. Each rule decides an outcome on hand-built inputs:
class-stratified evaluation sets, the null explanation (trivial images), per-class collapse, baselines
binarized at each seed's areas, training runs as the replicates of Table 2, convergence marks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from actmatch.classifiers.registry import Classifier, freeze
from actmatch.explainer.outputs import eval_split


def _ds(labels: np.ndarray):
    rows = np.arange(len(labels))
    index = pd.DataFrame({"id": [f"i{k}" for k in rows], "label": labels, "split": "test"})
    return type("DS", (), {"split_indices": lambda self, s: rows, "labels": labels, "index": index})()


def test_evaluation_subsets_are_class_stratified_nested_and_seeded():
    labels = np.repeat(np.arange(10), [95, 110, 101, 99, 100, 92, 98, 104, 97, 104])  # stored sorted by class
    ds = _ds(labels)
    twenty = eval_split(ds, 20, seed=0)
    assert np.bincount(labels[twenty], minlength=10).tolist() == [2] * 10       # 2 per class for 20 digits
    six = eval_split(ds, 6, seed=0)
    assert len(set(labels[six])) == 6                                            # fewer than classes: all distinct
    for n in (10, 13, 37, 200):
        counts = np.bincount(labels[eval_split(ds, n, seed=0)], minlength=10)
        assert counts.min() >= 1 and counts.max() - counts.min() <= 1            # at least one of each, balanced
    big = eval_split(ds, 200, seed=0)
    assert set(twenty) <= set(big) and np.array_equal(big[:20], twenty)          # nested: a prefix
    assert not np.array_equal(eval_split(ds, 20, seed=1), twenty)                # seeded by data_seed
    assert not np.array_equal(np.sort(twenty), np.arange(20))                    # never storage order
    assert len(set(eval_split(ds, 2000, seed=0))) == len(labels)                 # n beyond the split: all of it


def test_a_single_label_set_keeps_the_seeded_order():
    """The photos are unlabelled (-1): every photo is evaluated, in the seeded order (the paper recipe's
    three photos are its first three)."""
    ds = _ds(np.full(9, -1))
    order = eval_split(ds, 9, seed=0)
    assert np.array_equal(order, np.random.default_rng(0).permutation(np.arange(9)))
    assert np.array_equal(eval_split(ds, 3, seed=0), order[:3])


# ---- convergence marks ----
def test_a_flat_049_mask_is_not_converged_and_a_settled_decided_one_is():
    import torch

    from actmatch.explainer.convergence import verdict

    flat = verdict(torch.full((3, 1, 8, 8), 0.49), [10.0] * 880)       # the paper recipe's end state
    assert flat["undecided"] and not flat["moving"] and not flat["converged"]
    assert flat["final_bin"] == round(0.49 * 0.51, 6) and flat["objective_change"] == 0.0
    crisp = torch.zeros(2, 1, 8, 8)
    crisp[:, :, :2] = 0.98                                               # mean p(1-p) = 0.25 * 0.0196 = 0.0049
    settled = verdict(crisp, [5.0] * 80 + [4.0] * 20)                    # the last 10 % equal the 10 % before
    assert settled["converged"] and settled["final_bin"] == round(0.25 * 0.98 * 0.02, 6)
    # still moving: the last 10 points average 8, the 10 before 10 → a 20 % change (> 5 %)
    moving = verdict(crisp, [12.0] * 80 + [10.0] * 10 + [8.0] * 10)
    assert moving["moving"] and not moving["converged"] and moving["objective_change"] == 0.2
    assert verdict(crisp, [3.0])["objective_change"] is None            # one point: not judged
    assert verdict(torch.full((1, 1, 2, 2), 0.4), [1.0, 1.0])["undecided"]          # 0.24 >= 0.95 * 0.25
    assert not verdict(torch.full((1, 1, 2, 2), 0.35), [1.0, 1.0])["undecided"]     # 0.2275 < 0.2375


# ---- evaluate: baselines at each seed's own areas, null prediction, convergence, curves ----
class MeanBright(nn.Module):
    """Logits [m, 0, −0.5], m the image's mean (normalized): a bright image is class 0, a dark one class 1,
    and the black fill (−1 everywhere) class 1, so the dark images are trivial and the bright ones not."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Conv2d(1, 1, 1)   # the identity (weight 1, bias 0): a tap with a parameter
        nn.init.ones_(self.block1.weight)
        nn.init.zeros_(self.block1.bias)

    def forward(self, x):
        m = self.block1(x).mean((1, 2, 3))
        return torch.stack([m, torch.zeros_like(m), torch.full_like(m, -0.5)], 1)


def test_baselines_are_binarized_at_each_live_seeds_areas_and_a_collapsed_seed_is_never_the_reference(tmp_path):
    import json

    import pytest
    import torch

    from actmatch.evaluation import Regime, evaluate, load_regimes
    from actmatch.explainer.outputs import write_config, write_masks
    from actmatch.metrics.fidelity import predict_logits
    from tests.unit.test_evaluation import _setup

    clf, ds, regimes, cfg = _setup(tmp_path)
    clf = Classifier("mean", freeze(MeanBright()), 8, 1, (0.5,), (0.5,), ("block1",), ["a", "b", "c"])
    r0 = regimes["per_image"][0]
    small = (r0.soft > 0.8).float()                         # seed 0: small masks
    big = (r0.soft > 0.2).float()                           # seed 2: large ones
    empty = torch.zeros_like(r0.soft)                       # seed 1: collapsed, all empty
    runs = [Regime("per_image", r0.ids, r0.soft, tmp_path, r0.run, r0.loss, small, 0),
            Regime("per_image", r0.ids, empty, tmp_path, r0.run, r0.loss, empty, 1),
            Regime("per_image", r0.ids, r0.soft, tmp_path, r0.run, r0.loss, big, 2)]
    # the runs as the explain stage stores them, seed 2 marked not converged
    for r in runs:
        folder = tmp_path / "ex" / "per_image" / f"seed{r.seed}"
        folder.mkdir(parents=True)
        write_masks(folder / "masks.npz", r.ids, per_image=r.soft)
        np.savez_compressed(folder / "masks.npz", ids=np.asarray(r.ids), per_image_soft=r.soft[:, 0].numpy(),
                            per_image_hard=r.hard[:, 0].numpy().astype(bool))
        write_config(folder / "config.yaml", r.run, r.loss, seed=r.seed)
        (folder / "convergence.json").write_text(json.dumps({"per_image": {"converged": r.seed != 2}}))
    loaded = load_regimes(tmp_path / "ex")
    cfg = cfg.model_copy(update={"baselines": {"centre": {}, "random": {}}})
    per_image, curves, metrics, _ = evaluate(clf, ds, loaded, cfg, progress=False)
    st = metrics["settings"]
    assert st["reference_seeds"] == [0, 2] and st["skipped_reference_seeds"] == {"1": "empty"}
    assert "cpu" in st["machine"] and "torch" in st["machine"]
    ours = per_image[per_image.method == "ours:per_image"].set_index(["seed", "id"])["area"]
    for m in ("centre", "random"):
        theirs = per_image[per_image.method == m]
        assert sorted(theirs["seed"].unique()) == [0, 2]    # the seeds of ours that can be a reference
        for s in (0, 2):                                    # each at that seed's own per-image areas
            t = theirs[theirs.seed == s].set_index("id")["area"]
            np.testing.assert_allclose(t.to_numpy(), ours.loc[s].loc[t.index].to_numpy(), atol=1 / 64 / 2)
        # soft-map metrics are computed once: the same on both seeds
        a, b = (theirs[theirs.seed == s].set_index("id")["insertion_auc"] for s in (0, 2))
        np.testing.assert_array_equal(a.to_numpy(), b.loc[a.index].to_numpy())
    # the null explanation: the classifier on the fill alone
    x = clf.preprocess_batch(list(ds.images))
    null = predict_logits(clf.model, torch.full_like(x, -1.0)).argmax(1).tolist()   # black fill, mean .5 std .5
    row = per_image[per_image.method == "ours:per_image"].drop_duplicates("id").set_index("id")
    assert row.loc[[f"i{k}" for k in range(6)], "null_y"].tolist() == null
    assert (row["trivial"] == (row["null_y"] == row["y"]).astype(int)).all()
    entry = metrics["methods"]["ours:per_image"]
    assert entry["collapsed"] == [1] and entry["collapsed_direction"] == {"1": "empty"}
    assert entry["not_converged"] == [2]
    assert 0 < row["trivial"].sum() < 6                     # some images trivial, some not
    claim = entry["claim"]   # collapsed and unconverged seeds left out; of seed 0, the non-trivial images
    assert claim["left_out"]["seeds_collapsed"] == [1] and claim["left_out"]["seeds_not_converged"] == [2]
    assert claim["n"] == int((row["trivial"] == 0).sum()) and claim["seeds"] == ([0] if claim["n"] else [])
    assert entry["trivial"] == pytest.approx(float(np.mean(row["trivial"])))
    # the mean curves leave out the collapsed seed: the same as evaluating seeds 0 and 2 alone
    two = {"per_image": [loaded["per_image"][0], loaded["per_image"][2]]}
    _, curves2, _, _ = evaluate(clf, ds, two, cfg.model_copy(update={"baselines": {}}), progress=False)
    c1 = curves[curves.method == "ours:per_image"].reset_index(drop=True)
    c2 = curves2[curves2.method == "ours:per_image"].reset_index(drop=True)
    pd.testing.assert_frame_equal(c1, c2)
