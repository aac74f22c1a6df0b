"""DVC stage ``ablate_matched@<classifier>-<dataset>-<variant>`` (matrix over ``ablation.matched``): the
variant of ``ablate`` with its area term as a target at the base variant's median area (--match-area:
the base's metrics file), so Table 2 compares what each term does at equal area. Same outputs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from actmatch.check import check_file
from actmatch.ablation import ablate
from actmatch.config.base import read_params
from actmatch.core.stage import run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--classifier", "--dataset", "--variant", "--classifier-dir", "--data", "--out",
                        "--match-area", "--metrics", "--state", "--timing").parse_args(argv)
    ablate(read_params(args.params), args.classifier, args.dataset, args.variant, args.classifier_dir, args.data,
           Path(args.out), Path(args.metrics), Path(args.state), match_area=args.match_area, progress=not args.no_progress,
           timing=Path(args.timing))


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
