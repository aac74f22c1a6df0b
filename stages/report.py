"""DVC stage ``report``: every table and figure of the write-up from what the pipeline stored
(results/, plus the image pixels from data/) into --out (paper_figures/): Table 1 per evaluated
group, Table 2 per ablation grid (Markdown + LaTeX), Figure 1 triplets, Figure 2 weight sweeps,
the area–fidelity trade-off, insertion/deletion and training curves, SyCE/CyCE's metrics table
and example figures (PNG + PDF), and one
self-contained report.html. Written whole into a temporary folder, then swapped in."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.config import load_params
from actmatch.io import atomic_dir
from actmatch.report.build import build_report
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default="results")
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default="paper_figures")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    r = params.report
    with atomic_dir(Path(args.out)) as tmp:
        files = build_report(Path(args.results), Path(args.data), tmp, r.examples, r.sweep_image,
                             params.ablation.base, r.dpi, params.ce.figure_examples if params.ce else 4,
                             params.glance.figure_examples if params.glance else 4)
    print(f"report: {len(files)} files in {args.out}/ (open {args.out}/report.html)")


if __name__ == "__main__":
    sys.exit(run_stage(main))
