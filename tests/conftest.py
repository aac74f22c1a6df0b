"""Shared fixtures: the repo root, a parsed copy of params.yaml, and a tiny params mapping."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture()
def params_dict() -> dict:
    """A fresh, mutable copy of the repository's params.yaml."""
    data = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    return copy.deepcopy(data)


@pytest.fixture()
def tiny_params(params_dict: dict) -> dict:
    """params.yaml shrunk for tests: 200 digits, 1 epoch, two runs."""
    p = params_dict
    p["datasets"]["mnist"]["limit"] = 200
    p["datasets"]["photos"]["names"] = ["chelsea", "coffee"]
    p["train_classifier"]["defaults"].update(epochs=1, batch_size=64)
    p["train_classifier"]["runs"] = {
        "mnist_cnn-mnist": {"arch": "mnist_cnn", "dataset": "mnist"},
        "small_resnet-cluttered_mnist": {"arch": "small_resnet", "dataset": "cluttered_mnist"},
    }
    p["device"] = "cpu"
    return p
