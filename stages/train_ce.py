"""DVC stage ``train_ce@<classifier>-<dataset>``: SyCE and CyCE (Charachon et al., method.md §8.1)
for one frozen classifier: each variant's generator and WGAN-GP critic trained on the train split
(a seeded sample of ``max_train`` images, the last ``val_fraction`` of it for the plateau schedule
and the early stop), then every test image explained. Per variant: weights, maps and settings in
--out/<variant>/ (what evaluate@<run> scores beside our masks), curves in --live/<variant>/; the
authors' metrics (flip, stable, L1, Fréchet and Jensen–Shannon distances in the VAE's embedding)
in --metrics. Resumes by epoch; after an interruption a finished variant resumes at its last
epoch (only its maps are recomputed)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from dvclive import Live

from actmatch.ce.pipeline import load_vae, pixel_classifier, pixel_inputs, run_variant
from actmatch.classifiers import load_classifier_dir
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.io import write_json
from actmatch.report.figures import training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a key of ce.runs")
    for flag in ("--classifier", "--data", "--vae", "--out", "--live", "--metrics", "--state"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if params.ce is None or args.run not in params.ce.runs:
        known = sorted(params.ce.runs) if params.ce else []
        raise KeyError(f"ce.runs has no run {args.run!r}; known: {known}")
    ce, seed = params.ce, params.seed
    train = ce.train_for(args.run)
    device = resolve_device(params.device)
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    ds = load_dataset(args.data)
    f = pixel_classifier(clf, ds)
    num_classes = len(clf.class_names)
    pool = np.random.default_rng(seed).permutation(ds.split_indices("train"))[: train.max_train]
    n_val = max(1, int(round(len(pool) * train.val_fraction)))
    if len(pool) - n_val < 2:
        raise ValueError(f"ce.runs.{args.run}: {len(pool)} train images leave too few for training after "
                         f"{n_val} for validation")
    x_train, x_val = pixel_inputs(ds, pool[:-n_val], device), pixel_inputs(ds, pool[-n_val:], device)
    test = ds.split_indices("test")
    x_test = pixel_inputs(ds, test, device)
    test_ids = [str(i) for i in ds.index["id"].to_numpy()[test]]
    vae = load_vae(args.vae).to(device)
    out, live_dir, state = Path(args.out), Path(args.live), Path(args.state)
    metrics = {}
    for variant in ce.variants:
        with Live(dir=str(live_dir / variant), save_dvc_exp=False, dvcyaml=False,
                  resume=state.with_suffix(f".{variant}").exists()) as live:
            def on_epoch(epoch: int, means: dict[str, float]) -> None:
                for k, v in means.items():
                    live.log_metric(f"{variant}/{k}", v)
                live.next_step()
            trained, m = run_variant(variant, f, num_classes, x_train, x_val, x_test, test_ids, train, ce, vae, seed,
                                     out / variant, state_path=state.with_suffix(f".{variant}"), on_epoch=on_epoch,
                                     progress=not args.no_progress)
            live.log_image("curves.png", training_curves(trained.curves, "epoch"))
            for k, v in m.items():
                live.summary[k] = v
        metrics[yaml.safe_load((out / variant / "config.yaml").read_text())["method"]] = m
    write_json(Path(args.metrics), {"run": args.run, "classifier": clf.name, "dataset": ds.name,
                                    "num_classes": num_classes, "methods": metrics})
    for variant in ce.variants:  # kept until every variant is done: a rerun skips finished ones' training
        state.with_suffix(f".{variant}").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_stage(main))
