"""DVC stage ``train_glance@<classifier>-<dataset>``: our GLANCE reconstruction (Kori et al.,
method.md §8.2) for one frozen classifier: the twin surrogate (encoder to aligned + free latents,
style-modulated generator, R1 discriminator) trained on the train split, the global causal graph
over (context features, free latents, classifier output) learned with DAGMA, and local
explanations of every test image (importance, counterfactual, effect map). Writes --out (what
evaluate@<run> scores beside our masks), curves in --live, metrics (alignment R², fidelity, graph
recovery where the dataset knows its graph) in --metrics. Resumes by epoch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dvclive import Live

from actmatch.classifiers import load_classifier_dir
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.glance.data import read_features
from actmatch.glance.pipeline import run_glance
from actmatch.io import write_json
from actmatch.report.figures import training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a key of glance.runs")
    for flag in ("--classifier", "--data", "--features", "--out", "--live", "--metrics", "--state"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if params.glance is None or args.run not in params.glance.runs:
        known = sorted(params.glance.runs) if params.glance else []
        raise KeyError(f"glance.runs has no run {args.run!r}; known: {known}")
    gp, run = params.glance, params.glance.runs[args.run]
    device = resolve_device(params.device)
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    ds = load_dataset(args.data)
    features = read_features(args.features, ds, list(gp.features))
    state = Path(args.state)
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=False, resume=state.exists()) as live:
        def on_epoch(epoch: int, means: dict[str, float]) -> None:
            for k, v in means.items():
                live.log_metric(f"glance/{k}", v)
            live.next_step()
        trained, metrics = run_glance(clf, ds, features, gp, run, params.seed, Path(args.out), state_path=state,
                                      on_epoch=on_epoch, progress=not args.no_progress)
        live.log_image("curves.png", training_curves(trained.curves, "epoch"))
        for k in ("fidelity", "alignment_r2_mean", "counterfactual_found"):
            live.summary[k] = metrics[k]
    write_json(Path(args.metrics), {"run": args.run, "classifier": clf.name, "dataset": ds.name, **metrics})
    state.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_stage(main))
