"""The explainer stages' library side: one run of an explainer regime, once per seed, each seed's
outputs in ``<out>/seed<k>/`` (method.md §4). The images are chosen by ``data_seed`` only, so every
seed of every regime explains the same evaluation images; the amortized net trains on a seeded,
class-stratified subset listed in ``train_ids.csv``.

Per seed folder: ``masks.npz`` (float32 soft + bool hard masks per regime; a regime selected on
``kept`` also stores its last mask as ``<regime>_last``; a per-image run with an area ladder stores the
chosen rung's masks and each image's rungs in ``ladder.json``), ``summary.csv``, ``config.yaml``, and for
the amortized regime ``explainer.pt`` and ``train_ids.csv``: bytes that depend only on the inputs.
Training curves go to ``<live>/seed<k>/`` (dvclive) and wall times to the run's timing file
(:mod:`actmatch.explainer.timing`), both outside the output folder. Every seed resumes from its own
state file. Each seed folder also holds ``convergence.json``: every regime's convergence verdict
(:mod:`actmatch.explainer.convergence`), which the evaluation reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from dvclive import Live

from actmatch.classifiers.registry import Classifier
from actmatch.config.explainer import ExplainerRun, LossConfig, StepsParams
from actmatch.core import distributed
from actmatch.core.figures import training_curves
from actmatch.core.io import atomic_dir, write_json
from actmatch.core.provenance import machine
from actmatch.core.stage import epoch_logger
from actmatch.data.store import ImageDataset
from actmatch.explainer.api import save_explainer, summarize
from actmatch.explainer.batched import explain_per_image_batched
from actmatch.explainer.convergence import verdict
from actmatch.explainer.inputs import load_inputs
from actmatch.explainer.timing import write_timing
from actmatch.explainer.ladder import explain_ladder, write_ladder
from actmatch.explainer.outputs import (eval_split, seed_dir, train_subset, write_config, write_ids, write_masks,
                                        write_summary)
from actmatch.explainer.train import Compute, MaskRun, explain_per_image, predict_masks, train_amortized

__all__ = ["RunContext", "run_amortized", "run_per_image"]


@dataclass(frozen=True)
class RunContext:
    """Where a stage writes and how it computes (the same for every seed of the run)."""

    out: Path
    live: Path
    state: Path
    metrics: Path | None = None  # per seed and regime: label kept, median area, n (DVC metrics)
    compute: Compute = Compute()
    loader_workers: int = 0
    per_image_batch: int = 1
    progress: bool = True
    timing: Path | None = None  # wall times per seed (results/timing/<stage>/<run>.json), outside ``out``
    key: str = ""  # the run's key in params.yaml (an amortized run's key is its group)


def _masks(name: str, res: MaskRun) -> dict[str, torch.Tensor]:
    return {name: res.soft} | ({f"{name}_last": res.last} if res.last is not None else {})


def _write_metrics(ctx: RunContext, per_seed: dict[str, dict[str, Any]]) -> None:
    if ctx.metrics is not None:
        write_json(ctx.metrics, per_seed)


def _verdicts(masks: dict[str, MaskRun], curves: dict[str, dict[str, list[float]]] | None = None) -> dict[str, dict]:
    """``convergence.json``: per regime, :func:`~actmatch.explainer.convergence.verdict` of its final masks
    (the last mask of a selected regime) and its objective's curve (``curves`` overrides a regime's own)."""
    curves = curves or {}
    return {name: verdict(res.last if res.last is not None else res.soft,
                          curves.get(name, res.curves).get("total", [])) for name, res in masks.items()}


def _brief(frames: list[pd.DataFrame]) -> dict[str, dict[str, float]]:
    return {f["regime"].iloc[0]: {"kept": float(f["kept"].mean()), "median_area": float(f["area"].median()),
                                  "n": len(f)} for f in frames}


def _summaries(clf: Classifier, x: torch.Tensor, masks: dict[str, MaskRun], run: ExplainerRun, ids: list[str],
               labels: Any) -> list[pd.DataFrame]:
    frames = []
    for name, res in masks.items():
        frames.append(summarize(clf, x, res.soft, run.fill, ids, labels, res.final).assign(regime=name))
        if res.last is not None:
            frames.append(summarize(clf, x, res.last, run.fill, ids, labels).assign(regime=f"{name}_last"))
    return frames


def _per_image(clf: Classifier, x: torch.Tensor, loss: LossConfig, run: ExplainerRun, steps: StepsParams, seed: int,
               ctx: RunContext, state: Path, init_state: dict[str, torch.Tensor] | None = None) -> MaskRun:
    """One U-Net per image (the per-image and finetune regimes): ``ctx.per_image_batch`` images at once
    (explainer.batched; the same masks to float tolerance) or, at 1, one at a time. Both write the same
    state file, so either resumes the other's."""
    if ctx.per_image_batch > 1:
        return explain_per_image_batched(clf, x, loss, run.unet, steps, run.fill, seed, chunk=ctx.per_image_batch,
                                         init_state=init_state, state_path=state, progress=ctx.progress,
                                         compute=ctx.compute)
    return explain_per_image(clf, x, loss, run.unet, steps, run.fill, seed, init_state=init_state, state_path=state,
                             progress=ctx.progress, compute=ctx.compute)


def run_amortized(clf: Classifier, ds: ImageDataset, run: ExplainerRun, loss: LossConfig, seeds: list[int],
                  data_seed: int, ctx: RunContext) -> None:
    """The amortized regime (and finetune from it) of ``run`` once per seed."""
    dist_info = distributed.current()
    device = next(clf.model.parameters()).device
    train = train_subset(ds, run.amortized.max_train, data_seed)
    x_train = load_inputs(clf, ds.images, train, device, ctx.loader_workers)
    idx = eval_split(ds, run.eval_images, data_seed, run.eval_per_class)
    x = load_inputs(clf, ds.images, idx, device, ctx.loader_workers)
    ids = [str(ds.index["id"].iloc[i]) for i in idx]
    brief: dict[str, Any] = {}
    times: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        state = ctx.state.with_name(f"{ctx.state.name}-seed{seed}")
        # a part resumed from a state file (a killed run) did only the rest of its work: its time is not its cost
        resumed = [p for p in ("amortized", "finetune") if state.with_suffix(f".{p}").exists()]
        start = time.perf_counter()
        if not dist_info.main:  # other ranks only help train; rank 0 predicts and writes
            train_amortized(clf, x_train, loss, run.unet, run.amortized, run.fill, seed,
                            state_path=state.with_suffix(".amortized"), progress=False, compute=ctx.compute)
            continue
        with Live(dir=str(seed_dir(ctx.live, seed)), save_dvc_exp=False, dvcyaml=False,
                  resume=state.with_suffix(".amortized").exists()) as live:
            net, curves = train_amortized(clf, x_train, loss, run.unet, run.amortized, run.fill, seed,
                                          state_path=state.with_suffix(".amortized"),
                                          on_epoch=epoch_logger(live, "amortized"), progress=ctx.progress,
                                          compute=ctx.compute)
            t_train = time.perf_counter() - start
            live.log_image("curves.png", training_curves(curves, "epoch"))
            t0 = time.perf_counter()
            masks = {"amortized": predict_masks(clf, net, x, loss, run.fill, seed)}
            t_pred = time.perf_counter() - t0
            t_ft = None
            if run.finetune is not None:
                t0 = time.perf_counter()
                masks["finetune"] = _per_image(clf, x, loss, run, run.finetune, seed, ctx,
                                               state.with_suffix(".finetune"), init_state=net.state_dict())
                t_ft = time.perf_counter() - t0
            frames = _summaries(clf, x, masks, run, ids, ds.labels[idx])
            brief[f"seed{seed}"] = _brief(frames)
            live.summary.update(brief[f"seed{seed}"])
        with atomic_dir(seed_dir(ctx.out, seed)) as tmp:
            save_explainer(tmp / "explainer.pt", net.cpu(), run, loss, clf, {"train_images": len(train), "seed": seed})
            net.to(device)
            write_ids(tmp / "train_ids.csv", ds, train)
            write_masks(tmp / "masks.npz", ids, **{k: v for n, r in masks.items() for k, v in _masks(n, r).items()})
            write_summary(tmp / "summary.csv", frames)
            write_config(tmp / "config.yaml", run, loss, classifier=clf.name, seed=seed, data_seed=data_seed)
            write_json(tmp / "convergence.json", _verdicts(masks, {"amortized": curves}))
        times[f"seed{seed}"] = {"train_seconds": t_train, "amortized_ms_per_image": 1000 * t_pred / len(idx),
                                "finetune_seconds": t_ft, "images": len(idx),
                                "finetune_ms_per_image": None if t_ft is None else 1000 * t_ft / len(idx),
                                "total_seconds": time.perf_counter() - start, "resumed": resumed}
    if dist_info.main:
        _write_metrics(ctx, {**brief, "machine": machine(device)})
        write_timing(ctx.timing, "train_explainer", ctx.key, device, times, run=ctx.key,
                     regimes=["amortized"] + (["finetune"] if run.finetune is not None else []))
    _clear_states(ctx, seeds, (".amortized", ".finetune"))


def run_per_image(clf: Classifier, ds: ImageDataset, run: ExplainerRun, loss: LossConfig, seeds: list[int],
                  data_seed: int, ctx: RunContext) -> None:
    """The per-image regime of ``run`` (a fresh U-Net per image) once per seed."""
    device = next(clf.model.parameters()).device
    idx = eval_split(ds, run.eval_images, data_seed, run.eval_per_class)
    x = load_inputs(clf, ds.images, idx, device, ctx.loader_workers)
    ids = [str(ds.index["id"].iloc[i]) for i in idx]
    brief: dict[str, Any] = {}
    times: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        state = ctx.state.with_name(f"{ctx.state.name}-seed{seed}")
        resumed = ["per_image"] if state.exists() else []  # a resumed seed's time is not its cost
        start = time.perf_counter()
        ladder = None
        if run.per_image.ladder is not None:  # the area ladder (issue 29): the CLI's implementation
            ladder = explain_ladder(clf, x, loss, run.unet, run.per_image, run.fill, seed, run.per_image.ladder,
                                    keep_ratio=run.per_image.keep_ratio, rung_steps=run.per_image.rung_steps,
                                    chunk=ctx.per_image_batch, state_path=state, progress=ctx.progress,
                                    compute=ctx.compute)
            res = ladder.masks
        else:
            res = _per_image(clf, x, loss, run, run.per_image, seed, ctx, state)
        seconds = time.perf_counter() - start
        frames = _summaries(clf, x, {run.regime: res}, run, ids, ds.labels[idx])
        with atomic_dir(seed_dir(ctx.out, seed)) as tmp:
            write_masks(tmp / "masks.npz", ids, **_masks(run.regime, res))
            write_summary(tmp / "summary.csv", frames)
            if ladder is not None:
                write_ladder(tmp / "ladder.json", ids, ladder, clf.class_names)
            write_config(tmp / "config.yaml", run, loss, classifier=clf.name, seed=seed, data_seed=data_seed)
            write_json(tmp / "convergence.json", _verdicts({run.regime: res}))
        times[f"seed{seed}"] = {"seconds": seconds, "images": len(idx), "ms_per_image": 1000 * seconds / len(idx), "resumed": resumed,
                                "batch": max(1, ctx.per_image_batch)}
        with Live(dir=str(seed_dir(ctx.live, seed)), save_dvc_exp=False, dvcyaml=False) as live:
            for step in range(len(res.curves["total"])):  # mean over images at each step
                for k, v in res.curves.items():
                    live.log_metric(f"per_image/{k}", v[step])
                live.next_step()
            live.log_image("curves.png", training_curves(res.curves, "step (mean over images)"))
            brief[f"seed{seed}"] = _brief(frames)
            live.summary.update(brief[f"seed{seed}"])
    _write_metrics(ctx, {**brief, "machine": machine(device)})
    write_timing(ctx.timing, "explain_images", run.group, device, times, regime=run.regime, run=ctx.key)
    _clear_states(ctx, seeds, ("",))


def _clear_states(ctx: RunContext, seeds: list[int], suffixes: tuple[str, ...]) -> None:
    """State files go only when every seed is written: DVC empties the output folder before a rerun, so
    a kill in seed k must find the finished seeds' states (a finished state resumes at its end)."""
    for seed in seeds:
        state = ctx.state.with_name(f"{ctx.state.name}-seed{seed}")
        for suffix in suffixes:
            (state.with_suffix(suffix) if suffix else state).unlink(missing_ok=True)
