"""Pixel rankings, top-fraction masks, and insertion / deletion curves (method.md §5).

A binary mask ranks pixels only by 0/1, so rankings use the soft map ``p``; ties are broken by
one seeded random pixel order (shared by all images, so a result never depends on how images
are batched), and that seed is recorded with the results.

Deletion (Petsiuk et al. 2018, RISE): start from x and replace the top-ranked pixels by the
baseline, ``steps`` equal increments up to all pixels; insertion: start from a blurred x and put
back the top-ranked pixels of x. The curve is p(y) at each of the ``steps + 1`` points; its AUC
is the trapezoid rule over the removed/inserted fraction in [0, 1] (so it lies in [0, 1]).
High insertion AUC and low deletion AUC are good.
"""

from __future__ import annotations

import torch

from actmatch.metrics.fidelity import Model, predict_proba

__all__ = ["pixel_ranks", "top_fraction_masks", "deletion_insertion", "auc"]


def pixel_ranks(soft: torch.Tensor, tie_seed: int) -> torch.Tensor:
    """Rank of every pixel ``(B, 1, H, W)`` long: 0 for the highest soft value; equal values are
    ordered by a random permutation drawn from ``tie_seed``."""
    b, _, h, w = soft.shape
    n = h * w
    tie = torch.randperm(n, generator=torch.Generator().manual_seed(tie_seed)).to(soft.device)
    flat = soft.reshape(b, n)[:, tie]                      # visit pixels in the tie order ...
    order_in_tie = torch.sort(flat, dim=1, descending=True, stable=True).indices
    order = tie[order_in_tie]                               # ... so stable sorting breaks ties by it
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=soft.device).expand(b, n).contiguous())
    return ranks.view(b, 1, h, w)


def top_fraction_masks(ranks: torch.Tensor, fraction: float | torch.Tensor) -> torch.Tensor:
    """Hard masks keeping the round(fraction · H · W) top-ranked pixels; ``fraction`` is a number
    or one value per image ``(B,)``. Returns float ``(B, 1, H, W)`` in {0, 1}."""
    n = ranks.shape[-1] * ranks.shape[-2]
    frac = torch.as_tensor(fraction, dtype=torch.float64, device=ranks.device).reshape(-1, 1, 1, 1)
    k = torch.round(frac * n).long()
    return (ranks < k).float()


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Normalized trapezoid area ``(B,)`` under curves ``(B, T + 1)`` sampled at fractions 0, 1/T, …, 1."""
    steps = curve.shape[1] - 1
    return (curve[:, 1:] + curve[:, :-1]).sum(1) / (2.0 * steps)


def deletion_insertion(model: Model, x: torch.Tensor, ranks: torch.Tensor, removed: torch.Tensor,
                       blurred: torch.Tensor, y: torch.Tensor, steps: int = 50,
                       batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves, each ``(B, steps + 1)``: p(y) after removing (deletion:
    top pixels → ``removed``) or inserting (insertion: top pixels of x onto ``blurred``) the first
    k/steps of the ranking, k = 0 … steps."""
    dele, ins = [], []
    for k in range(steps + 1):
        m = top_fraction_masks(ranks, k / steps)
        d = x * (1.0 - m) + removed * m
        i = blurred * (1.0 - m) + x * m
        p = predict_proba(model, torch.cat([d, i]), batch_size)
        dele.append(p[: len(x)].gather(1, y[:, None])[:, 0])
        ins.append(p[len(x):].gather(1, y[:, None])[:, 0])
    return torch.stack(dele, 1), torch.stack(ins, 1)
