"""DVC stage ``ablate@<classifier>-<dataset>-<variant>`` (matrix): one amortized U-Net trained under
one loss variant of ``ablation.variants`` and scored with the evaluation's metrics on the
held-out images. Writes --out (masks.npz, per_image.csv, curves.png, config.yaml, timing.json) and the
variant's mean / 95 % interval per metric to --metrics (DVC metrics, so `dvc exp show` lists
them). Resumes by epoch."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from actmatch.ablation import run_variant, summarize_variant
from actmatch.classifiers import load_classifier_dir
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.explainer.outputs import write_masks
from actmatch.io import atomic_dir, atomic_path, write_json
from actmatch.metrics.suite import ScoreSettings
from actmatch.report.figures import save_figure, training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    for flag in ("--classifier", "--dataset", "--variant", "--classifier-dir", "--data", "--out", "--metrics",
                 "--state"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    key, run = params.ablation_run(args.classifier, args.dataset)
    loss = params.ablation_loss(args.classifier, args.dataset, args.variant)
    ab, ev = params.ablation, params.evaluate.defaults
    device = resolve_device(params.device)
    clf = load_classifier_dir(args.classifier_dir)
    clf.model.to(device)
    ds = load_dataset(args.data)
    score = ScoreSettings(ev.batch_size, ev.curve_steps, ev.perturb_draws, tuple(ev.budgets), ev.max_pieces,
                          params.seed)
    start = time.perf_counter()
    state = Path(args.state)
    net, ids, soft, table, curves = run_variant(clf, ds, run, loss, ab.train, ab.eval_images, score, params.seed,
                                                state_path=state, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    with atomic_dir(Path(args.out)) as tmp:
        write_masks(tmp / "masks.npz", ids, **{args.variant: soft})
        table.to_csv(tmp / "per_image.csv", index=False, float_format="%.6g")
        save_figure(training_curves(curves, "epoch"), tmp / "curves.png")
        (tmp / "config.yaml").write_text(yaml.safe_dump(
            {"variant": args.variant, "overlay": ab.variants[args.variant], "explainer_run": key,
             "classifier": args.classifier, "dataset": args.dataset, "loss": loss.model_dump(),
             "train": ab.train.model_dump(), "unet": run.unet.model_dump(), "fill": run.fill, "seed": params.seed},
            sort_keys=True))
        write_json(tmp / "timing.json", {"seconds": seconds, "device": str(device)})  # timings stay out of metrics
    summary = {"variant": args.variant, "n": len(table), "metrics": summarize_variant(table, ev.bootstrap, params.seed)}
    with atomic_path(Path(args.metrics)) as tmp:
        write_json(tmp, summary)
    state.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_stage(main))
