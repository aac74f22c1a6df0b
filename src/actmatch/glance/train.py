"""Training the GLANCE twin surrogate (method.md §8.2) and measuring it.

Per batch: the frozen classifier's penultimate features h, logits and tapped activations of the
input (no gradient); z = E(h); x̂ = G(z). The discriminator steps on the non-saturating loss plus
the R1 penalty; then the encoder and generator step on the weighted sum of the terms of
:mod:`.surrogate`. With ``state_path`` everything needed to continue (nets, optimizers, RNG,
curves) is saved after each epoch, and a rerun with the same settings resumes there.

Measures: ``alignment_r2`` (per context feature, the squared correlation between its aligned dim
and the standardized feature, i.e. the R² of a linear fit) and ``fidelity`` (label agreement of
the classifier on the noise-free reconstruction x̂ with its label on x).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from actmatch.classifiers.taps import tapped
from actmatch.core.resume import load_state, save_state, state_key
from actmatch.glance import surrogate as S

__all__ = ["SurrogateConfig", "TrainedSurrogate", "train_surrogate", "encode", "decode", "alignment_r2",
           "fidelity"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SurrogateConfig:
    free: int            # free latent dims (the aligned ones are one per context feature)
    width: int           # generator channels at 7 px
    style_dim: int
    lr: float
    batch_size: int
    epochs: int
    tap: str             # the classifier layer whose activations are matched


@dataclass
class TrainedSurrogate:
    encoder: S.Encoder
    generator: S.StyleGenerator
    discriminator: S.Discriminator
    curves: dict[str, list[float]]


class _Norm(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _classify(model: nn.Module, tap: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Penultimate features, logits and the tap's activation of normalized ``x``, one forward."""
    with tapped(model, [tap]) as taps:
        h, logits = S.penultimate(model, x)
        act = taps.ordered()[0]
    return h, logits, act


def train_surrogate(model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], x: torch.Tensor,
                    context: torch.Tensor, cfg: SurrogateConfig, w: S.SurrogateWeights, seed: int, *,
                    state_path: Path | None = None, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                    progress: bool = True) -> TrainedSurrogate:
    """Train on pixel-space ``x`` (N, C, S, S) in [0, 1] with standardized ``context`` (N, A); ``model``
    is the frozen classifier on normalized inputs. Device follows ``x``."""
    if len(context) != len(x):
        raise ValueError(f"{len(x)} images but {len(context)} rows of context features")
    dev = x.device
    norm = _Norm(mean, std).to(dev)
    n_aligned = context.shape[1]
    key = state_key("glance", asdict(cfg), asdict(w), seed, tuple(x.shape), float(x.double().sum()),
                    float(context.double().sum()))
    torch.manual_seed(seed)
    with torch.no_grad():
        feat_dim = _classify(model, cfg.tap, norm(x[:1]))[0].shape[1]
    E = S.Encoder(feat_dim, n_aligned, cfg.free).to(dev)
    G = S.StyleGenerator(n_aligned + cfg.free, x.shape[1], x.shape[-1], cfg.width, cfg.style_dim).to(dev)
    D = S.Discriminator(x.shape[1], x.shape[-1]).to(dev)
    opt_g = torch.optim.Adam([*E.parameters(), *G.parameters()], lr=cfg.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
    gen = torch.Generator().manual_seed(seed)
    curves: dict[str, list[float]] = {}
    start = 0
    state = load_state(state_path, key)
    if state is not None:
        for net, k in ((E, "E"), (G, "G"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            net.load_state_dict(state[k])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        curves, start = state["curves"], state["epoch"]
        log.info("resuming the surrogate at epoch %d", start + 1)
    for epoch in tqdm(range(start, cfg.epochs), desc="surrogate", disable=not progress, initial=start,
                      total=cfg.epochs):
        sums: dict[str, float] = {}
        perm = torch.randperm(len(x), generator=gen).to(dev)
        batches = 0
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb, cb = x[idx], context[idx]
            with torch.no_grad():
                h, logits, act = _classify(model, cfg.tap, norm(xb))
            z = E(h)
            x_hat = G(z, generator=gen)
            d_loss = S.gan_discriminator(D(xb), D(x_hat.detach())) + w.r1 * S.r1_penalty(D, xb)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            D.requires_grad_(False)
            _, logits_hat, act_hat = _classify(model, cfg.tap, norm(x_hat))
            terms = {"rec": S.l1_reconstruction(x_hat, xb), "feat": S.feature_matching(act_hat, act),
                     "kl": S.logit_kl(logits, logits_hat, w.temperature), "gan": S.gan_generator(D(x_hat)),
                     "align": S.alignment(z[:, :n_aligned], cb), "decor": S.decorrelation(z)}
            total = sum(getattr(w, k) * v for k, v in terms.items())
            if not torch.isfinite(total):
                raise ValueError(f"surrogate loss is not finite at epoch {epoch + 1}: "
                                 f"{ {k: float(v) for k, v in terms.items()} }")
            opt_g.zero_grad(set_to_none=True)
            total.backward()
            opt_g.step()
            D.requires_grad_(True)
            for k, v in ({k: v.item() for k, v in terms.items()} | {"total": total.item(), "d_loss": d_loss.item()}
                         ).items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
        means = {k: v / batches for k, v in sums.items()}
        for k, v in means.items():
            curves.setdefault(k, []).append(v)
        if on_epoch is not None:
            on_epoch(epoch, means)
        save_state(state_path, {"key": key, "E": E.state_dict(), "G": G.state_dict(), "D": D.state_dict(),
                                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "gen": gen.get_state(),
                                 "torch_rng": torch.get_rng_state(), "curves": curves, "epoch": epoch + 1})
    for net in (E, G, D):
        net.eval().requires_grad_(False)
    return TrainedSurrogate(E, G, D, curves)


@torch.no_grad()
def encode(model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], E: S.Encoder, x: torch.Tensor,
           batch_size: int = 512) -> torch.Tensor:
    """z of pixel-space images ``x``."""
    norm = _Norm(mean, std).to(x.device)
    return torch.cat([E(S.penultimate(model, norm(x[i:i + batch_size]))[0]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def decode(G: S.StyleGenerator, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Noise-free images of latents ``z``."""
    return torch.cat([G(z[i:i + batch_size], noise=False) for i in range(0, len(z), batch_size)])


def alignment_r2(z_aligned: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Per feature k, corr(z_k, c_k)²: the R² of the best linear fit of c_k from z_k (NaN if constant)."""
    out = []
    for k in range(context.shape[1]):
        a, b = z_aligned[:, k], context[:, k]
        out.append(float(np.corrcoef(a, b)[0, 1] ** 2) if a.std() > 0 and b.std() > 0 else float("nan"))
    return np.array(out)


@torch.no_grad()
def fidelity(model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], E: S.Encoder, G: S.StyleGenerator,
             x: torch.Tensor) -> float:
    """Fraction of images whose noise-free reconstruction the classifier labels like the input."""
    norm = _Norm(mean, std).to(x.device)
    x_hat = decode(G, encode(model, mean, std, E, x))
    return float((model(norm(x_hat)).argmax(1) == model(norm(x)).argmax(1)).float().mean())
