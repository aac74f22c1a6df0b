"""DVC stage ``make_morpho_mnist``: GLANCE's controlled digits (method.md §8.2): the Morpho-MNIST
recipe thickness → intensity, thickness → slant applied to every digit of data/mnist (ids, labels and
split kept; actmatch.glance.perturb), so the true causal graph is known. Uses every CPU core."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from actmatch.check import check_file
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.data import datasets
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.glance.data import build_morpho_mnist


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--mnist", "--out").parse_args(argv)
    raw = read_params(args.params)
    build_morpho_mnist(load_dataset(args.mnist), args.out, runtime(raw).data_seed, datasets(raw).morpho_mnist.scale,
                       workers=os.cpu_count() or 1, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
