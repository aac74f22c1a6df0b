"""``train_classifier``: the small classifiers the pipeline trains for the MNIST-like sets.

Architecture and dataset names are checked against their registries by :mod:`actmatch.check`
(:data:`actmatch.classifiers.small.SMALL_ARCHS`, :mod:`actmatch.data.registry`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from actmatch.config.base import RUN_KEY, ParamsError, Strict, validate
from actmatch.config.compute import runtime

__all__ = ["TrainDefaults", "TrainRun", "TrainRunConfig", "TrainClassifierParams", "train_classifier", "train_run"]


class TrainDefaults(Strict):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    augment_shift: int = Field(ge=0, le=8)  # random translation in pixels


class TrainRun(Strict):
    """One classifier to train; unset hyper-parameters come from ``train_classifier.defaults``."""

    arch: str
    dataset: str
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    lr: float | None = Field(default=None, gt=0)
    weight_decay: float | None = Field(default=None, ge=0)
    augment_shift: int | None = Field(default=None, ge=0, le=8)


class TrainRunConfig(Strict):
    """A training run with every hyper-parameter resolved; saved beside the checkpoint."""

    name: str
    arch: str
    dataset: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    augment_shift: int
    seed: int


class TrainClassifierParams(Strict):
    defaults: TrainDefaults
    runs: dict[str, TrainRun] = Field(default_factory=dict)  # may be empty: pretrained classifiers only

    @field_validator("runs")
    @classmethod
    def _keys(cls, v: dict[str, TrainRun]) -> dict[str, TrainRun]:
        for key, run in v.items():
            if not RUN_KEY.match(key):
                raise ValueError(f"run name {key!r} must look like '<arch>-<dataset>' (lowercase, digits, '_')")
            if key != f"{run.arch}-{run.dataset}":
                raise ValueError(f"run name {key!r} must be '{run.arch}-{run.dataset}' (its arch and dataset)")
        return v


def train_classifier(data: dict[str, Any]) -> TrainClassifierParams:
    return validate(TrainClassifierParams, data, "train_classifier")


def train_run(data: dict[str, Any], name: str) -> TrainRunConfig:
    """The run ``train_classifier.runs[name]`` with defaults filled in (and the top-level ``seed``)."""
    tc = train_classifier(data)
    if name not in tc.runs:
        raise ParamsError(f"train_classifier.runs has no run {name!r}; known: {sorted(tc.runs)}")
    merged = tc.defaults.model_dump()
    merged.update({k: v for k, v in tc.runs[name].model_dump().items() if v is not None})
    return TrainRunConfig(name=name, seed=runtime(data).seed, **merged)
