"""GLANCE's global graph (method.md §8.2): DAGMA recovers a linear SCM with a known graph, the
classifier output stays a sink, and SHD / edge precision-recall by hand on small matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from actmatch.glance.graph import adjacency, edge_scores, learn_graph, shd

NAMES = ["thickness", "intensity", "slant", "z0", "out"]
TRUE = [("thickness", "intensity"), ("thickness", "slant"), ("thickness", "out"), ("z0", "out"),
        ("slant", "out")]


def _scm(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """thickness → intensity, thickness → slant (the Morpho-MNIST recipe), and the output caused by
    thickness, slant and a free latent z0; equal-variance Gaussian noise (identifiable for least squares)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, 5))
    th = e[:, 0]
    inten = 1.5 * th + e[:, 1]
    sl = -1.0 * th + e[:, 2]
    z0 = e[:, 3]
    out = 0.8 * th + 1.2 * z0 - 0.9 * sl + e[:, 4]
    return pd.DataFrame(np.stack([th, inten, sl, z0, out], 1), columns=NAMES)


def test_shd_and_edge_scores_by_hand():
    true = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])          # a → b → c
    est = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]])           # a → c (extra), b → a (reversed), b → c missing
    assert shd(est, true) == 3 and shd(true, true) == 0
    s = edge_scores(est, true)
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["predicted"] == 2
    s = edge_scores(true + np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]]), true)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == 1.0
    assert adjacency([("b", "a")], ["a", "b"]).tolist() == [[0, 0], [1, 0]]


def test_dagma_recovers_the_known_graph_with_the_output_a_sink():
    g = learn_graph(_scm(), sink="out")
    est = (g.weights.to_numpy() != 0).astype(int)
    true = adjacency(TRUE, NAMES)
    assert est[NAMES.index("out")].sum() == 0  # nothing leaves the output
    assert shd(est, true) <= 1, g.edges
    s = edge_scores(est, true)
    assert s["recall"] >= 0.8 and s["precision"] >= 0.8
    # the weights are on standardized variables: the strong thickness → intensity edge is positive
    assert g.weights.loc["thickness", "intensity"] > 0.3


def test_clear_errors():
    d = _scm(50)
    with pytest.raises(KeyError, match="sink 'y' is not a variable"):
        learn_graph(d, sink="y")
    d["const"] = 1.0
    with pytest.raises(ValueError, match="constant variables.*const"):
        learn_graph(d)
