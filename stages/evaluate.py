"""DVC stage ``evaluate@<classifier>-<dataset>``: every regime of ours found under
results/explainers/<classifier>-<dataset>/, the SyCE/CyCE maps under its ce/ and the GLANCE effect maps under its glance/ (if any) and every
baseline in ``evaluate.baselines``, scored by the same metric functions at the same per-image area (method.md §5-6). Writes the aggregated
metrics (mean, 95 % bootstrap interval, n) as DVC metrics, the per-image table, the mean
insertion/deletion curves (DVC plots + a PNG) and the cost per explanation. Resumes by method."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.ce.pipeline import load_maps
from actmatch.classifiers import load_classifier_dir
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.evaluation import evaluate, load_regimes
from actmatch.glance.pipeline import load_glance_maps
from actmatch.io import atomic_path, write_json
from actmatch.report.figures import curves_plot, training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="a key of evaluate.runs")
    ap.add_argument("--classifier", required=True, help="classifier folder")
    ap.add_argument("--data", required=True)
    ap.add_argument("--explainers", required=True, help="folder with one sub-folder per explainer output")
    ap.add_argument("--out", required=True, help="folder for the per-image table, curves and cost")
    ap.add_argument("--metrics", required=True, help="the aggregated metrics JSON")
    ap.add_argument("--state", required=True, help="resume folder (kept only while the run is unfinished)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cfg = params.evaluate_run(args.run)
    device = resolve_device(params.device)
    clf = load_classifier_dir(args.classifier)
    clf.model.to(device)
    ds = load_dataset(args.data)
    regimes = load_regimes(args.explainers)
    state = Path(args.state)
    per_image, curves, metrics, cost = evaluate(clf, ds, regimes, cfg, state, progress=not args.no_progress,
                                                maps=load_maps(args.explainers) | load_glance_maps(args.explainers))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "per_image.csv") as tmp:
        per_image.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out / "curves.csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(out / "curves.png") as tmp:
        curves_plot(curves, f"{cfg.classifier} on {cfg.dataset}").savefig(tmp, format="png", dpi=110,
                                                                         metadata={"Software": None})
    write_json(out / "cost.json", {"device": str(device), "methods": cost})
    write_json(Path(args.metrics), metrics)
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_stage(main))
