"""DVC stage ``morpho_features@<dataset>``: the Morpho-MNIST context features (area, length,
thickness, slant, width, height, intensity; method.md §8.2) of every image of a grey digit dataset,
cached as --out/features.csv for the GLANCE stages. Uses every CPU core."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.glance.data import write_features
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    write_features(load_dataset(args.data), args.out, params.datasets.morpho_mnist.scale,
                   workers=os.cpu_count() or 1, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(run_stage(main))
