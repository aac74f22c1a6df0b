"""The weighted objective of method.md §3 around a frozen classifier.

The image's own logits and activations never change for a frozen classifier, so they are
computed once per image (:func:`reference`) and reused at every step. The explanation, the
``rob`` variants and the ``nec`` complement go through the classifier as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from actmatch.config.explainer import LossConfig
from actmatch.explainer import losses as L
from actmatch.classifiers.taps import tapped
from actmatch.core.masks import apply_mask, hard_mask

__all__ = ["Reference", "reference", "loss_terms", "weighted_total", "TERMS", "tap_settings"]

TERMS = ("act", "ce", "kl", "area", "bin", "tv", "rob", "nec")


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


def tap_settings(cfg: LossConfig, n_taps: int) -> tuple[list[str], list[float]]:
    """Distance and α per tap. ``paper`` distance: cosine on the first two taps, zmse on the rest
    (the authors' code). α: the first ``n_taps`` of ``cfg.act_alphas`` (our rule for nets with
    fewer than five taps; the paper's five are (1, 2, 2, 4, 8))."""
    if n_taps > len(cfg.act_alphas):
        raise ValueError(f"act_alphas has {len(cfg.act_alphas)} values but the classifier has {n_taps} taps")
    if cfg.act_distance == "paper":
        dists = ["cosine" if i < 2 else "zmse" for i in range(n_taps)]
    else:
        dists = [cfg.act_distance] * n_taps
    return dists, list(cfg.act_alphas[:n_taps])


def loss_terms(model: nn.Module, taps: Sequence[str], x: torch.Tensor, ref: Reference, p: torch.Tensor,
               cfg: LossConfig, baseline: torch.Tensor, generator: torch.Generator | None = None
               ) -> dict[str, torch.Tensor]:
    """Every term of method.md §3 with a non-zero weight, per image ``(B,)``, plus ``area_hard`` and
    ``kept`` (top-1 of e equals y) for logging. ``p`` is the soft mask ``(B, 1, H, W)``."""
    w = cfg.weights
    b = x.shape[0]
    m = hard_mask(p, ste=True)
    batch = [apply_mask(x, m, baseline)]
    if w.rob > 0:  # authors' variant: a hard threshold with no gradient (rob_ste: false)
        m_rob = hard_mask(p, ste=cfg.rob_ste)
        batch += [apply_mask(x, m_rob, r) for r in L.rob_backgrounds(x, cfg.rob_backgrounds, generator)]
    if w.nec > 0:  # complement: the evidence removed, c = (1 − m) ⊙ x + m ⊙ baseline
        batch.append(apply_mask(x, 1.0 - m, baseline))
    use_taps = taps if w.act > 0 else ()
    with tapped(model, use_taps) as t:
        z = model(torch.cat(batch))
        acts_e = [a[:b] for a in t.ordered()] if use_taps else []
    z_e = z[:b]
    terms: dict[str, torch.Tensor] = {}
    if w.act > 0:
        dists, alphas = tap_settings(cfg, len(use_taps))
        terms["act"] = L.act_loss(ref.acts, acts_e, dists, alphas)
    if w.ce > 0:
        terms["ce"] = L.ce_loss(z_e, ref.label)
    if w.kl > 0:
        terms["kl"] = L.kl_loss(ref.logits, z_e, cfg.temperature)
    if w.area > 0:
        terms["area"] = L.area_loss(p)
    if w.bin > 0:
        terms["bin"] = L.bin_loss(p)
    if w.tv > 0:
        terms["tv"] = L.tv_loss(p, cfg.tv_neighbours)
    if w.rob > 0:
        k = len(cfg.rob_backgrounds)
        z_r = z[b:b + k * b].view(k, b, -1)
        terms["rob"] = torch.stack([L.tempered_kl(ref.logits, z_r[i], cfg.temperature) for i in range(k)]).mean(0)
    if w.nec > 0:
        terms["nec"] = L.nec_loss(ref.logits, z[-b:], ref.label, cfg.nec_margin)
    with torch.no_grad():
        terms["area_hard"] = m.detach().mean(dim=(1, 2, 3))
        terms["kept"] = (z_e.argmax(1) == ref.label).float()
    return terms


def weighted_total(terms: dict[str, torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """Σ_t w_t · term_t per image ``(B,)`` over the loss terms (not the logged extras)."""
    w = cfg.weights.model_dump()
    return sum(w[t] * terms[t] for t in TERMS if t in terms)
