"""The global explanation of the GLANCE reconstruction: a causal graph over (context features,
free latents, classifier output), method.md §8.2.

Learner: DAGMA (Bello, Aragam, Ravikumar, NeurIPS 2022; the maintained successor of NOTEARS from
the same group, PyPI ``dagma``), linear model with least-squares loss, on standardized variables.
The classifier output is made a sink by excluding every edge out of it (DAGMA's
``exclude_edges``). Edges are kept where |w| ≥ ``w_threshold`` (DAGMA's own thresholding).

Scores against a known graph (the controlled Morpho-MNIST recipe of :mod:`.perturb`): the
structural Hamming distance (an extra, a missing or a reversed edge each count 1, as in the
NOTEARS/DAGMA papers' ``count_accuracy``) and the precision / recall of directed edges. Both are
written here (a few lines over adjacency matrices) so they do not depend on a plotting or
simulation module of the learner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LearnedGraph", "learn_graph", "shd", "edge_scores", "adjacency"]


@dataclass(frozen=True)
class LearnedGraph:
    """Weighted adjacency ``weights[i, j]`` = effect of node i on node j (0: no edge), node names."""

    weights: pd.DataFrame

    @property
    def edges(self) -> list[tuple[str, str, float]]:
        w = self.weights
        return [(a, b, float(w.loc[a, b])) for a in w.index for b in w.columns if w.loc[a, b] != 0]


def learn_graph(data: pd.DataFrame, sink: str | None = None, lambda1: float = 0.02, w_threshold: float = 0.3,
                seed: int = 0) -> LearnedGraph:
    """A DAG over the columns of ``data`` (rows = samples), each column standardized first; ``sink``
    (a column name) gets no outgoing edge. Deterministic for a seed (DAGMA's Adam steps are)."""
    from dagma.linear import DagmaLinear  # imported here: only this learner needs it

    names = list(data.columns)
    x = data.to_numpy(np.float64)
    if len(names) < 2 or len(x) < 3:
        raise ValueError(f"a graph needs at least 2 variables and 3 samples, got {len(names)} and {len(x)}")
    std = x.std(0)
    if np.any(std == 0):
        raise ValueError(f"constant variables cannot be standardized: {[n for n, s in zip(names, std) if s == 0]}")
    x = (x - x.mean(0)) / std
    exclude = None
    if sink is not None:
        if sink not in names:
            raise KeyError(f"sink {sink!r} is not a variable; variables: {names}")
        k = names.index(sink)
        # a tuple of tuples: DAGMA 1.1.1 silently ignores a list here (its type check builds a
        # ValueError without raising it)
        exclude = tuple((k, j) for j in range(len(names)) if j != k)
    np.random.seed(seed)
    w = DagmaLinear(loss_type="l2", verbose=False).fit(x, lambda1=lambda1, w_threshold=w_threshold,
                                                       exclude_edges=exclude)
    return LearnedGraph(pd.DataFrame(w, index=names, columns=names))


def adjacency(edges: Sequence[tuple[str, str]], names: Sequence[str]) -> np.ndarray:
    """0/1 matrix ``a[i, j] = 1`` for each edge i → j, in the order of ``names``."""
    pos = {n: i for i, n in enumerate(names)}
    a = np.zeros((len(names), len(names)), np.int64)
    for u, v in edges:
        a[pos[u], pos[v]] = 1
    return a


def shd(est: np.ndarray, true: np.ndarray) -> int:
    """Structural Hamming distance between directed graphs (nonzero = edge): extra + missing edges,
    a reversed edge counted once."""
    e, t = (np.asarray(est) != 0), (np.asarray(true) != 0)
    se, st = e | e.T, t | t.T  # skeletons
    extra = np.triu(se & ~st).sum()
    missing = np.triu(st & ~se).sum()
    reversed_ = (e & t.T & ~t).sum()
    return int(extra + missing + reversed_)


def edge_scores(est: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Precision and recall of directed edges (NaN where undefined), and the counts behind them."""
    e, t = (np.asarray(est) != 0), (np.asarray(true) != 0)
    tp = int((e & t).sum())
    return {"precision": tp / e.sum() if e.sum() else float("nan"),
            "recall": tp / t.sum() if t.sum() else float("nan"),
            "true_positives": tp, "predicted": int(e.sum()), "true": int(t.sum())}
