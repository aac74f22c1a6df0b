"""Issue 27: claims that follow from the evidence. Each rule decides an outcome on hand-built inputs:
class-stratified evaluation sets, the null explanation (trivial images), per-class collapse, baselines
binarized at each seed's areas, training runs as the replicates of Table 2, convergence marks."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
