"""DVC stage ``train_explainer@<run>``: the amortized regime (one U-Net trained over a seeded,
class-stratified sample of the train split; masks for the held-out evaluation images in one
forward pass) and the finetune regime (k per-image steps from it), once per seed of ``seeds``.
Outputs per seed in --out/seed<k>/ (checkpoint, masks, summary, config, train_ids.csv), curves in
--live/seed<k>/, kept and median area per seed in --metrics, wall times per seed in --timing (outside the
outputs: they change every run). Resumes by epoch and by image."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.check import check_file
from actmatch.classifiers import load_classifier_dir
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.explainer import explainer
from actmatch.core import distributed
from actmatch.core.device import resolve_device
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.explainer.runs import RunContext, run_amortized
from actmatch.explainer.train import Compute


def main(argv: Sequence[str] | None = None) -> None:
    # not --run: under torchrun (launcher.train_explainer) argparse would read it as an abbreviation of
    # torchrun's own --run-path and refuse it as ambiguous
    ap = stage_parser(__doc__, "--amortized-run", "--classifier", "--data", "--out", "--live", "--metrics", "--state",
                      "--timing")
    args = ap.parse_args(argv)
    raw = read_params(args.params)
    ex, rt = explainer(raw), runtime(raw)
    run = ex.amortized_run(args.amortized_run)
    cp = run.compute
    dist_info, device = distributed.init_from_env(resolve_device(rt.device))  # torchrun: one rank per GPU
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    comp = Compute(cp.precision, cp.channels_last)
    comp.module(clf.model)
    ctx = RunContext(Path(args.out), Path(args.live), Path(args.state), Path(args.metrics), comp, cp.loader_workers,
                     cp.per_image_batch, progress=not args.no_progress, timing=Path(args.timing), key=args.amortized_run)
    run_amortized(clf, load_dataset(args.data), run, ex.loss(run.preset), run.seeds or rt.seeds, rt.data_seed, ctx)
    distributed.finish(dist_info)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
