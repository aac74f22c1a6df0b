"""DVC stage ``make_mnist_3v8``: the binary 3-vs-8 task of SyCE/CyCE (method.md §8.1) from the
digits of data/mnist (actmatch.data.pair); the two classes are ``datasets.mnist_3v8.classes``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from actmatch.check import check_file
from actmatch.config.base import read_params
from actmatch.config.data import datasets
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.data.pair import build_pair


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--mnist", "--out", progress=False).parse_args(argv)
    build_pair(load_dataset(args.mnist), datasets(read_params(args.params)).mnist_3v8, "mnist_3v8", args.out)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
