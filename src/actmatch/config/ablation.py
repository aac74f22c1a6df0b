"""``ablation``: the loss-term grid (``ablate`` matrix stage: classifier × dataset × variant; every variant
once per seed). Each variant is an overlay on the loss preset of the amortized run it ablates: the run
whose key is the classifier's name (DVC cannot look a run up by a variable key, so the ablated run is
named like its classifier, and its dataset must be the grid's)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationError, field_validator

from actmatch.config.base import ParamsError, Strict, deep_merge, first_error, unique, validate
from actmatch.config.explainer import AmortizedParams, ExplainerRun, LossConfig, explainer, resolve_preset

__all__ = ["AblationParams", "ablation", "ablated_run", "variant_loss"]


class AblationParams(Strict):
    """``classifiers`` × ``datasets``: the amortized runs (keyed by their classifier's name) whose U-Net,
    fill and preset the grid reuses; each variant trains its own amortized U-Net with ``train`` and is
    scored on ``eval_images`` held-out images. ``{}``: the preset itself; ``preset: <name>`` swaps the
    preset a variant overlays. ``matched``: variants run a second time with the area term as a target
    at the base variant's median area (Table 2's equal-area rows). ``seeds``: each variant's training seeds
    (the replicates of Table 2's effects; absent: the top-level ``seeds``)."""

    classifiers: list[str] = Field(min_length=1)
    datasets: list[str] = Field(min_length=1)
    base: str  # the variant every other one is compared with (Δ and paired tests in Table 2)
    train: AmortizedParams
    eval_images: int = Field(ge=2)
    variants: dict[str, dict[str, Any]] = Field(min_length=1)
    matched: list[str] = Field(default_factory=list)
    seeds: list[int] | None = None  # the training seeds of every variant; None: the top-level ``seeds``

    @field_validator("variants")
    @classmethod
    def _names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        bad = [k for k in v if not re.fullmatch(r"[a-z0-9_]+", k)]
        if bad:
            raise ValueError(f"variant names are lowercase letters, digits and '_' (they name stages and folders): {bad}")
        return v

    @field_validator("classifiers", "datasets", "matched")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return unique(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or min(v) < 0):
            raise ValueError(f"ablation.seeds: a non-empty list of ints >= 0, got {v}")
        return None if v is None else unique(v, "ablation.seeds")


def ablation(data: dict[str, Any]) -> AblationParams:
    ab = validate(AblationParams, data, "ablation")
    for name in [ab.base, *ab.matched]:
        if name not in ab.variants:
            raise ParamsError(f"ablation: {name!r} (base / matched) is not a variant; known: {sorted(ab.variants)}")
    return ab


def ablated_run(data: dict[str, Any], classifier: str, dataset: str) -> ExplainerRun:
    """The amortized run the grid of ``classifier`` on ``dataset`` reuses (its key is the classifier's name)."""
    ab, ex = ablation(data), explainer(data)
    if classifier not in ab.classifiers or dataset not in ab.datasets:
        raise ParamsError(f"ablation: {classifier} on {dataset} is not in the grid ({ab.classifiers} x {ab.datasets})")
    if classifier not in ex.amortized_runs:
        raise ParamsError(f"ablation.classifiers: {classifier!r} names no amortized run (the ablated run is keyed by "
                          f"its classifier's name); amortized runs: {sorted(ex.amortized_runs)}")
    run = ex.amortized_runs[classifier]
    if (run.classifier, run.dataset) != (classifier, dataset):
        raise ParamsError(f"ablation: amortized run {classifier!r} explains {run.classifier} on {run.dataset}, "
                          f"not {classifier} on {dataset}")
    return run


def variant_loss(data: dict[str, Any], classifier: str, dataset: str, variant: str,
                 area_target: float | None = None) -> tuple[ExplainerRun, LossConfig]:
    """The ablated run and variant ``variant`` resolved on its preset (or the variant's ``preset:``);
    with ``area_target`` the area term is a target at that area (a matched row)."""
    ab, ex = ablation(data), explainer(data)
    run = ablated_run(data, classifier, dataset)
    if variant not in ab.variants:
        raise ParamsError(f"ablation.variants has no {variant!r}; known: {sorted(ab.variants)}")
    spec = dict(ab.variants[variant])
    preset = spec.pop("preset", None) or run.preset
    try:
        merged = deep_merge(resolve_preset(ex.presets, preset), spec)
        if area_target is not None:
            merged["area_target"] = area_target
        return run, LossConfig.model_validate(merged)
    except ValidationError as err:
        raise ParamsError(f"ablation.variants.{variant}: {first_error(err)}") from None
    except ValueError as err:  # an unknown preset
        raise ParamsError(f"ablation.variants.{variant}: {err}") from None
