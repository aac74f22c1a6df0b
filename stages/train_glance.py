"""DVC stage ``train_glance@<run>``: our GLANCE reconstruction (Kori et al., method.md §8.2) for one
frozen classifier: the twin surrogate (encoder to aligned + free latents, style-modulated generator,
R1 discriminator) trained on the train split, the global causal graph over (context features, free
latents, classifier output) learned with DAGMA, and local explanations of every test image
(importance, counterfactual, effect map). Writes --out (what evaluate@<run> scores beside our
masks), curves in --live, metrics (alignment R², fidelity, graph recovery where the dataset knows its
graph) in --metrics. Resumes by epoch."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from dvclive import Live

from actmatch.check import check_file
from actmatch.classifiers import load_classifier_dir
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.glance import glance
from actmatch.core.device import resolve_device
from actmatch.core.figures import training_curves
from actmatch.core.io import write_json
from actmatch.core.provenance import machine
from actmatch.core.stage import epoch_logger, lookup, run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.glance.data import read_features
from actmatch.glance.pipeline import run_glance


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--run", "--classifier", "--data", "--features", "--out", "--live", "--metrics",
                        "--state").parse_args(argv)
    raw = read_params(args.params)
    gp, rt = glance(raw), runtime(raw)
    run = lookup(gp.runs, args.run, "glance.runs")
    clf = load_classifier_dir(args.classifier)
    device = resolve_device(rt.device)
    clf.model.to(device)
    ds = load_dataset(args.data)
    features = read_features(args.features, ds, list(gp.features))
    state = Path(args.state)
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=False, resume=state.exists()) as live:
        trained, metrics = run_glance(clf, ds, features, gp, run, rt.seed, Path(args.out), state_path=state,
                                      on_epoch=epoch_logger(live, "glance"), progress=not args.no_progress,
                                      data_seed=rt.data_seed)
        live.log_image("curves.png", training_curves(trained.curves, "epoch"))
        for k in ("fidelity", "alignment_r2_mean", "counterfactual_found"):
            live.summary[k] = metrics[k]
    write_json(Path(args.metrics), {"run": args.run, "classifier": clf.name, "dataset": ds.name, **metrics,
                                    "machine": machine(device)})
    state.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
