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

__all__ = ["predict_logits", "predict_proba", "fidelity", "activation_similarity", "clean_forward", "null_prediction",
           "IMAGE_COLUMNS"]

# Per-image columns that describe the image and the classifier, not a mask (issue 27): they sit in every
# per_image.csv beside the metrics but are never averaged as a method's metric. ``label``: the dataset's;
# ``y``: the classifier's top-1 on x, the label every explanation is asked to keep; ``p_x`` and
# ``margin_x``: its probability and margin; ``null_y``: its top-1 on the fully removed input (the fill
# alone, the explanation of an all-zero mask); ``trivial``: null_y == y, an image an empty mask "keeps".
IMAGE_COLUMNS = ("label", "y", "p_x", "margin_x", "null_y", "trivial")

Model = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def predict_logits(model: Model, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits ``(B, K)`` computed in chunks of ``batch_size``."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def predict_proba(model: Model, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities ``(B, K)`` at T = 1."""
    return predict_logits(model, x, batch_size).softmax(1)


def fidelity(model: Model, x: torch.Tensor, masks: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
             batch_size: int = 256, zx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per image: ``kept`` (1.0 when f(e) = f(x)), ``kl``, ``kl_norm``, ``conf_change``, ``p_ratio``, the
    probabilities ``p_x``, ``p_e`` of the target ``y``, and ``margin_x`` = p_x(y) − max_{k≠y} p_x(k), the
    classifier's own margin on the original image (a property of x, not of the mask: near 0, a near tie
    that any change of the image can flip, whatever the explanation). ``zx``: the logits of ``x`` ``(B, K)``
    when already computed (as :func:`predict_logits` computes them; the result is then the same, bit for bit)."""
    e = apply_mask(x, masks, baseline)
    zx = predict_logits(model, x, batch_size) if zx is None else zx
    ze = predict_logits(model, e, batch_size)
    lx, le = F.log_softmax(zx, 1), F.log_softmax(ze, 1)
    p_all = lx.exp()
    kl = (p_all * (lx - le)).sum(1).clamp_min(0.0)
    px, pe = p_all.gather(1, y[:, None])[:, 0], le.exp().gather(1, y[:, None])[:, 0]
    others = p_all.scatter(1, y[:, None], float("-inf"))  # p_x without the target's column
    return {"kept": (ze.argmax(1) == zx.argmax(1)).float(), "kl": kl,
            "kl_norm": (kl / math.log(zx.shape[1])).clamp(max=1.0), "conf_change": pe - px,
            "p_ratio": pe / px, "p_x": px, "p_e": pe, "margin_x": px - others.max(1).values}


@torch.no_grad()
def clean_forward(model: nn.Module, taps: Sequence[str], x: torch.Tensor,
                  batch_size: int = 256) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One forward pass of the unmasked images in chunks of ``batch_size``: the logits ``(B, K)`` (bit for bit
    :func:`predict_logits`'s) and each tap's activations flattened per image, ``(B, D_t)``, so every metric
    that needs f(x) reads it instead of recomputing it."""
    logits, acts = [], []
    for i in range(0, len(x), batch_size):
        with tapped(model, taps) as t:
            logits.append(model(x[i:i + batch_size]))
            acts.append([a.flatten(1) for a in t.ordered()])
    return torch.cat(logits), [torch.cat([c[k] for c in acts]) for k in range(len(taps))]


@torch.no_grad()
def null_prediction(model: Model, baseline: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The classifier's top-1 ``(B,)`` on the fully removed input: ``baseline`` is the fill, i.e. the
    explanation of an all-zero mask (m ⊙ x + (1 − m) ⊙ b with m = 0). An image whose null prediction is its
    label y is *trivial*: an empty mask keeps it (issue 27)."""
    return predict_logits(model, baseline, batch_size).argmax(1)


@torch.no_grad()
def activation_similarity(model: nn.Module, taps: Sequence[str], x: torch.Tensor, masks: torch.Tensor,
                          baseline: torch.Tensor, batch_size: int = 256,
                          acts_x: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Cosine similarity ``(B, len(taps))`` between the activations of x and of e at each tap
    (each activation flattened per image; 1 = identical direction). ``acts_x``: x's activations per tap,
    each ``(B, D)`` flattened, when already computed (:func:`clean_forward`; the result is the same)."""
    e = apply_mask(x, masks, baseline)
    out = []
    for i in range(0, len(x), batch_size):
        with tapped(model, taps) as t:
            if acts_x is None:
                model(x[i:i + batch_size])
                ax = [a.flatten(1) for a in t.ordered()]
            else:
                ax = [a[i:i + batch_size] for a in acts_x]
            model(e[i:i + batch_size])
            ae = [a.flatten(1) for a in t.ordered()]
        out.append(torch.stack([F.cosine_similarity(a, b, dim=1, eps=1e-8) for a, b in zip(ax, ae)], 1))
    return torch.cat(out)
