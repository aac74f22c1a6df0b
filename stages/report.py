"""DVC stage ``report``: every table and figure of the write-up from what the pipeline stored
(results/, plus the image pixels from data/) into --out (paper_figures/): Table 1 per evaluated
group, Table 2 per ablation grid (Markdown + LaTeX), the figures, SyCE/CyCE's and GLANCE's tables
and figures, RESULTS.md (every table with its caption, generated) and one self-contained
report.html. Written whole into a temporary folder, then swapped in."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.check import check_file
from actmatch.config.ablation import ablation
from actmatch.config.base import read_params
from actmatch.config.evaluate import evaluate
from actmatch.config.glance import glance
from actmatch.config.report import report
from actmatch.config.syce import syce
from actmatch.core.io import atomic_dir
from actmatch.core.stage import run_stage, stage_parser
from actmatch.report.build import build_report
from actmatch.report.profile_rows import full_only, full_only_markdown


def main(argv: Sequence[str] | None = None) -> None:
    ap = stage_parser(__doc__, progress=False)
    for flag, default in (("--results", "results"), ("--data", "data"), ("--out", "paper_figures"),
                          ("--full-profile", "profiles/full.yaml")):
        ap.add_argument(flag, default=default)
    args = ap.parse_args(argv)
    raw = read_params(args.params)
    overlay = read_params(args.full_profile) if Path(args.full_profile).is_file() else {}
    r, ab = report(raw), ablation(raw)
    sy, gl = (syce(raw) if raw.get("syce") else None), (glance(raw) if raw.get("glance") else None)
    expected = {"groups": sorted(evaluate(raw).runs), "syce": sorted(sy.runs) if sy else [],
                "glance": sorted(gl.runs) if gl else [],
                "grid": {f"{c}-{d}": (sorted(ab.variants), ab.matched) for c in ab.classifiers for d in ab.datasets}}
    with atomic_dir(Path(args.out)) as tmp:
        files = build_report(Path(args.results), Path(args.data), tmp, r.examples, r.sweep_image, ab.base, r.dpi,
                             sy.figure_examples if sy else 4, gl.figure_examples if gl else 4, smoke=r.smoke,
                             expected=expected, full_only=full_only_markdown(full_only(raw, overlay)))
    print(f"report: {len(files)} files in {args.out}/ (open {args.out}/report.html)")


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
