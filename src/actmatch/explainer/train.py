"""The training regimes of method.md §4.

``per_image`` (the paper): a fresh U-Net per image, Adam, a fixed number of steps.
``amortized``: one U-Net trained over a train split, then one forward pass per held-out image.
``finetune``: the amortized net as the start of a short per-image run.

The original images' logits and activations are computed once (:func:`reference`), never per
step. Randomness comes from seeds derived here (image ``i`` of a per-image run uses
``seed + i``), so a run resumed from its state file ends with the same numbers as an
uninterrupted one on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from actmatch.classifiers.registry import Classifier
from actmatch.core import distributed
from actmatch.config.explainer import AmortizedParams, LossConfig, StepsParams, UNetParams
from actmatch.explainer.losses import TERMS, ShardedGenerator
from actmatch.explainer.objective import Reference, loss_terms, reference, weighted_total
from actmatch.explainer.unet import UNet
from actmatch.core.masks import fill_values, soft_mask
from actmatch.core.resume import load_state, save_state, state_key

__all__ = ["MaskRun", "build_unet", "explain_per_image", "train_amortized", "predict_masks",
           "LossNotFiniteError", "Compute", "autocast", "adam", "ADAM_OPTIONS"]

log = logging.getLogger(__name__)
LOGGED = ("total", *TERMS, "area_hard", "kept")  # every registered loss term, logged automatically


@dataclass
class MaskRun:
    """Soft masks ``(N, 1, H, W)`` float32 on the CPU, per-image terms at the final mask, and the
    mean of each logged quantity per step (per-image regimes) or per epoch (amortized). With
    ``select: smallest_kept``, ``soft`` holds the selected masks and ``last`` the masks after the
    final step (the tables show both: selection on ``kept`` is labelled, never hidden)."""

    soft: torch.Tensor
    final: dict[str, np.ndarray]
    curves: dict[str, list[float]] = field(default_factory=dict)
    last: torch.Tensor | None = None


@dataclass(frozen=True)
class Compute:
    """How the GPU path runs (params ``compute``): autocast precision and memory format. The
    defaults (fp32, contiguous) are the CPU path and change no number."""

    precision: str = "fp32"  # fp32 | bf16 | fp16
    channels_last: bool = False

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Images in channels_last when asked (the stage converts the classifier, we the U-Nets)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def module(self, net: torch.nn.Module) -> torch.nn.Module:
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """fp16 needs loss scaling (bf16 and fp32 do not: the scaler is then a pass-through)."""
        return torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")


@contextlib.contextmanager
def autocast(compute: Compute, device: torch.device) -> Iterator[None]:
    """Mixed precision for the forward passes and the loss; a no-op for fp32."""
    if compute.precision == "fp32":
        yield
        return
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[compute.precision]
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


InitState = dict[str, torch.Tensor] | list[dict[str, torch.Tensor]] | None  # one start for all, or one per image
OnState = Callable[[int, dict[str, torch.Tensor]], None] | None  # (image index, its U-Net's final weights)


class LossNotFiniteError(ValueError):
    """The objective became NaN or infinite; the message names the term(s) and what was kept."""


def _check_finite(terms: dict[str, torch.Tensor], total: torch.Tensor, where: str, kept: str) -> None:
    """Stop before a non-finite loss reaches the optimizer (the weights stay at the last good step)."""
    if torch.isfinite(total).all():
        return
    bad = [k for k, v in terms.items() if not torch.isfinite(v).all()] or ["total"]
    raise LossNotFiniteError(f"the loss turned non-finite at {where}: term(s) {', '.join(bad)}; training stopped, "
                             f"{kept}")


def build_unet(clf: Classifier, cfg: UNetParams) -> UNet:
    return UNet(clf.in_channels, cfg.widths, cfg.bottleneck, cfg.init_area, grid=cfg.grid, padding=cfg.padding)


# torch.optim.Adam's implementation switches for every explainer optimizer (torch's default on the CPU is the
# per-tensor loop). foreach: the same numbers bit for bit (measured), faster one image at a time and no slower
# batched or amortized; fused is not bit-identical. tools/benchmark_batched.py measures them side by side.
ADAM_OPTIONS: dict[str, bool] = {"foreach": True}


def adam(params: Any, lr: float) -> torch.optim.Adam:
    """The explainer's optimizer (per-image, batched per-image, amortized): Adam at ``lr``."""
    return torch.optim.Adam(params, lr=lr, **ADAM_OPTIONS)


@torch.no_grad()
def _final_terms(clf: Classifier, x: torch.Tensor, ref: Reference, p: torch.Tensor, loss: LossConfig,
                 baseline: torch.Tensor, gen: torch.Generator) -> dict[str, np.ndarray]:
    terms = loss_terms(clf.model, clf.taps, x, ref, p, loss, baseline, gen)
    terms["total"] = weighted_total(terms, loss)
    return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in terms.items()}


def explain_per_image(clf: Classifier, x: torch.Tensor, loss: LossConfig, unet: UNetParams, steps: StepsParams,
                      fill: str, seed: int, *, init_state: InitState = None,
                      state_path: Path | None = None, progress: bool = True, compute: Compute = Compute(),
                      on_state: OnState = None) -> MaskRun:
    """Optimize one U-Net per image of ``x`` (N, C, H, W), normalized, on the classifier's device.

    With ``init_state`` every image starts from those weights (the ``finetune`` regime), or image ``i``
    from ``init_state[i]`` (a list: the area ladder's warm start). With ``state_path`` finished images
    are saved after each one and skipped on a rerun. ``on_state(i, weights)`` receives each image's
    final U-Net weights (not for images resumed from the state file)."""
    key = state_key("per_image", loss, unet, steps, fill, seed, init_state is not None, x.shape,
                    float(x.double().sum()))
    state = load_state(state_path, key) or {"key": key, "done": [], "curves": []}
    x = compute.tensor(x)
    ref = reference(clf.model, clf.taps, x)  # once for all images and steps
    baseline = fill_values(x, fill, clf.mean, clf.std)
    bar = tqdm(range(len(x)), desc="per-image masks", disable=not progress, initial=len(state["done"]))
    for i in range(len(state["done"]), len(x)):
        torch.manual_seed(seed + i)
        gen = torch.Generator().manual_seed(seed + i)
        net = build_unet(clf, unet).to(x.device)
        if init_state is not None:
            net.load_state_dict(init_state[i] if isinstance(init_state, list) else init_state)
        compute.module(net)
        opt = adam(net.parameters(), steps.lr)
        scaler = compute.scaler(x.device)
        xi, bi, ri = x[i:i + 1], baseline[i:i + 1], ref.index(slice(i, i + 1))
        curve = {k: [] for k in LOGGED}
        kept_msg = (f"the {i} finished image(s) are kept in {state_path} for a rerun" if state_path
                    else "nothing was saved (no state path)")
        best: tuple[float, torch.Tensor] | None = None  # (hard area, soft mask): smallest non-empty mask that kept y
        for t in range(steps.steps):
            with autocast(compute, x.device):
                p = soft_mask(net(xi)).float()
                terms = loss_terms(clf.model, clf.taps, xi, ri, p, loss, bi, gen)
                total = weighted_total(terms, loss)
            _check_finite(terms, total, f"image {i + 1}, step {len(curve['total']) + 1}", kept_msg)
            opt.zero_grad(set_to_none=True)
            scaler.scale(ramped(total, terms, loss, steps, t).sum()).backward()
            scaler.step(opt)
            scaler.update()
            terms["total"] = total
            for k in LOGGED:
                if k in terms:
                    curve[k].append(float(terms[k].detach()[0]))
            area = float(terms["area_hard"][0])
            if steps.select == "smallest_kept" and terms["kept"][0] > 0 and 0 < area and (best is None or area < best[0]):
                best = (area, p.detach().clone())
            elif steps.select == "lowest_loss" and (best is None or float(total[0].detach()) < best[0]):
                best = (float(total[0].detach()), p.detach().clone())
        with torch.no_grad():
            p = soft_mask(net(xi))
            p_last = p
            if best is not None and steps.select == "smallest_kept":
                last_kept = bool(loss_terms(clf.model, clf.taps, xi, ri, p, loss, bi, gen)["kept"][0] > 0)
                if not last_kept or best[0] < float((p > 0.5).float().mean()):
                    p = best[1]
            elif best is not None:  # lowest_loss: the final mask competes on its own loss
                last_total = float(weighted_total(loss_terms(clf.model, clf.taps, xi, ri, p, loss, bi, gen), loss)[0])
                if best[0] < last_total:
                    p = best[1]
        final = _final_terms(clf, xi, ri, p, loss, bi, gen)
        if on_state is not None:
            on_state(i, {k: v.detach().clone() for k, v in net.state_dict().items()})
        state["done"].append({"soft": p.cpu().float(), "last": p_last.cpu().float(), "final": final})
        state["curves"].append(curve)
        save_state(state_path, state)
        bar.update(1)
    bar.close()
    done = state["done"]
    keys = done[0]["final"].keys() if done else []
    curves = {k: np.mean([c[k] for c in state["curves"]], axis=0).tolist() for k in LOGGED
              if state["curves"] and state["curves"][0][k]}
    return _collect(done, keys, curves, steps)


def ramped(total: torch.Tensor, terms: dict[str, torch.Tensor], loss: LossConfig, steps: StepsParams,
           t: int) -> torch.Tensor:
    """The objective optimized at step ``t``: ``total`` with the area term's weight scaled by
    area_ramp^(t / (steps − 1) − 1) (from 1 / area_ramp at the first step to 1 at the last)."""
    if steps.area_ramp == 1.0 or "area" not in terms:
        return total
    scale = steps.area_ramp ** (t / max(1, steps.steps - 1) - 1.0)
    return total + (scale - 1.0) * loss.weights.area * terms["area"]


def _collect(done: list[dict[str, Any]], keys: Any, curves: dict[str, list[float]], steps: StepsParams) -> MaskRun:
    return MaskRun(torch.cat([d["soft"] for d in done]) if done else torch.empty(0),
                   {k: np.concatenate([d["final"][k] for d in done]) for k in keys}, curves,
                   torch.cat([d["last"] for d in done]) if done and steps.select != "last" else None)


def train_amortized(clf: Classifier, x: torch.Tensor, loss: LossConfig, unet: UNetParams, cfg: AmortizedParams,
                    fill: str, seed: int, *, state_path: Path | None = None,
                    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                    progress: bool = True, compute: Compute = Compute()) -> tuple[UNet, dict[str, list[float]]]:
    """Train one U-Net over ``x`` (N, C, H, W) for ``cfg.epochs`` epochs. With ``state_path`` the
    net, optimizer and random state are saved after each epoch and a rerun resumes there.

    Inside a torch.distributed process group (torchrun) the net is wrapped in DDP and each rank
    trains on its shard of every global batch of ``cfg.batch_size``; the result equals one
    process's (actmatch.core.distributed). Only rank 0 writes the state file and calls ``on_epoch``."""
    info = distributed.current()
    key = state_key("amortized", loss, unet, cfg, fill, seed, x.shape, float(x.double().sum()))
    torch.manual_seed(seed)
    net = build_unet(clf, unet).to(x.device)
    x = compute.tensor(x)
    compute.module(net)
    opt = adam(net.parameters(), cfg.lr)
    scaler = compute.scaler(x.device)
    gen = torch.Generator().manual_seed(seed)
    ref = reference_batched(clf, x, cfg.batch_size)  # once: the classifier is frozen
    baseline = fill_values(x, fill, clf.mean, clf.std)
    curves: dict[str, list[float]] = {k: [] for k in LOGGED}
    start = 0
    state = load_state(state_path, key)
    if state is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        curves, start = state["curves"], state["epoch"]
        log.info("resuming amortized training at epoch %d of %d", start + 1, cfg.epochs)
    model = net
    if info.world > 1:  # gradients averaged over ranks after each backward
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[x.device] if x.device.type == "cuda" else None)
    for epoch in tqdm(range(start, cfg.epochs), desc="amortized", disable=not progress or not info.main,
                      initial=start, total=cfg.epochs):
        net.train()
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        sums: dict[str, float] = {}
        kept_msg = (f"the last good checkpoint (after epoch {epoch}) is kept in {state_path}; a rerun resumes there"
                    if state_path and epoch > 0 else "no epoch had finished, nothing was kept")
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            noise: torch.Generator | ShardedGenerator = gen
            if info.world > 1:  # this rank's rows; noise drawn for the whole batch, as one process would
                rows = distributed.shard(len(idx), info)
                idx, noise = idx[rows], ShardedGenerator(gen, len(idx), rows)
            with autocast(compute, x.device):
                p = soft_mask(model(x[idx])).float()
                terms = loss_terms(clf.model, clf.taps, x[idx], ref.index(idx), p, loss, baseline[idx], noise)
                total = weighted_total(terms, loss)
            _check_finite(terms, total, f"epoch {epoch + 1}, batch {i // cfg.batch_size + 1}", kept_msg)
            opt.zero_grad(set_to_none=True)
            # the global batch mean; DDP averages the ranks' gradients, hence × world / global batch
            scaled = total.mean() if info.world == 1 else total.sum() * info.world / len(perm[i:i + cfg.batch_size])
            scaler.scale(scaled).backward()
            scaler.step(opt)
            scaler.update()
            terms["total"] = total
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().sum())
        sums = distributed.all_reduce_sum(sums, info)
        means = {k: v / len(x) for k, v in sums.items()}
        for k in LOGGED:
            if k in means:
                curves[k].append(means[k])
        if on_epoch is not None and info.main:
            on_epoch(epoch, means)
        if info.main:
            save_state(state_path, {"key": key, "net": net.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1,
                                     "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "curves": curves})
    net.eval()
    return net, {k: v for k, v in curves.items() if v}


@torch.no_grad()
def reference_batched(clf: Classifier, x: torch.Tensor, batch_size: int) -> Reference:
    parts = [reference(clf.model, clf.taps, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return Reference(torch.cat([r.logits for r in parts]), torch.cat([r.label for r in parts]),
                     tuple(torch.cat([r.acts[j] for r in parts]) for j in range(len(clf.taps))))


@torch.no_grad()
def predict_masks(clf: Classifier, net: UNet, x: torch.Tensor, loss: LossConfig, fill: str, seed: int,
                  batch_size: int = 256) -> MaskRun:
    """One forward pass of the amortized net per image; terms scored at the predicted masks."""
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    softs, finals = [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        p = soft_mask(net(xb))
        ref = reference(clf.model, clf.taps, xb)
        finals.append(_final_terms(clf, xb, ref, p, loss, fill_values(xb, fill, clf.mean, clf.std), gen))
        softs.append(p.cpu().float())
    return MaskRun(torch.cat(softs), {k: np.concatenate([f[k] for f in finals]) for k in finals[0]})
