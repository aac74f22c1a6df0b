"""DVC stage ``train_syce@<group>``: SyCE and CyCE (Charachon et al., method.md §8.1) for one frozen
classifier: each variant's generator and WGAN-GP critic trained on a seeded, class-stratified sample
of the train split (its last ``val_fraction`` for the plateau schedule and the early stop), then every
test image explained. Per variant: weights, maps and settings in --out/<variant>/ (what
evaluate@<group> scores beside our masks), curves in --live/<variant>/; the authors' metrics (flip,
stable, L1, Fréchet and Jensen–Shannon distances in the VAE's embedding) in --metrics. Resumes by epoch."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.check import check_file
from actmatch.classifiers import load_classifier_dir
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.syce import syce
from actmatch.core.device import resolve_device
from actmatch.core.io import write_json
from actmatch.core.provenance import machine
from actmatch.core.stage import lookup, run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.syce.pipeline import load_vae, run_all


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--run", "--classifier", "--data", "--vae", "--out", "--live", "--metrics",
                        "--state").parse_args(argv)
    raw = read_params(args.params)
    sp, rt = syce(raw), runtime(raw)
    lookup(sp.runs, args.run, "syce.runs")
    device = resolve_device(rt.device)
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    ds = load_dataset(args.data)
    metrics = run_all(clf, ds, sp, args.run, rt.seed, rt.data_seed, load_vae(args.vae).to(device), Path(args.out),
                      Path(args.live), Path(args.state), progress=not args.no_progress)
    write_json(Path(args.metrics), {"run": args.run, "classifier": clf.name, "dataset": ds.name,
                                    "num_classes": len(clf.class_names), "methods": metrics,
                                    "machine": machine(device)})


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
