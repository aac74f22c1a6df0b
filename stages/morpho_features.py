"""DVC stage ``morpho_features@<dataset>``: the Morpho-MNIST context features (area, length,
thickness, slant, width, height, intensity; method.md §8.2) of every image of a grey digit dataset,
cached as --out/features.csv for the GLANCE stages. Uses every CPU core."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from actmatch.check import check_file
from actmatch.config.base import read_params
from actmatch.config.data import datasets
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.glance.data import write_features


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--data", "--out").parse_args(argv)
    write_features(load_dataset(args.data), args.out, datasets(read_params(args.params)).morpho_mnist.scale,
                   workers=os.cpu_count() or 1, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
