"""GLANCE local explanations (method.md §8.2) by hand: propagation through a linear SEM under the
do-operator, the latent shift, importance, the smallest flipping intervention, the effect map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actmatch.glance.local import (LatentMap, counterfactual, effect_map, importance, intervene, propagate,
                                   topological_order)

# nodes: 0 thickness → 1 intensity (×2), 0 → 2 slant (×−1), 1 → 3 output (×3); node 3 has no latent dim
W = np.zeros((4, 4))
W[0, 1], W[0, 2], W[1, 3] = 2.0, -1.0, 3.0
LAT = LatentMap(dims=[0, 1, 2, None], scales=[1.0, 0.5, 2.0, 1.0])


def test_propagation_follows_edges_and_cuts_the_intervened_nodes_parents():
    assert topological_order(W)[0] == 0
    np.testing.assert_allclose(propagate(W, 0, 1.0), [1.0, 2.0, -1.0, 6.0])
    np.testing.assert_allclose(propagate(W, 1, 1.0), [0.0, 1.0, 0.0, 3.0])   # thickness untouched
    cyc = W.copy()
    cyc[3, 0] = 1.0
    with pytest.raises(ValueError, match="cycle"):
        propagate(cyc, 0, 1.0)


def test_intervene_shifts_each_latent_dim_by_its_scale():
    z = torch.zeros(2, 4)
    z2 = intervene(z, W, LAT, 0, 0.5)
    # Δ = (0.5, 1, −0.5, 3) in standard deviations → z dims 0..2 move by Δ · scale; dim 3 is no node's
    torch.testing.assert_close(z2, torch.tensor([[0.5, 0.5, -1.0, 0.0]] * 2))
    assert torch.equal(z, torch.zeros(2, 4))


def _G(z):  # "decoder": the image is z[:, :3] as 3 pixels in a 1×1×3 row
    return z[:, None, None, :3].clone()


def _f(img):  # two logits: class 1 wins when pixel 1 (intensity) > 1
    v = img[:, 0, 0, 1]
    return torch.stack([torch.ones_like(v), v], 1)


def test_importance_counterfactual_and_effect_map_by_hand():
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.0, 0.0]])
    imp = importance(_f, _G, z, W, LAT, 0, 1.0)      # intensity moves by 2·0.5 = 1 → logit of class 0 unchanged
    torch.testing.assert_close(imp, torch.zeros(2))
    imp1 = importance(_f, _G, z, W, LAT, 1, 1.0)     # class 0 for both: its logit is constant 1
    torch.testing.assert_close(imp1, torch.zeros(2))
    cf = counterfactual(_f, _G, z, W, LAT, nodes=[0, 1, 2], grid=[0.5, 1.0, 2.0, 4.0])
    # image 0 needs intensity > 1: via thickness δ·2·0.5 = δ > 1 → δ = 2 (δ = 1 gives exactly 1, no flip);
    # via intensity itself δ·0.5 > 1 → δ = 4. The smallest is thickness, +2.
    # image 1 starts at 0.6: thickness δ > 0.4 → 0.5
    assert cf.node.tolist() == [0, 0] and cf.delta.tolist() == [2.0, 0.5] and cf.label.tolist() == [1, 1]
    none = counterfactual(_f, _G, z, W, LAT, nodes=[2], grid=[1.0])
    assert none.node.tolist() == [-1, -1] and np.isnan(none.delta).all()
    m = effect_map(_G, z, intervene(z, W, LAT, 0, 1.0))
    torch.testing.assert_close(m, torch.tensor([[[[1.0, 1.0, 2.0]]]] * 2))
