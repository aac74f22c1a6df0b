"""DVC stage ``make_cluttered_mnist``: digits of data/mnist on cluttered canvases, with the
ground-truth box of each digit (actmatch.data.cluttered)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from actmatch.check import check_file
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.data import datasets
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.data.cluttered import build_cluttered_mnist


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--mnist", "--out", progress=False).parse_args(argv)
    raw = read_params(args.params)
    build_cluttered_mnist(load_dataset(args.mnist), datasets(raw).cluttered_mnist, runtime(raw).data_seed, args.out)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
