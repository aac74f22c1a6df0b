"""The weighted objective of method.md §3 around a frozen classifier.

The image's own logits and activations never change for a frozen classifier, so they are
computed once per image (:func:`reference`) and reused at every step. The terms are the registry
:data:`actmatch.explainer.losses.TERMS`; the explanation e and every active term's extra inputs
(``rob``: m⊙x + (1−m)⊙r per background; ``nec``: the complement) go through the classifier as
one batch, in registry order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from actmatch.config.explainer import LossConfig
from actmatch.classifiers.taps import tapped
from actmatch.core.masks import apply_mask, hard_mask
from actmatch.explainer import losses as L
from actmatch.explainer.losses import TERMS, tap_settings

__all__ = ["Reference", "reference", "loss_terms", "weighted_total", "TERMS", "tap_settings",
           "term_weight", "NO_GRAD_APART"]

# Classify the inputs that take no gradient in a batch of their own, without a graph (see _classify).
NO_GRAD_APART = False


@dataclass(frozen=True)
class Reference:
    """What the frozen classifier says about the original images: logits ``(B, K)``, label ``(B,)``,
    tap activations (one tensor per tap, batch first)."""

    logits: torch.Tensor
    label: torch.Tensor
    acts: tuple[torch.Tensor, ...]

    def index(self, idx: torch.Tensor | slice) -> "Reference":
        return Reference(self.logits[idx], self.label[idx], tuple(a[idx] for a in self.acts))


@torch.no_grad()
def reference(model: nn.Module, taps: Sequence[str], x: torch.Tensor) -> Reference:
    """One forward pass over the original images ``x`` (B, C, H, W), normalized."""
    with tapped(model, taps) as t:
        z = model(x)
        acts = tuple(a.detach() for a in t.ordered()) if taps else ()
    return Reference(z.detach(), z.argmax(1), acts)


def term_weight(cfg: LossConfig, name: str) -> float:
    """The weight of registered term ``name`` in ``cfg`` (``weights.<name>``)."""
    return L.check_weights(cfg.weights)[name]


def _active(cfg: LossConfig) -> list[L.Term]:
    weights = L.check_weights(cfg.weights)  # an unknown or missing weight is refused, naming it
    return [t for name, t in L.TERMS.items() if weights[name] > 0]


def loss_terms(model: nn.Module, taps: Sequence[str], x: torch.Tensor, ref: Reference, p: torch.Tensor,
               cfg: LossConfig, baseline: torch.Tensor, generator: L.Generators = None) -> dict[str, torch.Tensor]:
    """Every registered term of method.md §3 with a non-zero weight, per image ``(B,)``, plus
    ``area_hard`` and ``kept`` (top-1 of e equals y) for logging. ``x`` ``(B, C, H, W)`` normalized;
    ``p`` the soft mask ``(B, 1, H, W)``; ``baseline`` the fill values like ``x``.

    One forward pass over [e, inputs of the 1st active term, inputs of the 2nd, ...] (registry order,
    so e, the ``rob`` backgrounds, the ``nec`` complement); noise is drawn in the same order."""
    b = x.shape[0]
    active = _active(cfg)
    m = hard_mask(p, ste=True)
    ctx = L.TermContext(x=x, ref=ref, p=p, m=m, baseline=baseline, cfg=cfg, generator=generator)
    extra = [list(t.inputs(ctx)) if t.inputs is not None else [] for t in active]
    for t, images in zip(active, extra):
        if any(im.shape != x.shape for im in images):
            raise ValueError(f"loss term {t.name!r}: its inputs must have the shape of x {tuple(x.shape)}")
    use_taps = taps if any(t.needs_acts for t in active) else ()
    z, acts_e = _classify(model, use_taps, b, [apply_mask(x, m, baseline)] + [im for images in extra for im in images])
    ctx = replace(ctx, z_e=z[:b], acts_e=acts_e)
    terms: dict[str, torch.Tensor] = {}
    start = b
    for t, images in zip(active, extra):
        k = len(images)
        z_t = list(z[start:start + k * b].view(k, b, -1)) if k else []
        start += k * b
        terms[t.name] = t.fn(ctx, z_t)
    with torch.no_grad():
        terms["area_hard"] = m.detach().mean(dim=(1, 2, 3))
        terms["kept"] = (ctx.z_e.argmax(1) == ref.label).float()
    return terms


def _classify(model: nn.Module, taps: Sequence[str], b: int,
              inputs: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Logits of ``inputs`` (each ``(b, C, H, W)``, e first) in their order, and the taps' activations of e.
    With :data:`NO_GRAD_APART` and a graph being built, the inputs that take no gradient (``rob`` under
    ``rob_ste: false``) go through the classifier in a second batch under ``torch.no_grad``: no backward
    through them. Values then differ from the one-batch pass by float rounding only (a convolution's
    rounding depends on its batch size on the CPU)."""
    apart = NO_GRAD_APART and torch.is_grad_enabled() and inputs[0].requires_grad
    live = [im for im in inputs if im.requires_grad or not apart]
    dead = [im for im in inputs if apart and not im.requires_grad]
    with tapped(model, taps) as tp:
        z = model(torch.cat(live))
        acts_e = tuple(a[:b] for a in tp.ordered()) if taps else ()
    if dead:
        with torch.no_grad():
            z_dead = iter(model(torch.cat(dead)).split(b))
        z_live = iter(z.split(b))
        z = torch.cat([next(z_live) if im.requires_grad else next(z_dead) for im in inputs])
    return z, acts_e


def weighted_total(terms: dict[str, torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """Σ_t w_t · term_t per image ``(B,)`` over the registered terms in ``terms`` (not the logged extras),
    in registry order."""
    weights = L.check_weights(cfg.weights)
    return sum(weights[name] * terms[name] for name in L.TERMS if name in terms)
