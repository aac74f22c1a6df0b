"""Top-level keys of params.yaml (seeds, the device, the launcher) and the compute settings of a run."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from actmatch.config.base import Strict, unique, validate

__all__ = ["ComputeParams", "LauncherParams", "Runtime", "runtime"]


class ComputeParams(Strict):
    """The GPU path of one explainer run (``explainer.*_runs.<key>.compute``). The defaults are the CPU
    path and change no number."""

    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast for the U-Net, classifier and loss
    channels_last: bool = False
    loader_workers: int = Field(default=0, ge=0, le=64)  # processes decoding/resizing images (0: in-process)
    per_image_batch: int = Field(default=1, ge=1, le=1024)  # per-image U-Nets optimized at once (torch.func)


class LauncherParams(Strict):
    """The command that starts a stage's script (interpolated into dvc.yaml's ``cmd``)."""

    train_explainer: str = Field(default="python", pattern=r"^(python|torchrun( --[a-z_]+(=\S+)?)*)$")


class Runtime(Strict):
    """``seed``: single-seed trainings (classifiers, SyCE/CyCE, GLANCE); ``data_seed``: everything about
    *which* images (splits, training subsets, evaluation sets, tie-breaking, bootstrap), so a new
    training seed never changes the test images; ``seeds``: our explainer regimes and every ablation
    variant run once per seed (tables report the spread); ``device``: auto, cpu, cuda, cuda:N, mps."""

    seed: int = Field(ge=0)
    data_seed: int = Field(ge=0)
    seeds: list[int] = Field(min_length=1)
    device: str

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v):
            raise ValueError(f"seeds must be >= 0 (got {v})")
        return unique(v, "seeds")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError(f"device {v!r} is not one of: auto, cpu, cuda, cuda:N, mps")
        return v


def runtime(data: dict[str, Any]) -> Runtime:
    """The top-level ``seed``, ``data_seed``, ``seeds`` and ``device`` of a params mapping."""
    sub = {k: data[k] for k in Runtime.model_fields if k in data}
    return validate(Runtime, sub, source=data.get("_source", "params"))
