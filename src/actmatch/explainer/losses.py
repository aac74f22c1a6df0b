"""The loss terms of method.md §3: a registry of named terms, each returning per-image values ``(B,)``.

Notation: z_x, z_e logits of the image and the explanation; y = argmax z_x; T the temperature;
p^T = softmax(z / T). Priors (``area``, ``bin``, ``tv``) act on the soft mask p; everything that
feeds the classifier uses the hard (STE) mask m.

A term is one function registered with :func:`term` into :data:`TERMS` (registry order is the
order of the weighted sum and of the classifier batch), plus its weight in params.yaml's presets
(:class:`actmatch.config.explainer.LossWeights`, checked against this registry by
:func:`check_weights`). A term that needs the classifier on more images
than e declares them with ``inputs``; :func:`actmatch.explainer.objective.loss_terms` classifies e
and every active term's inputs in one batch and hands each term the logits of its own inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from actmatch.classifiers.taps import as_positions
from actmatch.core.errors import ParamsError
from actmatch.core.masks import apply_mask, hard_mask, ranking_gap

if TYPE_CHECKING:
    from actmatch.config.explainer import LossConfig
    from actmatch.explainer.objective import Reference

__all__ = ["ShardedGenerator", "DISTANCES", "TERMS", "Term", "TermContext", "term", "check_weights", "tap_settings",
           "activation_distance", "act_loss", "ce_loss", "kl_loss", "area_loss", "bin_loss", "tv_loss",
           "rob_backgrounds", "nec_loss", "tempered_kl"]

DISTANCES = ("cosine", "zmse", "kl")
COSINE_EPS = 1e-8  # the authors' F.normalize eps (method.md §3, "The authors' exact arithmetic")
ZMSE_EPS = 1e-6    # the authors' z-score: (a - mean) / (std + 1e-6), torch's default unbiased std


def _zscore(a: torch.Tensor, dim: int) -> torch.Tensor:
    return (a - a.mean(dim=dim, keepdim=True)) / (a.std(dim=dim, keepdim=True) + ZMSE_EPS)


def activation_distance(a_x: torch.Tensor, a_e: torch.Tensor, kind: str) -> torch.Tensor:
    """d(φ(x), φ(e)) per image ``(B,)`` for conv maps ``(B, C, H, W)``, tokens ``(B, N, C)`` or vectors ``(B, C)``.

    ``cosine``: 1 − mean over positions of the dot product of the L2-normalized (eps 1e-8) channel
    vectors; ``zmse``: z-score each channel over positions with the unbiased std (divides by P − 1),
    z = (a − mean) / (std + 1e-6), then the mean squared difference over positions and channels;
    ``kl``: KL(softmax_c(φ(x)) ‖ softmax_c(φ(e))) at each position, averaged over positions.
    These are the authors' formulas (method.md §3). Ours, stated: at a tap with one position
    (a vector ``(B, C)``, or a 1×1 map) the unbiased std over positions is undefined, so ``zmse``
    z-scores over the channel axis instead (the only axis with a spread)."""
    px, pe = as_positions(a_x), as_positions(a_e)  # (B, P, C)
    if kind == "cosine":
        nx, ne = F.normalize(px, dim=-1, eps=COSINE_EPS), F.normalize(pe, dim=-1, eps=COSINE_EPS)
        return 1.0 - (nx * ne).sum(dim=-1).mean(dim=1)
    if kind == "zmse":
        dim = 1 if px.shape[1] > 1 else 2  # positions; channels at a one-position tap
        return (_zscore(px, dim) - _zscore(pe, dim)).pow(2).mean(dim=(1, 2))
    if kind == "kl":
        lx, le = F.log_softmax(px, dim=-1), F.log_softmax(pe, dim=-1)
        return (lx.exp() * (lx - le)).sum(dim=-1).mean(dim=1)
    raise ValueError(f"unknown activation distance {kind!r}; allowed: {', '.join(DISTANCES)}")


def act_loss(acts_x: Sequence[torch.Tensor], acts_e: Sequence[torch.Tensor], distances: Sequence[str],
             alphas: Sequence[float]) -> torch.Tensor:
    """Σ_ℓ α_ℓ d_ℓ(φ_ℓ(x), φ_ℓ(e)) over the tapped layers, per image ``(B,)``."""
    if not (len(acts_x) == len(acts_e) == len(distances) == len(alphas)):
        raise ValueError(f"act: {len(acts_x)} taps but {len(distances)} distances and {len(alphas)} alphas")
    return sum(a * activation_distance(ax, ae, d) for ax, ae, d, a in zip(acts_x, acts_e, distances, alphas))


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


def ce_loss(z_e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE(z_e, y) per image."""
    return F.cross_entropy(z_e, y, reduction="none")


def tempered_kl(z_x: torch.Tensor, z_e: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(p_x^T ‖ p_e^T) per image (Hinton et al.'s scaling keeps gradients comparable across T)."""
    lx = F.log_softmax(z_x / temperature, dim=-1)
    le = F.log_softmax(z_e / temperature, dim=-1)
    return temperature ** 2 * (lx.exp() * (lx - le)).sum(dim=-1)


kl_loss = tempered_kl


def area_loss(p: torch.Tensor, target: float | None = None) -> torch.Tensor:
    """Per image ``(B,)``; p is the soft mask ``(B, 1, H, W)``. ``target`` None: mean(p) (the paper).
    ``target`` a in (0, 1): Fong et al. 2019's ranking constraint mean((sort(p) − r_a)²), r_a the
    ascending reference with its last round(a·H·W) entries 1 and the rest 0 (ours, issue 19; the
    same reference as the extremal-perturbation baseline)."""
    if target is None:
        return p.mean(dim=(1, 2, 3))
    return ranking_gap(p, target)


def bin_loss(p: torch.Tensor) -> torch.Tensor:
    """mean(p (1 − p)) per image: 0 for a binary mask, 0.25 for p = 0.5 everywhere."""
    return (p * (1.0 - p)).mean(dim=(1, 2, 3))


def tv_loss(p: torch.Tensor, neighbours: int = 8) -> torch.Tensor:
    """Total variation of the soft mask per image. 4-neighbour: mean|Δv| + mean|Δh|; 8-neighbour adds
    (mean|Δdiag| + mean|Δanti|)/√2."""
    if neighbours not in (4, 8):
        raise ValueError(f"tv neighbours must be 4 or 8, got {neighbours}")
    dims = (1, 2, 3)
    tv = (p[..., 1:, :] - p[..., :-1, :]).abs().mean(dim=dims) + (p[..., :, 1:] - p[..., :, :-1]).abs().mean(dim=dims)
    if neighbours == 8:
        diag = (p[..., 1:, 1:] - p[..., :-1, :-1]).abs().mean(dim=dims)
        anti = (p[..., 1:, :-1] - p[..., :-1, 1:]).abs().mean(dim=dims)
        tv = tv + (diag + anti) / math.sqrt(2.0)
    return tv


@dataclass(frozen=True)
class ShardedGenerator:
    """A generator shared by data-parallel ranks: every rank draws the noise of the whole global
    batch (``global_batch`` rows) and keeps its ``rows``, so the backgrounds equal one process's."""

    generator: torch.Generator
    global_batch: int
    rows: slice


Generators = torch.Generator | Sequence[torch.Generator] | ShardedGenerator | None


def rob_backgrounds(x: torch.Tensor, kinds: Sequence[str], generator: Generators,
                    baseline: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Replacement backgrounds r like ``x`` ``(B, C, H, W)``, in normalized space: ``fill`` the run's
    fill values ``baseline`` (the authors' first background: their fill, normalized zero), ``zero``
    (0), ``gaussian`` N(0, 1), ``uniform`` U(−1, 1). Noise is drawn on the CPU in ``kinds`` order;
    with one generator per image (the batched per-image regime), image i's noise comes from its own."""
    def draw(fn) -> torch.Tensor:
        if isinstance(generator, ShardedGenerator):
            full = fn((generator.global_batch, *x.shape[1:]), generator=generator.generator, device="cpu")
            return full[generator.rows].to(x)
        if isinstance(generator, Sequence):
            if len(generator) != x.shape[0]:
                raise ValueError(f"{len(generator)} generators for {x.shape[0]} images")
            return torch.cat([fn(x[i:i + 1].shape, generator=g, device="cpu") for i, g in enumerate(generator)]).to(x)
        return fn(x.shape, generator=generator, device="cpu").to(x)

    out = []
    for kind in kinds:
        if kind == "fill":
            if baseline is None:
                raise ValueError("rob background 'fill' needs the run's fill values (baseline)")
            out.append(baseline.expand_as(x))
        elif kind == "zero":
            out.append(torch.zeros_like(x))
        elif kind == "gaussian":
            out.append(draw(torch.randn))
        elif kind == "uniform":
            out.append(draw(torch.rand) * 2.0 - 1.0)
        else:
            raise ValueError(f"unknown rob background {kind!r}; allowed: fill, zero, gaussian, uniform")
    return out


def nec_loss(z_x: torch.Tensor, z_c: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, margin − (z_x[y] − z_c[y])) per image: the complement c must lose at least ``margin``
    of the label's logit (abductive necessity)."""
    drop = z_x.gather(1, y[:, None])[:, 0] - z_c.gather(1, y[:, None])[:, 0]
    return F.relu(margin - drop)


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class TermContext:
    """What a term may read. ``x`` ``(B, C, H, W)`` normalized images; ``ref`` the classifier on x;
    ``p`` soft mask ``(B, 1, H, W)``; ``m`` its hard STE mask; ``baseline`` the fill values like x;
    ``generator`` the noise source. After the forward pass: ``z_e`` logits of e ``(B, K)`` and
    ``acts_e`` the tap activations of e (empty unless an active term ``needs_acts``)."""

    x: torch.Tensor
    ref: Reference
    p: torch.Tensor
    m: torch.Tensor
    baseline: torch.Tensor
    cfg: LossConfig
    generator: Generators = None
    z_e: torch.Tensor | None = None
    acts_e: tuple[torch.Tensor, ...] = ()


@dataclass(frozen=True)
class Term:
    """A registered term: ``fn(ctx, z)`` → ``(B,)``, ``z`` the logits ``(B, K)`` of each of its
    ``inputs(ctx)`` (images like x), in order; ``needs_acts``: the objective taps the classifier."""

    name: str
    fn: Callable[[TermContext, list[torch.Tensor]], torch.Tensor]
    inputs: Callable[[TermContext], list[torch.Tensor]] | None = None
    needs_acts: bool = False


TERMS: dict[str, Term] = {}  # registry order: the weighted sum's and the classifier batch's


def term(name: str, *, inputs: Callable[[TermContext], list[torch.Tensor]] | None = None,
         needs_acts: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn(ctx, z) -> (B,)`` as loss term ``name`` (its weight: ``weights.<name>`` in
    every preset of params.yaml)."""
    def register(fn: Callable[[TermContext, list[torch.Tensor]], torch.Tensor]):
        if name in TERMS:
            raise ValueError(f"loss term {name!r} is already registered")
        TERMS[name] = Term(name, fn, inputs, needs_acts)
        return fn
    return register


def check_weights(weights: Any, where: str = "weights") -> dict[str, float]:
    """The weights (a ``LossWeights`` or a mapping) as ``{term: weight}`` in registry order, or a
    :class:`ParamsError` naming ``where`` and the first unknown or missing term: the weights' schema is
    this registry (the whole-file check runs this on every preset and ablation variant)."""
    given = dict(weights.model_extra or {}) if hasattr(weights, "model_extra") else dict(weights)
    unknown = [k for k in given if k not in TERMS]
    if unknown:
        raise ParamsError(f"{where}.{unknown[0]}: not a registered loss term; registered: {', '.join(TERMS)}")
    missing = [k for k in TERMS if k not in given]
    if missing:
        raise ParamsError(f"{where}: no weight for loss term {missing[0]!r} (registered in actmatch.explainer.losses; "
                          "0 switches it off): add it to the root preset")
    return {k: float(given[k]) for k in TERMS}


@term("act", needs_acts=True)
def _act(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    if not ctx.acts_e:
        return ctx.x.new_zeros(ctx.x.shape[0])
    dists, alphas = tap_settings(ctx.cfg, len(ctx.acts_e))
    return act_loss(ctx.ref.acts, ctx.acts_e, dists, alphas)


@term("ce")
def _ce(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    return ce_loss(ctx.z_e, ctx.ref.label)


@term("kl")
def _kl(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    return kl_loss(ctx.ref.logits, ctx.z_e, ctx.cfg.temperature)


@term("area")
def _area(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    return area_loss(ctx.p, ctx.cfg.area_target)


@term("bin")
def _bin(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    return bin_loss(ctx.p)


@term("tv")
def _tv(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    return tv_loss(ctx.p, ctx.cfg.tv_neighbours)


def _rob_inputs(ctx: TermContext) -> list[torch.Tensor]:
    # rob_ste false: the authors' hard threshold, no gradient (method.md §3, a defect behind a flag)
    m_rob = hard_mask(ctx.p, ste=ctx.cfg.rob_ste)
    backgrounds = rob_backgrounds(ctx.x, ctx.cfg.rob_backgrounds, ctx.generator, ctx.baseline)
    return [apply_mask(ctx.x, m_rob, r) for r in backgrounds]


@term("rob", inputs=_rob_inputs)
def _rob(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    """Mean over backgrounds r of T²·KL(p_x^T ‖ p^T(m⊙x + (1−m)⊙r))."""
    return torch.stack([tempered_kl(ctx.ref.logits, z_r, ctx.cfg.temperature) for z_r in z]).mean(0)


def _nec_inputs(ctx: TermContext) -> list[torch.Tensor]:
    return [apply_mask(ctx.x, 1.0 - ctx.m, ctx.baseline)]  # c = (1 − m) ⊙ x + m ⊙ baseline


@term("nec", inputs=_nec_inputs)
def _nec(ctx: TermContext, z: list[torch.Tensor]) -> torch.Tensor:
    return nec_loss(ctx.ref.logits, z[0], ctx.ref.label, ctx.cfg.nec_margin)
