"""Training SyCE / CyCE generators against WGAN-GP critics (method.md §8.1).

The recipe of the authors' code as method.md §8.1 gives it: Adam 1e-4, batch 64, up to 60
epochs, a plateau schedule (factor 0.3) on the validation loss, early stop on it; WGAN-GP with
penalty weight 1. Choices of ours where the summary is silent, each a param: ``critic_steps``
critic updates per generator update (WGAN-GP's usual 5; the authors' value is not in the
summary), the plateau and early-stop patiences, and the validation loss = the generator's
weighted total *without* the realism term (a critic that keeps training makes −D incomparable
from one epoch to the next). The best epoch's weights are the ones returned.

The frozen classifier's labels (c, t) are computed once per image and reused. With
``state_path`` everything needed to continue (nets, optimizers, schedulers, RNG, curves, best
weights, patience) is saved after each epoch and a rerun with the same settings resumes there.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from actmatch.classifiers.pixel import PixelClassifier
from actmatch.syce.losses import SyceWeights, Variant, critic_loss, generator_terms, targets, weighted
from actmatch.syce.models import Translator, build_syce
from actmatch.core.resume import load_state, save_state, state_key

__all__ = ["SyceTrainConfig", "TrainedSyce", "classify", "train_syce"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyceTrainConfig:
    kind: str                      # "binary" (the authors': G_c, D_c per class) or "conditional" (ours, 10-class)
    g_widths: tuple[int, ...]
    d_widths: tuple[int, ...]
    dropout: float
    lr: float
    batch_size: int
    max_epochs: int
    critic_steps: int
    plateau_factor: float
    plateau_patience: int
    early_stop_patience: int


@dataclass
class TrainedSyce:
    generator: Translator
    critic: nn.Module
    curves: dict[str, list[float]]
    best_epoch: int                # 1-based
    epochs_run: int


@torch.no_grad()
def classify(f: PixelClassifier, x: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, t)`` for pixel-space images ``x`` (N, C, H, W): predicted class and runner-up."""
    logits = torch.cat([f(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return targets(logits)


@torch.no_grad()
def _validation(variant: Variant, G: Translator, D: nn.Module, f: PixelClassifier, x: torch.Tensor,
                c: torch.Tensor, t: torch.Tensor, w: SyceWeights, batch_size: int) -> float:
    total = 0.0
    for i in range(0, len(x), batch_size):
        sl = slice(i, i + batch_size)
        terms, _ = generator_terms(variant, G, D, f, x[sl], c[sl], t[sl])
        terms.pop("gan")
        total += float(weighted(terms, w)) * len(x[sl])  # batch means → the mean over all images
    return total / len(x)


def _epoch(variant: Variant, G: Translator, D: nn.Module, f: PixelClassifier, x: torch.Tensor, c: torch.Tensor,
           t: torch.Tensor, w: SyceWeights, cfg: SyceTrainConfig, opt_g: torch.optim.Optimizer,
           opt_d: torch.optim.Optimizer, gen: torch.Generator) -> dict[str, float]:
    G.train()
    D.train()
    sums: dict[str, float] = {}
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    batches = 0
    for i in range(0, len(x), cfg.batch_size):
        idx = perm[i:i + cfg.batch_size]
        xb, cb, tb = x[idx], c[idx], t[idx]
        for _ in range(cfg.critic_steps):
            with torch.no_grad():
                x_a = G(xb, cb, tb)
            d_loss, parts = critic_loss(D, xb, cb, x_a, tb, w.gp, gen)
            if d_loss.requires_grad:  # no real of any target class in this batch: nothing to compare with
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
        D.requires_grad_(False)  # the generator step moves only the generator
        terms, _ = generator_terms(variant, G, D, f, xb, cb, tb)
        total = weighted(terms, w)
        if not torch.isfinite(total):
            raise ValueError(f"SyCE/CyCE generator loss is not finite at batch {i // cfg.batch_size + 1}: "
                             f"{ {k: float(v) for k, v in terms.items()} }")
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        D.requires_grad_(True)
        logged = {k: v.item() for k, v in terms.items()} | {"g_total": total.item(), "d_loss": d_loss.item()}
        for k, v in (logged | parts).items():
            sums[k] = sums.get(k, 0.0) + v
        batches += 1
    return {k: v / batches for k, v in sums.items()}


def train_syce(variant: Variant, f: PixelClassifier, x_train: torch.Tensor, x_val: torch.Tensor, num_classes: int,
             cfg: SyceTrainConfig, w: SyceWeights, seed: int, *, state_path: Path | None = None,
             on_epoch: Callable[[int, dict[str, float]], None] | None = None, progress: bool = True) -> TrainedSyce:
    """Train a generator and critic on pixel-space images ``x_train`` (N, C, S, S) in [0, 1];
    ``x_val`` drives the schedule and the early stop. Device follows ``x_train``."""
    if variant not in ("syce", "cyce"):
        raise ValueError(f"variant must be 'syce' or 'cyce', got {variant!r}")
    dev = x_train.device
    key = state_key("ce", variant, asdict(cfg), asdict(w), seed, num_classes, x_train.shape,
                    float(x_train.double().sum()), float(x_val.double().sum()))
    torch.manual_seed(seed)
    G, D = build_syce(cfg.kind, x_train.shape[1], x_train.shape[-1], num_classes, cfg.g_widths, cfg.d_widths,
                    cfg.dropout)
    G, D = G.to(dev), D.to(dev)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr)
    scheds = [torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
              for o in (opt_g, opt_d)]
    gen = torch.Generator().manual_seed(seed)
    c_tr, t_tr = classify(f, x_train)
    c_va, t_va = classify(f, x_val)
    curves: dict[str, list[float]] = {}
    start, best, best_epoch, bad = 0, float("inf"), 0, 0
    best_state = None
    state = load_state(state_path, key)
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for s, sd in zip(scheds, state["scheds"], strict=True):
            s.load_state_dict(sd)
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        curves, start, best, best_epoch, bad, best_state = (state[k] for k in
                                                            ("curves", "epoch", "best", "best_epoch", "bad",
                                                             "best_state"))
        log.info("resuming %s training at epoch %d", variant, start + 1)
    epoch = start
    bar = tqdm(range(start, cfg.max_epochs), desc=variant, disable=not progress, initial=start, total=cfg.max_epochs)
    for epoch in bar:
        if bad >= cfg.early_stop_patience:
            break
        means = _epoch(variant, G, D, f, x_train, c_tr, t_tr, w, cfg, opt_g, opt_d, gen)
        G.eval()
        D.eval()
        means["val_loss"] = _validation(variant, G, D, f, x_val, c_va, t_va, w, cfg.batch_size)
        means["lr"] = opt_g.param_groups[0]["lr"]
        for s in scheds:
            s.step(means["val_loss"])
        if means["val_loss"] < best:
            best, best_epoch, bad = means["val_loss"], epoch + 1, 0
            best_state = {"G": copy.deepcopy(G.state_dict()), "D": copy.deepcopy(D.state_dict())}
        else:
            bad += 1
        for k, v in means.items():
            curves.setdefault(k, []).append(v)
        bar.set_postfix(val=f"{means['val_loss']:.4f}", best=best_epoch)
        if on_epoch is not None:
            on_epoch(epoch, means)
        save_state(state_path, {"key": key, "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                                 "opt_d": opt_d.state_dict(), "scheds": [s.state_dict() for s in scheds],
                                 "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "curves": curves,
                                 "epoch": epoch + 1, "best": best, "best_epoch": best_epoch, "bad": bad,
                                 "best_state": best_state})
    if best_state is not None:
        G.load_state_dict(best_state["G"])
        D.load_state_dict(best_state["D"])
    G.eval()
    D.eval()
    return TrainedSyce(G, D, curves, best_epoch, len(curves.get("val_loss", [])))
