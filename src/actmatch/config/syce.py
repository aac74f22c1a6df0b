"""``syce``: SyCE / CyCE (Charachon et al. 2021, method.md §8.1), trained by train_vae and train_syce and
scored beside our masks by evaluate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from actmatch.config.base import ParamsError, Strict, validate

__all__ = ["SyceWeightsParams", "SyceTrainParams", "SyceRun", "VAEParams", "SyceParams", "syce"]


class SyceWeightsParams(Strict):
    """SyCE/CyCE loss weights (method.md §8.1; the authors' values in params.yaml). SyCE uses adv,
    rec_same, rec_other, cls_same, cls_other, gan; CyCE adv, rec_cycle, cls_cycle, gan; both gp."""

    adv: float = Field(ge=0)
    rec_same: float = Field(ge=0)
    rec_other: float = Field(ge=0)
    cls_same: float = Field(ge=0)
    cls_other: float = Field(ge=0)
    rec_cycle: float = Field(ge=0)
    cls_cycle: float = Field(ge=0)
    gan: float = Field(ge=0)
    gp: float = Field(ge=0)


class SyceTrainParams(Strict):
    """Generator/critic training (method.md §8.1: Adam 1e-4, batch 64, up to 60 epochs, plateau 0.3)."""

    g_widths: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=5)
    d_widths: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=5)
    dropout: float = Field(ge=0, lt=1)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=2)
    max_epochs: int = Field(ge=1)
    critic_steps: int = Field(ge=1)          # critic updates per generator update (ours; see ce/train.py)
    plateau_factor: float = Field(gt=0, lt=1)
    plateau_patience: int = Field(ge=0)
    early_stop_patience: int = Field(ge=1)
    max_train: int | None = Field(default=None, ge=2)  # a class-stratified sample (data_seed); None: all
    val_fraction: float = Field(gt=0, lt=1)  # of those, the last part drives the schedule and early stop


class SyceRun(Strict):
    """SyCE/CyCE for one classifier on one dataset; the key is an explainer group, so evaluate scores
    the maps beside ours. A 2-class classifier gets the authors' per-class G_c/D_c; more classes get
    one class-conditional generator aimed at the runner-up class (our extension)."""

    classifier: str
    dataset: str
    max_epochs: int | None = Field(default=None, ge=1)
    max_train: int | None = Field(default=None, ge=2)


class VAEParams(Strict):
    """The small VAE whose embedding scores realism (Fréchet / Jensen-Shannon, method.md §8.1)."""

    datasets: list[str] = Field(min_length=1)  # train_vae@<dataset>: every syce run's dataset
    latent: int = Field(ge=2)
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=2)
    js_bins: int = Field(ge=2)


class SyceParams(Strict):
    variants: list[Literal["syce", "cyce"]] = Field(min_length=1)
    weights: SyceWeightsParams
    train: SyceTrainParams
    vae: VAEParams
    figure_examples: int = Field(ge=1, le=16)  # rows of input / similar / adversarial / map per run in the report
    runs: dict[str, SyceRun] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"variants must be unique (got {v})")
        return v

    def train_for(self, key: str) -> SyceTrainParams:
        """``train`` with run ``key``'s overrides."""
        run = self.runs[key]
        return self.train.model_copy(update={k: v for k, v in (("max_epochs", run.max_epochs),
                                                                ("max_train", run.max_train)) if v is not None})


def syce(data: dict[str, Any]) -> SyceParams:
    if data.get("syce") is None:
        raise ParamsError(f"{data.get('_source', 'params')}: syce: the section is absent (no SyCE/CyCE stages)")
    return validate(SyceParams, data, "syce")
