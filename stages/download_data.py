"""DVC stage ``download_data@<dataset>``: materialize one source dataset of the data registry under
data/<dataset>/ in the format of actmatch.data.store (pip packages, Debian files, pinned downloads)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from actmatch.check import check_file
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.data import datasets
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data.registry import get_dataset


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--dataset", "--out", "--cache", progress=False).parse_args(argv)
    raw = read_params(args.params)
    entry = get_dataset(args.dataset)
    if entry.build is None:
        raise ValueError(f"{args.dataset!r} is made from {entry.made_from!r} by its own stage, not downloaded")
    entry.build(datasets(raw), runtime(raw).data_seed, args.out, args.cache)


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
