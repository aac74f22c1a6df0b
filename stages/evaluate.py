"""DVC stage ``evaluate@<group>``: every regime of ours (every seed) under results/explainers/<group>/,
the SyCE/CyCE maps under its syce/ and the GLANCE effect maps under its glance/ (if any), and every
baseline in ``evaluate.baselines``, scored by the same metric functions at the same per-image area
(method.md §5-6). Writes the aggregated metrics (per method: mean over seeds with their spread, the
per-image 95 % interval, n, collapsed seeds) as DVC metrics, the per-image table, the mean
insertion/deletion curves (DVC plots + a PNG) and the cost per explanation. Resumes by method."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from actmatch.check import check_file
from actmatch.classifiers import load_classifier_dir
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.evaluate import evaluate_run
from actmatch.core.device import resolve_device
from actmatch.core.figures import curves_plot
from actmatch.core.io import atomic_path, write_json
from actmatch.core.provenance import machine
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.evaluation import evaluate, load_regimes
from actmatch.glance.pipeline import load_glance_maps
from actmatch.syce.pipeline import load_maps


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--run", "--classifier", "--data", "--explainers", "--out", "--metrics",
                        "--state").parse_args(argv)
    raw = read_params(args.params)
    cfg, device = evaluate_run(raw, args.run), resolve_device(runtime(raw).device)
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    maps, previews = load_maps(args.explainers) | load_glance_maps(args.explainers), {}
    per_image, curves, metrics, cost = evaluate(clf, load_dataset(args.data), load_regimes(args.explainers), cfg,
                                                Path(args.state), progress=not args.no_progress, maps=maps,
                                                previews=previews)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "maps.npz") as tmp, open(tmp, "wb") as fh:  # every method's maps of a few images
        np.savez_compressed(fh, **previews)
    for name, frame in (("per_image.csv", per_image), ("curves.csv", curves)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out / "curves.png") as tmp:
        curves_plot(curves, f"{cfg.classifier} on {cfg.dataset}").savefig(tmp, format="png", dpi=110,
                                                                         metadata={"Software": None})
    write_json(out / "cost.json", {"device": str(device), "machine": machine(device), "methods": cost})
    write_json(Path(args.metrics), metrics)
    shutil.rmtree(args.state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
