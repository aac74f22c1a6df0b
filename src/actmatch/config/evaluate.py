"""``evaluate``: how every method is scored (method.md §5-6). Baseline names belong to the baselines
registry (:mod:`actmatch.baselines`); :mod:`actmatch.check` refuses unknown ones."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from actmatch.config.base import ParamsError, Strict, validate
from actmatch.config.compute import runtime

__all__ = ["EvaluateDefaults", "EvaluateRun", "EvaluateRunConfig", "EvaluateParams", "evaluate", "evaluate_run",
           "score_defaults"]

Setting = int | float


class EvaluateDefaults(Strict):
    """How the evaluate stage scores every method (method.md §5-6)."""

    match_area: str  # the regime whose per-image hard-mask areas (per seed) every baseline is binarized at
    max_images: int | None = Field(default=None, ge=1)  # first N images of match_area's set (None: all)
    batch_size: int = Field(ge=1)
    curve_steps: int = Field(ge=2)
    perturb_draws: int = Field(ge=1)
    budgets: list[Annotated[float, Field(gt=0, le=1)]] = Field(min_length=1)
    max_pieces: int = Field(ge=1)
    bootstrap: int = Field(ge=100)
    cost_images: int = Field(ge=1)  # images each method explains one at a time for ms / peak memory
    baselines: dict[str, dict[str, Setting]]


class EvaluateRun(Strict):
    """One evaluation of an explainer group: every regime of ours found for it, plus the baselines;
    unset fields come from ``evaluate.defaults`` (``baselines`` merges per method)."""

    classifier: str
    dataset: str
    match_area: str | None = None
    max_images: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    cost_images: int | None = Field(default=None, ge=1)
    baselines: dict[str, dict[str, Setting]] | None = None


class EvaluateRunConfig(EvaluateDefaults):
    name: str
    classifier: str
    dataset: str
    seed: int  # data_seed: tie-breaking of equal saliency, random controls, bootstrap


class EvaluateParams(Strict):
    defaults: EvaluateDefaults
    runs: dict[str, EvaluateRun] = Field(default_factory=dict)


def evaluate(data: dict[str, Any]) -> EvaluateParams:
    return validate(EvaluateParams, data, "evaluate")


def score_defaults(data: dict[str, Any]) -> EvaluateDefaults:
    """``evaluate.defaults`` alone (the ablation scores its variants with them)."""
    return validate(EvaluateDefaults, data, "evaluate", "defaults")


def evaluate_run(data: dict[str, Any], name: str) -> EvaluateRunConfig:
    """The run ``evaluate.runs[name]`` with defaults filled in (baseline settings merged per method)."""
    ev = evaluate(data)
    if name not in ev.runs:
        raise ParamsError(f"evaluate.runs has no run {name!r}; known: {sorted(ev.runs)}")
    merged = ev.defaults.model_dump()
    for k, v in ev.runs[name].model_dump().items():
        if k == "baselines" and v is not None:
            merged[k] = {**merged[k], **{m: {**merged[k].get(m, {}), **s} for m, s in v.items()}}
        elif v is not None:
            merged[k] = v
    return EvaluateRunConfig(name=name, seed=runtime(data).data_seed, **merged)
