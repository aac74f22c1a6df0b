"""Local explanations of the GLANCE reconstruction (method.md §8.2): interventions on the causal
graph's nodes, propagated and decoded by the surrogate's generator.

The graph is a linear SEM over standardized variables (``W[i, j]``: effect of node i on node j,
from :mod:`.graph`). An intervention adds δ (in standard deviations) to node k: with the noise of
each image kept (abduction), the change travels along the edges in topological order,
Δ_j = Σ_i W[i, j] Δ_i for every descendant j, and node k's own parents are cut (do-operator).
Each latent node maps to one dim of z and its standard deviation over the data, so
z' = z + Δ · scale on those dims; the output node has no dim (it is what the classifier says).

- **importance** of node k for an image: the change of the classifier's logit of its class c on the
  decoded image, f(G(z'))_c − f(G(z))_c (both decoded, so the surrogate's own error cancels);
- **counterfactual**: over the nodes and a grid of δ, the smallest |δ| whose decoded image the
  classifier labels differently from G(z);
- **effect map**: |G(z') − G(z)|, the channel mean, scored like every other method's map.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["topological_order", "propagate", "LatentMap", "intervene", "importance", "counterfactual",
           "effect_map", "Counterfactual"]

Decoder = Callable[[torch.Tensor], torch.Tensor]
Logits = Callable[[torch.Tensor], torch.Tensor]


def topological_order(W: np.ndarray) -> list[int]:
    """Nodes ordered so every edge goes forward (Kahn's algorithm); raises on a cycle."""
    a = np.asarray(W) != 0
    indeg = a.sum(0).astype(int)
    order, ready = [], [i for i in range(len(a)) if indeg[i] == 0]
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(a[i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(int(j))
    if len(order) != len(a):
        raise ValueError("the graph has a cycle; interventions need a DAG")
    return order


def propagate(W: np.ndarray, node: int, delta: float) -> np.ndarray:
    """Δ for every node when node ``node`` is shifted by ``delta`` (its parents untouched)."""
    W = np.asarray(W, dtype=np.float64)
    out = np.zeros(len(W))
    out[node] = delta
    for j in topological_order(W):
        if j != node:
            out[j] = float(W[:, j] @ out)
    return out


@dataclass(frozen=True)
class LatentMap:
    """Graph node → z dim (None for nodes without one, e.g. the output) and that dim's scale."""

    dims: Sequence[int | None]
    scales: Sequence[float]


def intervene(z: torch.Tensor, W: np.ndarray, latent: LatentMap, node: int, delta: float) -> torch.Tensor:
    """z' for every image of ``z`` (B, D) after shifting node ``node`` by ``delta`` standard deviations."""
    change = propagate(W, node, delta)
    z2 = z.clone()
    for k, dim in enumerate(latent.dims):
        if dim is not None and change[k] != 0:
            z2[:, dim] += float(change[k] * latent.scales[k])
    return z2


@torch.no_grad()
def importance(f: Logits, G: Decoder, z: torch.Tensor, W: np.ndarray, latent: LatentMap, node: int,
               delta: float) -> torch.Tensor:
    """Per image, f(G(z'))_c − f(G(z))_c with c = the label of G(z)."""
    base = f(G(z))
    c = base.argmax(1, keepdim=True)
    moved = f(G(intervene(z, W, latent, node, delta)))
    return (moved.gather(1, c) - base.gather(1, c))[:, 0]


@dataclass(frozen=True)
class Counterfactual:
    node: np.ndarray      # (B,) the node moved, −1 where no δ of the grid flips the label
    delta: np.ndarray     # (B,) its shift in standard deviations (NaN where none)
    label: np.ndarray     # (B,) the new label (−1 where none)


@torch.no_grad()
def counterfactual(f: Logits, G: Decoder, z: torch.Tensor, W: np.ndarray, latent: LatentMap, nodes: Sequence[int],
                   grid: Sequence[float]) -> Counterfactual:
    """For each image, the smallest |δ| over ``nodes`` × ``grid`` (both signs) that changes the label
    of the decoded image; ties go to the earlier node, then the negative shift."""
    y0 = f(G(z)).argmax(1)
    b = len(z)
    best = np.full(b, np.inf)
    node_out, delta_out, label_out = np.full(b, -1), np.full(b, np.nan), np.full(b, -1)
    for mag in sorted(set(abs(g) for g in grid if g != 0)):
        for k in nodes:
            for d in (-mag, mag):
                y = f(G(intervene(z, W, latent, k, d))).argmax(1)
                hit = ((y != y0).cpu().numpy()) & (mag < best)
                best[hit] = mag
                node_out[hit], delta_out[hit], label_out[hit] = k, d, y.cpu().numpy()[hit]
    return Counterfactual(node_out, delta_out, label_out)


@torch.no_grad()
def effect_map(G: Decoder, z: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """|G(z') − G(z)| averaged over channels, ``(B, 1, H, W)``."""
    return (G(z2) - G(z)).abs().mean(1, keepdim=True)
