"""DVC stage ``ablate@<classifier>-<dataset>-<variant>`` (matrix): one amortized U-Net per seed trained
under one loss variant of ``ablation.variants`` (an overlay on the ablated run's preset) and scored
with the evaluation's metrics on the held-out images. Writes --out/seed<k>/ (masks.npz, per_image.csv,
curves.png, config.yaml, train_ids.csv) and the variant's numbers across seeds (collapsed
seeds named, never averaged in) to --metrics, the wall time per seed to --timing. Resumes by epoch and by seed."""

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
                        "--metrics", "--state", "--timing").parse_args(argv)
    ablate(read_params(args.params), args.classifier, args.dataset, args.variant, args.classifier_dir, args.data,
           Path(args.out), Path(args.metrics), Path(args.state), match_area=None, progress=not args.no_progress,
           timing=Path(args.timing))


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
