"""DVC stage ``explain_images@<run>``: the paper's per-image regime (a fresh U-Net per image) on the
first ``eval_images`` test images of a data_seed order, once per seed of ``seeds``; per seed, masks
(named by the run's ``regime``), per-image summary and resolved config in --out/seed<k>/
(results/explainers/<group>/<regime>/), curves in --live/seed<k>/, wall times per seed in --timing
(outside the outputs: they change every run). Resumes image by image."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.check import check_file
from actmatch.classifiers import load_classifier_dir
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.explainer import explainer
from actmatch.core.device import resolve_device
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.explainer.runs import RunContext, run_per_image
from actmatch.explainer.train import Compute


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--run", "--classifier", "--data", "--out", "--live", "--metrics", "--state",
                        "--timing").parse_args(argv)
    raw = read_params(args.params)
    ex, rt = explainer(raw), runtime(raw)
    run = ex.per_image_run(args.run)
    cp = run.compute
    clf = load_classifier_dir(args.classifier)
    clf.model.to(resolve_device(rt.device))
    comp = Compute(cp.precision, cp.channels_last)
    comp.module(clf.model)
    ctx = RunContext(Path(args.out), Path(args.live), Path(args.state), Path(args.metrics), comp, cp.loader_workers,
                     cp.per_image_batch, progress=not args.no_progress, timing=Path(args.timing), key=args.run)
    run_per_image(clf, load_dataset(args.data), run, ex.loss(run.preset), run.seeds or rt.seeds, rt.data_seed, ctx)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
