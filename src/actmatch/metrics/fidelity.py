"""Fidelity (method.md §5): does the explanation e = m ⊙ x + (1 − m) ⊙ b keep the decision and
the internal state of the classifier?

* top-1 agreement: argmax p_e = argmax p_x;
* KL(p_x ‖ p_e) at T = 1, and its normalized form min(KL / log K, 1) (K classes);
* confidence change p_e(y) − p_x(y), and confidence retention p_ratio = p_e(y) / p_x(y) (issue 19: a
  kept label at a collapsed probability is not an explanation);
* activation similarity: per tap, the cosine between the flattened activations of x and e
  (the paper's own claim — that the explanation reproduces the classifier's intermediate
  activations — which no peer library measures).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from actmatch.classifiers.taps import tapped
from actmatch.core.masks import apply_mask

__all__ = ["predict_logits", "predict_proba", "fidelity", "activation_similarity"]

Model = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def predict_logits(model: Model, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits ``(B, K)`` computed in chunks of ``batch_size``."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def predict_proba(model: Model, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities ``(B, K)`` at T = 1."""
    return predict_logits(model, x, batch_size).softmax(1)


def fidelity(model: Model, x: torch.Tensor, masks: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
             batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Per image: ``kept`` (1.0 when f(e) = f(x)), ``kl``, ``kl_norm``, ``conf_change``, ``p_ratio``, the
    probabilities ``p_x``, ``p_e`` of the target ``y``, and ``margin_x`` = p_x(y) − max_{k≠y} p_x(k), the
    classifier's own margin on the original image (a property of x, not of the mask: near 0, a near tie
    that any change of the image can flip, whatever the explanation)."""
    e = apply_mask(x, masks, baseline)
    zx, ze = predict_logits(model, x, batch_size), predict_logits(model, e, batch_size)
    lx, le = F.log_softmax(zx, 1), F.log_softmax(ze, 1)
    kl = (lx.exp() * (lx - le)).sum(1).clamp_min(0.0)
    px, pe = lx.exp().gather(1, y[:, None])[:, 0], le.exp().gather(1, y[:, None])[:, 0]
    others = lx.exp().scatter(1, y[:, None], float("-inf"))  # p_x without the target's column
    return {"kept": (ze.argmax(1) == zx.argmax(1)).float(), "kl": kl,
            "kl_norm": (kl / math.log(zx.shape[1])).clamp(max=1.0), "conf_change": pe - px,
            "p_ratio": pe / px, "p_x": px, "p_e": pe, "margin_x": px - others.max(1).values}


@torch.no_grad()
def activation_similarity(model: nn.Module, taps: Sequence[str], x: torch.Tensor, masks: torch.Tensor,
                          baseline: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Cosine similarity ``(B, len(taps))`` between the activations of x and of e at each tap
    (each activation flattened per image; 1 = identical direction)."""
    e = apply_mask(x, masks, baseline)
    out = []
    for i in range(0, len(x), batch_size):
        with tapped(model, taps) as t:
            model(x[i:i + batch_size])
            ax = [a.flatten(1) for a in t.ordered()]
            model(e[i:i + batch_size])
            ae = [a.flatten(1) for a in t.ordered()]
        out.append(torch.stack([F.cosine_similarity(a, b, dim=1, eps=1e-8) for a, b in zip(ax, ae)], 1))
    return torch.cat(out)
