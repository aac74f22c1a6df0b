"""DVC stage ``train_classifier@<arch>-<dataset>``: train one small classifier on a dataset's
train split; checkpoint (with its config) under <out>/model/, accuracies as DVC metrics and
per-epoch curves (dvclive) under <out>/live/, the training's wall time in --timing (outside the
checkpoint's folder, which every later stage depends on: a time changes every run)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from dvclive import Live

from actmatch.check import check_file
from actmatch.classifiers.train import save_trained, train_classifier
from actmatch.config.base import read_params
from actmatch.config.classifiers import train_run
from actmatch.config.compute import runtime
from actmatch.core.device import resolve_device
from actmatch.core.io import atomic_dir, write_json
from actmatch.core.provenance import machine
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--run", "--data", "--out", "--timing").parse_args(argv)
    raw = read_params(args.params)
    cfg = train_run(raw, args.run)
    device = resolve_device(runtime(raw).device)
    ds = load_dataset(args.data)
    if ds.name != cfg.dataset:
        raise ValueError(f"{args.data} holds {ds.name!r} but run {cfg.name} trains on {cfg.dataset!r}")
    out = Path(args.out)
    with Live(dir=str(out / "live"), save_dvc_exp=False, dvcyaml=False) as live:
        model, metrics = train_classifier(cfg, ds, device, live=live, progress=not args.no_progress)
        info = metrics.pop("_info")
        for key, value in metrics.items():
            live.summary[key] = value
        live.summary["machine"] = machine(device)  # where these numbers came from
    with atomic_dir(out / "model") as tmp:
        save_trained(tmp / "model.pt", model.cpu(), cfg, info, metrics)
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=True))
    write_json(args.timing, {"stage": "train_classifier", "run": args.run, "seconds": info["seconds"],
                             "machine": machine(device)})


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
