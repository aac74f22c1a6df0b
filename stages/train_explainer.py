"""DVC stage ``train_explainer@<run>``: one U-Net per classifier trained over the train split
(amortized regime), masks for the held-out evaluation images in one forward pass, and the
finetune regime (k per-image steps from the amortized net). Checkpoint, masks, summary and
config in --out (results/explainers/<run>/amortized/), curves in --live. Resumes by epoch."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dvclive import Live

from actmatch import distributed
from actmatch.classifiers import load_classifier_dir
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.explainer.api import save_explainer, summarize
from actmatch.explainer.outputs import eval_split, write_config, write_masks, write_summary
from actmatch.explainer.inputs import load_inputs
from actmatch.explainer.train import Compute, explain_per_image, predict_masks, train_amortized
from actmatch.io import atomic_dir, write_json
from actmatch.report.figures import training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    # not --run: under torchrun (launcher.train_explainer) argparse would read it as an abbreviation of
    # torchrun's own --run-path and refuse it as ambiguous
    ap.add_argument("--amortized-run", dest="run", required=True, help="a key of explainer.amortized_runs")
    for flag in ("--classifier", "--data", "--out", "--live", "--state"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.run not in params.explainer.amortized_runs:
        raise KeyError(f"explainer.amortized_runs has no run {args.run!r}; known: {sorted(params.explainer.amortized_runs)}")
    run = params.explainer.amortized_runs[args.run]
    loss, seed, prog = params.explainer.loss(run.preset), params.seed, not args.no_progress
    cp = params.compute
    compute = Compute(cp.precision, cp.channels_last)
    dist_info, device = distributed.init_from_env(resolve_device(params.device))  # torchrun: one rank per GPU
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    compute.module(clf.model)
    ds = load_dataset(args.data)
    train = ds.split_indices("train")[: run.amortized.max_train]
    x_train = load_inputs(clf, ds.images, train, device, cp.loader_workers)
    idx = eval_split(ds, run.eval_images, seed, run.eval_per_class)
    x = load_inputs(clf, ds.images, idx, device, cp.loader_workers)
    ids = [str(ds.index["id"].iloc[i]) for i in idx]
    state, out = Path(args.state), Path(args.out)
    start = time.perf_counter()
    if not dist_info.main:  # other ranks only help train; rank 0 predicts and writes
        train_amortized(clf, x_train, loss, run.unet, run.amortized, run.fill, seed,
                        state_path=state.with_suffix(".amortized"), progress=False, compute=compute)
        distributed.finish(dist_info)
        return
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=False, resume=state.with_suffix(".amortized").exists()) as live:
        def on_epoch(epoch: int, means: dict[str, float]) -> None:
            for k, v in means.items():
                live.log_metric(f"amortized/{k}", v)
            live.next_step()
        net, curves = train_amortized(clf, x_train, loss, run.unet, run.amortized, run.fill, seed,
                                      state_path=state.with_suffix(".amortized"), on_epoch=on_epoch, progress=prog,
                                      compute=compute)
        distributed.finish(dist_info)
        t_train = time.perf_counter() - start
        live.log_image("curves.png", training_curves(curves, "epoch"))
        t0 = time.perf_counter()
        masks = {"amortized": predict_masks(clf, net, x, loss, run.fill, seed)}
        t_pred = time.perf_counter() - t0
        if run.finetune is not None:
            masks["finetune"] = explain_per_image(clf, x, loss, run.unet, run.finetune, run.fill, seed,
                                                  init_state=net.state_dict(), state_path=state.with_suffix(".finetune"),
                                                  progress=prog, compute=compute)
        frames = [summarize(clf, x, r.soft, run.fill, ids, ds.labels[idx], r.final).assign(regime=k)
                  for k, r in masks.items()]
        for f in frames:
            regime = f["regime"].iloc[0]
            live.summary[regime] = {"kept": float(f["kept"].mean()), "median_area": float(f["area"].median()),
                                    "n": len(f)}
    with atomic_dir(out) as tmp:
        save_explainer(tmp / "explainer.pt", net.cpu(), run, loss, clf, {"train_images": len(train)})
        write_masks(tmp / "masks.npz", ids, **{k: r.soft for k, r in masks.items()})
        write_summary(tmp / "summary.csv", frames)
        write_config(tmp / "config.yaml", run, loss, classifier=clf.name, seed=seed)
        write_json(tmp / "timing.json", {"train_seconds": t_train, "amortized_ms_per_image": 1000 * t_pred / len(idx),
                                         "total_seconds": time.perf_counter() - start, "device": str(device)})
    for suffix in (".amortized", ".finetune"):
        state.with_suffix(suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_stage(main))
