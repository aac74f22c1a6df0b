"""``glance``: our GLANCE reconstruction (Kori et al., method.md §8.2): morpho_features, train_glance.
Feature names belong to :mod:`actmatch.glance.morpho`; :mod:`actmatch.check` refuses unknown ones."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from actmatch.config.base import ParamsError, Strict, validate

__all__ = ["GlanceWeightsParams", "GlanceSurrogateParams", "GlanceGraphParams", "GlanceLocalParams", "GlanceRun",
           "GlanceParams", "glance"]


class GlanceWeightsParams(Strict):
    """The surrogate's loss weights (method.md §8.2; ours: the paper names the terms, not their weights)."""

    rec: float = Field(ge=0)
    feat: float = Field(ge=0)
    kl: float = Field(ge=0)
    gan: float = Field(ge=0)
    r1: float = Field(ge=0)
    align: float = Field(ge=0)
    decor: float = Field(ge=0)
    temperature: float = Field(gt=0)


class GlanceSurrogateParams(Strict):
    free: int = Field(ge=1, le=64)        # free latent dims (plus one aligned dim per context feature)
    width: int = Field(ge=4)              # generator channels
    style_dim: int = Field(ge=4)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=2)
    epochs: int = Field(ge=1)
    max_train: int | None = Field(default=None, ge=10)  # a class-stratified sample (data_seed); None: all


class GlanceGraphParams(Strict):
    lambda1: float = Field(ge=0)          # DAGMA's L1 weight
    w_threshold: float = Field(ge=0)      # |w| below it: no edge


class GlanceLocalParams(Strict):
    grid: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)   # |δ| tried for counterfactuals (SDs, both signs)
    importance_delta: float = Field(gt=0)                             # δ of the importance scores
    strip_deltas: list[float] = Field(min_length=2)                   # the report's intervention strips


class GlanceRun(Strict):
    """One surrogate + graph + local explanations; a key that is an explainer group is scored by evaluate@<key>."""

    classifier: str
    dataset: str
    tap: str | None = None   # the layer matched by the feature term (None: the classifier's last spatial tap)


class GlanceParams(Strict):
    features: list[str] = Field(min_length=1)  # Morpho-MNIST features of actmatch.glance.morpho.FEATURES
    feature_datasets: list[str] = Field(min_length=1)  # morpho_features@<dataset>
    weights: GlanceWeightsParams
    surrogate: GlanceSurrogateParams
    graph: GlanceGraphParams
    local: GlanceLocalParams
    figure_examples: int = Field(ge=1, le=16)
    runs: dict[str, GlanceRun] = Field(default_factory=dict)

    @field_validator("features")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"features must be unique (got {v})")
        return v


def glance(data: dict[str, Any]) -> GlanceParams:
    if data.get("glance") is None:
        raise ParamsError(f"{data.get('_source', 'params')}: glance: the section is absent (no GLANCE stages)")
    return validate(GlanceParams, data, "glance")
