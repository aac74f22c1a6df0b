"""``explainer``: loss presets (method.md §3) and the explainer runs (§2, §4).

A loss term is one registered function in :mod:`actmatch.explainer.losses` plus its weight in the presets of
params.yaml: :class:`LossWeights` takes one weight per name, and the names are checked against that registry
(a layer above this one) by the whole-file check and the objective, before anything is computed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from actmatch.config.base import GROUP_KEY, PER_IMAGE_KEY, ParamsError, Strict, deep_merge, first_error, validate
from actmatch.config.compute import ComputeParams
from actmatch.core.fills import FILLS

__all__ = ["LossWeights", "LossConfig", "UNetParams", "StepsParams", "AmortizedParams", "ExplainerRun",
           "ExplainerParams", "resolve_preset", "explainer"]


class LossWeights(BaseModel):
    """Weights of the loss terms of method.md §3, by term name (``weights.area``; 0 switches a term off).
    The schema follows the loss-term registry, :data:`actmatch.explainer.losses.TERMS`: a weight per
    registered term, no other. The registry lives above this layer, so here each weight is a number ≥ 0 and
    :func:`actmatch.explainer.losses.check_weights` refuses an unknown or a missing name, naming it: in the
    whole-file check (every stage, before it computes) and in the objective."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    __pydantic_extra__: dict[str, Annotated[float, Field(ge=0)]]

    @model_validator(mode="after")
    def _some(self) -> "LossWeights":
        if not self.model_extra:
            raise ValueError("no loss weights: give one per registered loss term")
        return self


class LossConfig(Strict):
    """The explainer's objective (method.md §3): weights and the settings of each term."""

    weights: LossWeights
    temperature: float = Field(gt=0)
    act_distance: Literal["paper", "cosine", "zmse", "kl"]  # paper: cosine on taps 1-2, zmse after
    act_alphas: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)
    tv_neighbours: Literal[4, 8]
    # fill: the removal fill of the run (the authors' "zero" background is their fill, normalized zero);
    # zero: normalized zero whatever the fill; gaussian N(0, 1), uniform U(-1, 1) in normalized space
    rob_backgrounds: list[Literal["fill", "zero", "gaussian", "uniform"]] = Field(min_length=1)
    rob_ste: bool  # false: the authors' hard threshold, which sends no gradient
    nec_margin: float = Field(ge=0)
    # None: the paper's area penalty mean(p); a value a in (0, 1): the area term becomes Fong et al.'s
    # ranking constraint mean((sort(p) - r_a)^2) toward a mask of area a (ours; issue 19)
    area_target: float | None = Field(default=None, gt=0, lt=1)


class UNetParams(Strict):
    """Mask network (method.md §2); the paper's 224 px net is widths 32-64-128-256, bottleneck 512."""

    widths: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=6)
    bottleneck: int = Field(ge=1)
    # soft-mask value the head's bias starts at (ours); null: PyTorch's default random bias (the authors')
    init_area: float | None = Field(gt=0, lt=1)
    # the 3x3 convolutions' padding: zeros (the authors'), or reflect / replicate, which give the net no border
    # to draw a mask along on a flat image (issue 29: the photos' top-border strips; explainer/unet.py)
    padding: Literal["zeros", "reflect", "replicate"] = "zeros"
    # > 1: one free mask value per grid × grid cell, upsampled bilinearly (ours; a photo probe); 1: per pixel.
    # Left out of the dump at 1, so a run without it writes the bytes it wrote before the option existed.
    grid: int = Field(default=1, ge=1)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        if self.grid == 1:
            out.pop("grid", None)
        return out


class StepsParams(Strict):
    """An optimization per image (``per_image`` from scratch, ``finetune`` from the amortized net)."""

    lr: float = Field(gt=0)
    steps: int = Field(ge=1)
    # last: the mask after the final step (the paper); smallest_kept: of the masks seen during the
    # run that keep the label, the one with the smallest hard area (ours; falls back to last); rows
    # made with it are selected on `kept`: the tables label them and add the `last` mask;
    # lowest_loss: the mask of the step with the lowest objective (a restart rule that does not look
    # at `kept`; its `last` mask is reported too)
    select: Literal["last", "smallest_kept", "lowest_loss"] = "last"
    # > 1: the area term's weight grows geometrically from weight / area_ramp at the first step to its full
    # weight at the last (ours, after Fong et al.'s growing area constraint): the mask finds the evidence
    # before it is made small. Selection (lowest_loss) compares losses at the full weight.
    area_ramp: float = Field(default=1.0, ge=1.0)
    # the area ladder (issue 29; explainer/ladder.py), per_image runs only: increasing target areas tried in
    # turn, each rung warm-started from the previous one with `rung_steps` steps (null: `steps`); an image stops
    # at the first rung whose non-empty hard mask keeps its top-1 label with p_e(y)/p_x(y) >= keep_ratio.
    # null: one run at the preset's own area term. keep_ratio also decides the CLI's "label kept" verdict
    ladder: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(default=None, min_length=1)
    rung_steps: int | None = Field(default=None, ge=1)
    keep_ratio: float = Field(default=0.25, ge=0)

    @model_validator(mode="after")
    def _ladder_increases(self) -> "StepsParams":
        if self.ladder is not None and sorted(set(self.ladder)) != self.ladder:
            raise ValueError(f"ladder: target areas must strictly increase, got {self.ladder}")
        return self


class AmortizedParams(Strict):
    lr: float = Field(gt=0)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    max_train: int | None = Field(default=None, ge=1)  # a class-stratified sample (data_seed); None: all


class ExplainerRun(Strict):
    """One explainer: a classifier (registry name or train_classifier run), a dataset, a loss preset."""

    classifier: str
    dataset: str
    preset: str
    fill: Literal[FILLS]  # type: ignore[valid-type]  (the names of actmatch.core.fills)
    unet: UNetParams
    eval_images: int = Field(ge=1)  # the first N test images in a data_seed order get masks (listed in outputs)
    eval_per_class: int | None = Field(default=None, ge=1)  # of those, the first k of each class (paper profile)
    per_image: StepsParams | None = None
    amortized: AmortizedParams | None = None
    finetune: StepsParams | None = None
    # per-image runs only: the group of explainers evaluated together (an amortized run's key) and the
    # regime's name in the tables; the masks go to results/explainers/<group>/<regime>
    group: str | None = Field(default=None, pattern=r"^[a-z0-9_]+(-[a-z0-9_]+)*$")
    regime: str | None = Field(default=None, pattern=r"^per_image[a-z0-9_]*$")
    # the seeds of this run (None: the top-level ``seeds``); a costly contrast row may run fewer
    seeds: list[int] | None = Field(default=None, min_length=1)
    # how this run computes (the GPU path: bf16, channels_last, loader workers, batched per-image U-Nets);
    # per run, so a profile that moves some runs to a GPU does not rerun the others
    compute: ComputeParams = ComputeParams()

    @model_validator(mode="after")
    def _finetune_needs_amortized(self) -> "ExplainerRun":
        if self.finetune is not None and self.amortized is None:
            raise ValueError("finetune starts from the amortized net: set amortized too")
        if self.finetune is not None and self.finetune.ladder is not None:
            raise ValueError("finetune.ladder: the area ladder is for per_image runs")
        return self


def resolve_preset(presets: dict[str, dict[str, Any]], name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Preset ``name`` with its ``base`` chain merged in (a plain mapping, not yet validated)."""
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(presets)}")
    if name in seen:
        raise ValueError(f"preset overlays form a cycle: {' -> '.join(seen + (name,))}")
    spec = dict(presets[name])
    base = spec.pop("base", None)
    return deep_merge(resolve_preset(presets, base, seen + (name,)), spec) if base else spec


class ExplainerParams(Strict):
    """Loss presets (each a full LossConfig, or ``base: <preset>`` plus overrides) and explainer runs.
    ``train_explainer`` runs the amortized (+ finetune) regime of ``amortized_runs``;
    ``explain_images`` the per-image regime of ``per_image_runs``."""

    presets: dict[str, dict[str, Any]] = Field(min_length=1)
    amortized_runs: dict[str, ExplainerRun] = Field(default_factory=dict)
    per_image_runs: dict[str, ExplainerRun] = Field(default_factory=dict)

    def loss(self, name: str, overlay: dict[str, Any] | None = None) -> LossConfig:
        """Preset ``name`` (following ``base`` overlays, then ``overlay``) as a validated LossConfig."""
        return LossConfig.model_validate(deep_merge(resolve_preset(self.presets, name), overlay or {}))

    @model_validator(mode="after")
    def _check(self) -> "ExplainerParams":
        for name in self.presets:
            try:
                self.loss(name)
            except ValidationError as err:
                raise ValueError(f"preset {name!r}: {first_error(err)}") from None
        for kind, runs, regime in (("amortized_runs", self.amortized_runs, "amortized"),
                                   ("per_image_runs", self.per_image_runs, "per_image")):
            for key, run in runs.items():
                if run.preset not in self.presets:
                    raise ValueError(f"{kind}.{key}.preset: {run.preset!r} is not one of {sorted(self.presets)}")
                if getattr(run, regime) is None:
                    raise ValueError(f"{kind}.{key}: needs a {regime!r} section")
                if not (GROUP_KEY if regime == "amortized" else PER_IMAGE_KEY).match(key):
                    raise ValueError(f"{kind}.{key}: run names are lowercase words joined by '-'" + (
                        " (an amortized run is named like its classifier: one explainer per classifier)"
                        if regime == "amortized" else ": '<classifier>-<dataset>' or '<classifier>-<dataset>-<variant>'"))
        groups: dict[str, tuple[str, str]] = {k: (r.classifier, r.dataset) for k, r in self.amortized_runs.items()}
        seen: dict[tuple[str, str], str] = {}
        for key, run in self.per_image_runs.items():
            for field in ("group", "regime"):
                if getattr(run, field) is None:
                    raise ValueError(f"per_image_runs.{key}.{field}: required (the masks go to "
                                     "results/explainers/<group>/<regime>; regime: per_image or per_image_<variant>)")
            pair = groups.setdefault(run.group, (run.classifier, run.dataset))
            if pair != (run.classifier, run.dataset):
                raise ValueError(f"per_image_runs.{key}.group: group {run.group!r} explains {pair[0]} on {pair[1]}, "
                                 f"not {run.classifier} on {run.dataset}")
            if (run.group, run.regime) in seen:
                raise ValueError(f"per_image_runs.{key}.regime: {run.regime!r} is already used by "
                                 f"{seen[(run.group, run.regime)]!r} in group {run.group!r}")
            seen[(run.group, run.regime)] = key
        for key, run in self.amortized_runs.items():
            if run.regime is not None or run.group is not None:
                raise ValueError(f"amortized_runs.{key}: 'group' and 'regime' are for per-image runs (an amortized "
                                 "run's group is its key; its regimes are 'amortized' and 'finetune')")
        return self

    def groups(self) -> dict[str, tuple[str, str]]:
        """Explainer groups → (classifier, dataset): amortized run keys and per-image runs' groups."""
        out = {k: (r.classifier, r.dataset) for k, r in self.amortized_runs.items()}
        out.update({r.group: (r.classifier, r.dataset) for r in self.per_image_runs.values()})
        return out

    def regimes(self, group: str) -> list[str]:
        """The regime names the explainer stages write under results/explainers/<group>/."""
        out = []
        if group in self.amortized_runs:
            out += ["amortized"] + (["finetune"] if self.amortized_runs[group].finetune is not None else [])
        return out + [r.regime for r in self.per_image_runs.values() if r.group == group]

    def amortized_run(self, key: str) -> ExplainerRun:
        if key not in self.amortized_runs:
            raise ParamsError(f"explainer.amortized_runs has no run {key!r}; known: {sorted(self.amortized_runs)}")
        return self.amortized_runs[key]

    def per_image_run(self, key: str) -> ExplainerRun:
        if key not in self.per_image_runs:
            raise ParamsError(f"explainer.per_image_runs has no run {key!r}; known: {sorted(self.per_image_runs)}")
        return self.per_image_runs[key]


def explainer(data: dict[str, Any]) -> ExplainerParams:
    return validate(ExplainerParams, data, "explainer")
