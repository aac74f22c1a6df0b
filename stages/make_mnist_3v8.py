"""DVC stage ``make_mnist_3v8``: the binary 3-vs-8 task of SyCE/CyCE (method.md §8.1) from the
digits of data/mnist (actmatch.data.pair); the two classes are ``datasets.mnist_3v8.classes``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.data.pair import build_pair
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    build_pair(load_dataset(args.mnist), params.datasets.mnist_3v8, "mnist_3v8", args.out)


if __name__ == "__main__":
    sys.exit(run_stage(main))
