"""DVC stage ``make_morpho_mnist``: GLANCE's controlled digits (method.md §8.2): the Morpho-MNIST
recipe thickness → intensity, thickness → slant applied to every digit of data/mnist (ids, labels and
split kept; actmatch.glance.perturb), so the true causal graph is known. Uses every CPU core."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.glance.data import build_morpho_mnist
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    build_morpho_mnist(load_dataset(args.mnist), args.out, params.seed, params.datasets.morpho_mnist.scale,
                       workers=os.cpu_count() or 1, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(run_stage(main))
