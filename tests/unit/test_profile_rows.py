"""RESULTS.md names the rows only the full profile has (issue 28), read from the overlay itself."""

from __future__ import annotations

from pathlib import Path

from actmatch.config.base import read_params
from actmatch.report.profile_rows import full_only, full_only_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_rows_the_overlay_adds_are_named_and_applied_ones_are_not():
    params = {"syce": {"runs": {"lenet-mnist_3v8": {}}},
              "evaluate": {"defaults": {"baselines": {"gradcam": {}}},
                           "runs": {"mnist_cnn-mnist": {}, "efficientnet_lite0-photos": {"baselines": {"rise": {}}}}}}
    overlay = {"syce": {"runs": {"mnist_cnn-mnist": {"classifier": "x"}, "lenet-mnist_3v8": {}}},
               "evaluate": {"defaults": {"baselines": {"gradcam": {}, "lime": {}}},
                            "runs": {"efficientnet_lite0-photos": {"baselines": {"extremal_authors": {}, "rise": {}}}}}}
    rows = full_only(params, overlay)
    assert rows == ["SyCE and CyCE on `mnist_cnn-mnist` (`train_syce@mnist_cnn-mnist`, scored by `evaluate@mnist_cnn-mnist`)",
                    "`lime` on `efficientnet_lite0-photos`, `mnist_cnn-mnist`",
                    "`extremal_authors` on `efficientnet_lite0-photos`"]
    text = full_only_markdown(rows)
    assert text.startswith("These rows are in the `full` profile only") and "actmatch profile full && dvc repro" in text
    applied = {"syce": {"runs": {"lenet-mnist_3v8": {}, "mnist_cnn-mnist": {}}},
               "evaluate": {"defaults": {"baselines": {"gradcam": {}, "lime": {}}},
                            "runs": {"efficientnet_lite0-photos": {"baselines": {"extremal_authors": {}, "rise": {}}}}}}
    assert full_only(applied, overlay) == [] and full_only_markdown([]) == ""


def test_the_shipped_full_profile_adds_the_two_contrast_rows_to_the_default():
    rows = full_only(read_params(ROOT / "params.yaml"), read_params(ROOT / "profiles/full.yaml"))
    assert rows == ["SyCE and CyCE on `mnist_cnn-mnist` (`train_syce@mnist_cnn-mnist`, scored by `evaluate@mnist_cnn-mnist`)",
                    "`extremal_authors` on `efficientnet_lite0-photos`"]
