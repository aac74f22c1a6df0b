"""Losses of SyCE and CyCE (Charachon et al., arXiv 2106.10947; method.md §8.1), one function per term.

Notation: x an input in pixel space [0, 1], c = the frozen classifier's predicted class,
t = the target class (binary: 1 − c; our 10-class extension: the runner-up class),
``G(x, c, t)`` the generator that moves a class-c image to class t (binary: the authors' G_c;
10-class: one network conditioned on t), ``D(x, k)`` the critic of class-k images.

SyCE (symmetric), with x_a = G(x, c, t):
    L_G = w_adv·CE(f(x_a), t) + w_rec_same·R(G(x_a, c, t), x) + w_rec_other·R(G(x_a, t, c), x)
        + w_cls_same·CE(f(G(x_a, c, t)), c) + w_cls_other·CE(f(G(x_a, t, c)), c) − w_gan·mean D(x_a, t)
    E(x) = |G(x_a, c, t) − x_a|          (the authors' |G_c(G_c(x)) − G_c(x)|)
CyCE (cyclic):
    L_G = w_adv·CE(f(x_a), t) + w_rec_cycle·R(G(x_a, t, c), x) + w_cls_cycle·CE(f(G(x_a, t, c)), c)
        − w_gan·mean D(x_a, t)
    E(x) = |x − x_a|
with R(a, b) = MSE(a, b) + MAE(a, b). The authors' classifier has one sigmoid output and uses
BCE; ours are softmax classifiers, and the binary one outputs the logits (0, z), for which
softmax cross-entropy equals the authors' BCE on sigmoid(z) exactly (tested).

Our reading where method.md's summary is terse, stated: "weights 10 and 2" are the same- and
other-generator reconstructions (each MSE + MAE), "0.01 and 0.005" their classification
terms; the critic of the realism term judges images of the target class t (binary: D_c judges
G_c's outputs, which are class 1 − c = t), its real samples being the batch's inputs the
classifier puts in class t.

Critic (WGAN-GP, Gulrajani et al. 2017): L_D = mean D(x_a, t) − mean D(x_r, t)
+ w_gp·mean (‖∇D(x̂, t)‖₂ − 1)², x̂ = u·x_r + (1 − u)·x_a, u ~ U(0, 1) per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from actmatch.classifiers.pixel import PixelClassifier

__all__ = ["SyceWeights", "reconstruction", "classification", "generator_terms", "weighted", "critic_loss",
           "gradient_penalty", "explanation", "targets", "match_reals", "PixelClassifier", "Variant"]

Variant = Literal["syce", "cyce"]
GenFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
CriticFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SyceWeights:
    """Every term's weight (method.md §8.1 gives the authors' values; params.yaml holds ours)."""

    adv: float
    rec_same: float
    rec_other: float
    cls_same: float
    cls_other: float
    rec_cycle: float
    cls_cycle: float
    gan: float
    gp: float


def reconstruction(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R(a, b) = MSE + MAE, each a mean over all elements. Scalar."""
    return F.mse_loss(a, b) + F.l1_loss(a, b)


def classification(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``(B, K)`` logits against ``(B,)`` class indices (= BCE for logits (0, z))."""
    return F.cross_entropy(logits, target)


def targets(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, t)``: the predicted class and the target, the runner-up class (binary: 1 − c)."""
    top2 = logits.topk(2, dim=1).indices
    return top2[:, 0], top2[:, 1]


def generator_terms(variant: Variant, G: GenFn, D: CriticFn, f: Callable[[torch.Tensor], torch.Tensor],
                    x: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
    """Unweighted terms (scalars; ``gan`` is −mean D) and the images ``x_a`` (adversarial) and ``x_st`` (stable)."""
    x_a = G(x, c, t)
    terms = {"adv": classification(f(x_a), t), "gan": -D(x_a, t).mean()}
    back = G(x_a, t, c)  # through the other generator (SyCE) = the cyclic reconstruction (CyCE)
    if variant == "syce":
        same = G(x_a, c, t)
        terms |= {"rec_same": reconstruction(same, x), "rec_other": reconstruction(back, x),
                  "cls_same": classification(f(same), c), "cls_other": classification(f(back), c)}
        stable = same
    elif variant == "cyce":
        terms |= {"rec_cycle": reconstruction(back, x), "cls_cycle": classification(f(back), c)}
        stable = back
    else:
        raise ValueError(f"variant must be 'syce' or 'cyce', got {variant!r}")
    return terms, {"x_a": x_a, "x_st": stable}


def weighted(terms: dict[str, torch.Tensor], w: SyceWeights) -> torch.Tensor:
    """Σ w_k · term_k over the terms present."""
    return sum(getattr(w, k) * v for k, v in terms.items())


def match_reals(real_cls: torch.Tensor, fake_cls: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """For each fake, the index of a random real of the same class, or −1 where the batch has none."""
    out = torch.full_like(fake_cls, -1)
    for k in torch.unique(fake_cls).tolist():
        pool = (real_cls == k).nonzero(as_tuple=True)[0]
        where = (fake_cls == k).nonzero(as_tuple=True)[0]
        if len(pool):
            pick = torch.randint(len(pool), (len(where),), generator=gen, device="cpu").to(pool.device)
            out[where] = pool[pick]
    return out


def gradient_penalty(D: CriticFn, real: torch.Tensor, fake: torch.Tensor, cls: torch.Tensor,
                     gen: torch.Generator | None = None) -> torch.Tensor:
    """mean (‖∇_x̂ D(x̂, cls)‖₂ − 1)² on x̂ = u·real + (1 − u)·fake, u ~ U(0, 1) per sample."""
    u = torch.rand(len(real), 1, 1, 1, generator=gen, device="cpu").to(real)
    mix = (u * real + (1 - u) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mix, cls).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(D: CriticFn, x: torch.Tensor, c: torch.Tensor, x_a: torch.Tensor, t: torch.Tensor, gp_weight: float,
                gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """WGAN-GP critic loss on fakes ``x_a`` (class t) against the batch's reals of class t.

    Fakes whose class has no real in the batch are left out of both means."""
    idx = match_reals(c, t, gen)
    keep = idx >= 0
    if not keep.any():
        zero = x.sum() * 0.0
        return zero, {"d_fake": 0.0, "d_real": 0.0, "gp": 0.0}
    real, fake, k = x[idx[keep]], x_a[keep].detach(), t[keep]
    d_fake, d_real = D(fake, k).mean(), D(real, k).mean()
    gp = gradient_penalty(D, real, fake, k, gen)
    loss = d_fake - d_real + gp_weight * gp
    return loss, {"d_fake": d_fake.item(), "d_real": d_real.item(), "gp": gp.item()}


def explanation(variant: Variant, x: torch.Tensor, x_a: torch.Tensor, x_st: torch.Tensor) -> torch.Tensor:
    """The explanation map ``(B, 1, H, W)``, channel mean: SyCE |x_st − x_a|, CyCE |x − x_a|."""
    if variant == "syce":
        return (x_st - x_a).abs().mean(1, keepdim=True)
    if variant == "cyce":
        return (x - x_a).abs().mean(1, keepdim=True)
    raise ValueError(f"variant must be 'syce' or 'cyce', got {variant!r}")
