"""DVC stage ``explain_images@<run>``: the paper's per-image regime (a fresh U-Net per image) on
the first ``eval_images`` test images; masks (named by the run's ``regime``), per-image summary and
resolved config in --out (results/explainers/<classifier>-<dataset>/<regime>/), curves in --live.
Resumes image by image after an interruption."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dvclive import Live

from actmatch.classifiers import load_classifier_dir
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.explainer.api import summarize
from actmatch.explainer.outputs import eval_split, write_config, write_masks, write_summary
from actmatch.explainer.batched import explain_per_image_batched
from actmatch.explainer.inputs import load_inputs
from actmatch.explainer.train import Compute, explain_per_image
from actmatch.io import atomic_dir, write_json
from actmatch.report.figures import training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a key of explainer.per_image_runs")
    ap.add_argument("--classifier", required=True, help="classifier folder")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--live", required=True, help="dvclive folder")
    ap.add_argument("--state", required=True, help="resume file (kept only while the run is unfinished)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.run not in params.explainer.per_image_runs:
        raise KeyError(f"explainer.per_image_runs has no run {args.run!r}; known: {sorted(params.explainer.per_image_runs)}")
    run = params.explainer.per_image_runs[args.run]
    loss = params.explainer.loss(run.preset)
    device = resolve_device(params.device)
    cp = params.compute
    compute = Compute(cp.precision, cp.channels_last)
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    compute.module(clf.model)
    ds = load_dataset(args.data)
    idx = eval_split(ds, run.eval_images, params.seed, run.eval_per_class)
    x = load_inputs(clf, ds.images, idx, device, cp.loader_workers)
    state = Path(args.state)
    start = time.perf_counter()
    if cp.per_image_batch > 1:  # many images' U-Nets at once (fills a GPU); same masks to float tolerance
        res = explain_per_image_batched(clf, x, loss, run.unet, run.per_image, run.fill, params.seed,
                                        chunk=cp.per_image_batch, state_path=state, progress=not args.no_progress,
                                        compute=compute)
    else:
        res = explain_per_image(clf, x, loss, run.unet, run.per_image, run.fill, params.seed, state_path=state,
                                progress=not args.no_progress, compute=compute)
    seconds = time.perf_counter() - start
    ids = [str(ds.index["id"].iloc[i]) for i in idx]
    out = Path(args.out)
    summary = summarize(clf, x, res.soft, run.fill, ids, ds.labels[idx], res.final).assign(regime=run.regime)
    with atomic_dir(out) as tmp:
        write_masks(tmp / "masks.npz", ids, **{run.regime: res.soft})
        write_summary(tmp / "summary.csv", [summary])
        write_config(tmp / "config.yaml", run, loss, classifier=clf.name, seed=params.seed)
        write_json(tmp / "timing.json", {"seconds": seconds, "seconds_per_image": seconds / len(idx),
                                         "device": str(device)})
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=False) as live:
        for step in range(len(res.curves["total"])):  # mean over images at each step
            for k, v in res.curves.items():
                live.log_metric(f"per_image/{k}", v[step])
            live.next_step()
        live.log_image("curves.png", training_curves(res.curves, "step (mean over images)"))
        live.summary.update(kept=float(summary["kept"].mean()), median_area=float(summary["area"].median()),
                            n=len(summary))
    state.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_stage(main))
