"""DVC stage ``download_data@<dataset>``: materialize one source dataset under data/<dataset>/
in the format of actmatch.data.store (pip packages, Debian files, or pinned downloads)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actmatch.config import load_params
from actmatch.data import sources
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", required=True, help="resumable download cache (not a DVC output)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cfg = params.datasets
    builders = {
        "mnist": lambda: sources.build_mnist(cfg.mnist, params.seed, args.out),
        "photos": lambda: sources.build_photos(cfg.photos, args.out),
        "fashion_mnist": lambda: sources.build_fashion_mnist(cfg.fashion_mnist, params.seed, args.out, args.cache),
        "imagenette": lambda: sources.build_imagenette(cfg.imagenette, params.seed, args.out, args.cache),
    }
    if args.dataset not in builders:
        raise ValueError(f"unknown source dataset {args.dataset!r}; known: {', '.join(sorted(builders))}")
    builders[args.dataset]()


if __name__ == "__main__":
    sys.exit(run_stage(main))
