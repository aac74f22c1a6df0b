"""DVC stage ``train_classifier@<arch>-<dataset>``: train one small classifier on a dataset's
train split; checkpoint (with its config) under <out>/model/, accuracies as DVC metrics and
per-epoch curves (dvclive) under <out>/live/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from dvclive import Live

from actmatch.classifiers.train import save_trained, train_classifier
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.io import atomic_dir, write_json
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a key of train_classifier.runs")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cfg = params.train_run(args.run)
    device = resolve_device(params.device)
    ds = load_dataset(args.data)
    if ds.name != cfg.dataset:
        raise ValueError(f"{args.data} holds {ds.name!r} but run {cfg.name} trains on {cfg.dataset!r}")
    out = Path(args.out)
    with Live(dir=str(out / "live"), save_dvc_exp=False, dvcyaml=False) as live:
        model, metrics = train_classifier(cfg, ds, device, live=live, progress=not args.no_progress)
        info = metrics.pop("_info")
        for key, value in metrics.items():
            live.summary[key] = value
    with atomic_dir(out / "model") as tmp:
        save_trained(tmp / "model.pt", model.cpu(), cfg, info, metrics)
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=True))
        write_json(tmp / "timing.json", {"seconds": info["seconds"], "device": str(device)})


if __name__ == "__main__":
    sys.exit(run_stage(main))
