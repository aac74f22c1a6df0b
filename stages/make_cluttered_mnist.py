"""DVC stage ``make_cluttered_mnist``: digits of data/mnist on cluttered canvases, with the
ground-truth box of each digit (actmatch.data.cluttered)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.data.cluttered import build_cluttered_mnist
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    build_cluttered_mnist(load_dataset(args.mnist), params.datasets.cluttered_mnist, params.seed, args.out)


if __name__ == "__main__":
    sys.exit(run_stage(main))
