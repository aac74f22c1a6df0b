"""Typed, frozen, strict views of ``params.yaml`` and the one loader that builds them.

Every tunable number lives in ``params.yaml`` (style.md, principle 1). A stage calls
:func:`load_params` once; the whole file is validated before any compute, so a typo in a
section the stage does not use still fails, naming the key path and the allowed values.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ParamsError",
    "Params",
    "TrainRunConfig",
    "EvaluateRunConfig",
    "load_params",
    "parse_params",
    "SOURCE_DATASETS",
    "PRETRAINED_CLASSIFIERS",
    "allow_classifier",
    "TRAINABLE_ARCHS",
]

SourceDataset = Literal["mnist", "fashion_mnist", "photos", "imagenette"]
TrainableDataset = Literal["mnist", "fashion_mnist", "cluttered_mnist", "mnist_3v8", "morpho_mnist"]
PretrainedClassifier = Literal["efficientnet_lite0", "resnet18", "efficientnet_b0", "mobilenet_v3_large", "vit_b_16"]
TrainableArch = Literal["mnist_cnn", "small_resnet", "lenet"]
PhotoName = Literal["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]

SOURCE_DATASETS: tuple[str, ...] = get_args(SourceDataset)
PRETRAINED_CLASSIFIERS: tuple[str, ...] = get_args(PretrainedClassifier)
TRAINABLE_ARCHS: tuple[str, ...] = get_args(TrainableArch)
# Names a plugin registers (actmatch.classifiers.registry.register calls allow_classifier); kept
# here rather than read from the registry so that loading params never imports torch or the
# classifier code, and stages that only read params do not depend on it.
_PLUGIN_CLASSIFIERS: list[str] = []


def allow_classifier(name: str) -> None:
    """Accept ``name`` in ``download.classifiers`` (called for each non-built-in registry entry)."""
    if name not in PRETRAINED_CLASSIFIERS and name not in _PLUGIN_CLASSIFIERS:
        _PLUGIN_CLASSIFIERS.append(name)


def _known_classifier(name: str) -> str:
    known = [*PRETRAINED_CLASSIFIERS, *_PLUGIN_CLASSIFIERS]
    if name not in known:
        listed = ", ".join(repr(n) for n in known[:-1]) + f" or {known[-1]!r}"
        raise ValueError(f"unknown classifier {name!r}; expected {listed}")
    return name


ClassifierName = Annotated[str, AfterValidator(_known_classifier)]
RUN_KEY = re.compile(r"^[a-z0-9_]+-[a-z0-9_]+$")
PER_IMAGE_KEY = re.compile(r"^[a-z0-9_]+-[a-z0-9_]+(-[a-z0-9_]+)?$")


class ParamsError(ValueError):
    """params.yaml is missing, unreadable, or fails validation. The message names the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Split(_Strict):
    """Fractions of a dataset's images in the train and test parts; they must add up to 1."""

    train: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _adds_up(self) -> "Split":
        if not math.isclose(self.train + self.test, 1.0, abs_tol=1e-9):
            raise ValueError(f"split fractions must add up to 1 (got train {self.train} + test {self.test} "
                             f"= {self.train + self.test:g})")
        return self


class MnistParams(_Strict):
    split: Split
    limit: int | None = Field(default=None, ge=20, le=5000)  # stratified subset (tests); None keeps all 5,000


class ClutteredMnistParams(_Strict):
    canvas: int = Field(ge=32, le=256)
    fragments: int = Field(ge=0, le=32)
    fragment_size: int = Field(ge=2, le=28)
    train_copies: int = Field(default=1, ge=1, le=10)  # canvases per train digit (test digits get one)


class MnistPairParams(_Strict):
    """A binary task from two mnist classes (SyCE/CyCE's 3 vs 8, method.md §8.1); labels 0, 1 in that order."""

    classes: list[Annotated[int, Field(ge=0, le=9)]] = Field(min_length=2, max_length=2)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if v[0] == v[1]:
            raise ValueError(f"the two classes must differ (got {v})")
        return v


class MorphoMnistParams(_Strict):
    """The controlled digits of GLANCE (method.md §8.2): the Morpho-MNIST recipe thickness → intensity,
    thickness → slant applied to every mnist digit (constants in actmatch.glance.perturb)."""

    scale: int = Field(default=4, ge=1, le=8)  # upsampling for the morphological edits and measurements


class PhotosParams(_Strict):
    names: list[PhotoName] = Field(min_length=1)

    @field_validator("names")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"photo names must be unique (got {v})")
        return v


class FashionMnistParams(_Strict):
    debian_dir: str  # where Debian's dataset-fashion-mnist puts the IDX .gz files
    limit_train: int | None = Field(default=None, ge=10, le=60000)
    limit_test: int | None = Field(default=None, ge=10, le=10000)


class ImagenetteParams(_Strict):
    variant: Literal["160", "320"]
    max_per_class_train: int | None = Field(default=None, ge=1)
    max_per_class_test: int | None = Field(default=None, ge=1)


class DatasetsParams(_Strict):
    mnist: MnistParams
    cluttered_mnist: ClutteredMnistParams
    photos: PhotosParams
    fashion_mnist: FashionMnistParams
    imagenette: ImagenetteParams
    mnist_3v8: MnistPairParams = MnistPairParams(classes=[3, 8])
    morpho_mnist: MorphoMnistParams = MorphoMnistParams()


class DownloadParams(_Strict):
    datasets: list[SourceDataset] = Field(min_length=1)
    classifiers: list[ClassifierName] = Field(default_factory=list)  # built-ins + names ACTMATCH_PLUGINS register

    @field_validator("datasets", "classifiers")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"names must be unique (got {v})")
        return v



class TrainDefaults(_Strict):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    augment_shift: int = Field(ge=0, le=8)  # random translation in pixels


class TrainRun(_Strict):
    """One classifier to train; unset hyper-parameters come from ``train_classifier.defaults``."""

    arch: TrainableArch
    dataset: TrainableDataset
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    lr: float | None = Field(default=None, gt=0)
    weight_decay: float | None = Field(default=None, ge=0)
    augment_shift: int | None = Field(default=None, ge=0, le=8)


class TrainRunConfig(_Strict):
    """A training run with every hyper-parameter resolved; saved beside the checkpoint."""

    name: str
    arch: TrainableArch
    dataset: TrainableDataset
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    augment_shift: int
    seed: int


class TrainClassifierParams(_Strict):
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


class LossWeights(_Strict):
    """Weights of the loss terms of method.md §3 (0 switches a term off)."""

    act: float = Field(ge=0)
    ce: float = Field(ge=0)
    kl: float = Field(ge=0)
    area: float = Field(ge=0)
    bin: float = Field(ge=0)
    tv: float = Field(ge=0)
    rob: float = Field(ge=0)
    nec: float = Field(ge=0)


class LossConfig(_Strict):
    """The explainer's objective (method.md §3): weights and the settings of each term."""

    weights: LossWeights
    temperature: float = Field(gt=0)
    act_distance: Literal["paper", "cosine", "zmse", "kl"]  # paper: cosine on taps 1-2, zmse after
    act_alphas: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)
    tv_neighbours: Literal[4, 8]
    rob_backgrounds: list[Literal["zero", "gaussian", "uniform"]] = Field(min_length=1)
    rob_ste: bool  # false: the authors' hard threshold, which sends no gradient
    nec_margin: float = Field(ge=0)


Regime = Literal["per_image", "amortized", "finetune"]
DatasetName = Literal["mnist", "fashion_mnist", "photos", "cluttered_mnist", "imagenette", "mnist_3v8", "morpho_mnist"]


class UNetParams(_Strict):
    """Mask network (method.md §2); the paper's 224 px net is widths 32-64-128-256, bottleneck 512."""

    widths: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=6)
    bottleneck: int = Field(ge=1)
    init_area: float = Field(gt=0, lt=1)  # soft-mask value the head's bias starts at (paper: 0.5)


class StepsParams(_Strict):
    """An optimization per image (``per_image`` from scratch, ``finetune`` from the amortized net)."""

    lr: float = Field(gt=0)
    steps: int = Field(ge=1)
    # last: the mask after the final step (the paper); smallest_kept: of the masks seen during the
    # run that keep the label, the one with the smallest hard area (ours; falls back to last)
    select: Literal["last", "smallest_kept"] = "last"


class AmortizedParams(_Strict):
    lr: float = Field(gt=0)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    max_train: int | None = Field(default=None, ge=1)  # first N train images (None: all)


class ExplainerRun(_Strict):
    """One explainer: a classifier (registry name or train_classifier run), a dataset, a loss preset."""

    classifier: str
    dataset: DatasetName
    preset: str
    fill: Literal["normalized_zero", "black", "blur", "mean"]
    unet: UNetParams
    eval_images: int = Field(ge=1)  # the first N test images get masks (fixed, listed in the outputs)
    eval_per_class: int | None = Field(default=None, ge=1)  # of those, the first k of each class (paper profile)
    per_image: StepsParams | None = None
    amortized: AmortizedParams | None = None
    finetune: StepsParams | None = None
    # per-image runs only: the group of explainers evaluated together (an amortized run's key) and the
    # regime's name in the tables; the masks go to results/explainers/<group>/<regime>
    group: str | None = Field(default=None, pattern=r"^[a-z0-9_]+-[a-z0-9_]+$")
    regime: str | None = Field(default=None, pattern=r"^per_image[a-z0-9_]*$")

    def record(self) -> dict[str, Any]:
        """The run as written into outputs (config.yaml, checkpoints); an unset ``eval_per_class`` is
        left out so outputs written before the field existed stay byte-identical."""
        d = self.model_dump()
        if d["eval_per_class"] is None:
            del d["eval_per_class"]
        return d

    @model_validator(mode="after")
    def _finetune_needs_amortized(self) -> "ExplainerRun":
        if self.finetune is not None and self.amortized is None:
            raise ValueError("finetune starts from the amortized net: set amortized too")
        return self


class ExplainerParams(_Strict):
    """Loss presets (each a full LossConfig, or ``base: <preset>`` plus overrides) and explainer runs.
    ``train_explainer`` runs the amortized (+ finetune) regime of ``amortized_runs``;
    ``explain_images`` the per-image regime of ``per_image_runs``."""

    presets: dict[str, dict[str, Any]] = Field(min_length=1)
    amortized_runs: dict[str, ExplainerRun] = Field(default_factory=dict)
    per_image_runs: dict[str, ExplainerRun] = Field(default_factory=dict)

    def loss(self, name: str) -> LossConfig:
        """Resolve preset ``name`` (following ``base`` overlays) into a validated LossConfig."""
        return LossConfig.model_validate(_resolve_preset(self.presets, name, ()))

    @model_validator(mode="after")
    def _check(self) -> "ExplainerParams":
        for name in self.presets:
            try:
                self.loss(name)
            except ValidationError as err:
                e = err.errors()[0]
                where = ".".join(str(x) for x in e["loc"])
                raise ValueError(f"preset {name!r}: {where}: {e['msg']} (got {e.get('input')!r})") from None
        for kind, runs, regime in (("amortized_runs", self.amortized_runs, "amortized"),
                                   ("per_image_runs", self.per_image_runs, "per_image")):
            for key, run in runs.items():
                if run.preset not in self.presets:
                    raise ValueError(f"{kind}.{key}.preset: {run.preset!r} is not one of {sorted(self.presets)}")
                if getattr(run, regime) is None:
                    raise ValueError(f"{kind}.{key}: needs a {regime!r} section")
                if not (RUN_KEY if regime == "amortized" else PER_IMAGE_KEY).match(key):
                    raise ValueError(f"{kind}.{key}: run names look like '<classifier>-<dataset>'"
                                     + ("" if regime == "amortized" else " or '<classifier>-<dataset>-<variant>'"))
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


BaselineName = Literal["gradcam", "gradcam_pp", "integrated_gradients", "occlusion", "rise", "extremal", "random",
                       "centre"]
Setting = int | float


class EvaluateDefaults(_Strict):
    """How the evaluate stage scores every method (method.md §5-6)."""

    match_area: str  # the regime whose per-image hard-mask area every baseline is binarized to
    max_images: int | None = Field(default=None, ge=1)  # first N images of match_area's set (None: all)
    batch_size: int = Field(ge=1)
    curve_steps: int = Field(ge=2)
    perturb_draws: int = Field(ge=1)
    budgets: list[Annotated[float, Field(gt=0, le=1)]] = Field(min_length=1)
    max_pieces: int = Field(ge=1)
    bootstrap: int = Field(ge=100)
    cost_images: int = Field(ge=1)  # images each method explains one at a time for ms / peak memory
    baselines: dict[BaselineName, dict[str, Setting]]


class EvaluateRun(_Strict):
    """One evaluation '<classifier>-<dataset>': every regime of ours found for the pair, plus the
    baselines; unset fields come from ``evaluate.defaults`` (``baselines`` merges per method)."""

    classifier: str
    dataset: DatasetName
    match_area: str | None = None
    max_images: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    cost_images: int | None = Field(default=None, ge=1)
    baselines: dict[BaselineName, dict[str, Setting]] | None = None


class EvaluateRunConfig(EvaluateDefaults):
    name: str
    classifier: str
    dataset: DatasetName
    seed: int


class EvaluateParams(_Strict):
    defaults: EvaluateDefaults
    runs: dict[str, EvaluateRun] = Field(default_factory=dict)


class AblationParams(_Strict):
    """The ablation grid (``ablate`` matrix stage: classifier × dataset × variant). Each variant is an
    overlay on the loss preset of the amortized run explaining that classifier on that dataset
    (``{}``: the preset itself; ``preset: <name>`` swaps the preset it overlays); every variant trains
    its own amortized U-Net with ``train`` and is scored on ``eval_images`` held-out images."""

    classifiers: list[str] = Field(min_length=1)
    datasets: list[DatasetName] = Field(min_length=1)
    base: str  # the variant every other one is compared with (Δ and Wilcoxon in Table 2)
    train: AmortizedParams
    eval_images: int = Field(ge=2)
    variants: dict[str, dict[str, Any]] = Field(min_length=1)

    @field_validator("variants")
    @classmethod
    def _names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        bad = [k for k in v if not re.fullmatch(r"[a-z0-9_]+", k)]
        if bad:
            raise ValueError(f"variant names are lowercase letters, digits and '_' (they name stages and folders): {bad}")
        return v


class ReportParams(_Strict):
    """The report stage: examples per Figure 1 panel, the evaluation image Figure 2 sweeps on, dpi."""

    examples: int = Field(ge=1, le=24)
    sweep_image: int = Field(ge=0)
    dpi: int = Field(ge=50, le=600)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_preset(presets: dict[str, dict[str, Any]], name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(presets)}")
    if name in seen:
        raise ValueError(f"preset overlays form a cycle: {' -> '.join(seen + (name,))}")
    spec = dict(presets[name])
    base = spec.pop("base", None)
    return _deep_merge(_resolve_preset(presets, base, seen + (name,)), spec) if base else spec


class CEWeightsParams(_Strict):
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


class CETrainParams(_Strict):
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
    max_train: int | None = Field(default=None, ge=2)  # first N train images (None: all)
    val_fraction: float = Field(gt=0, lt=1)  # of those, the last part drives the schedule and early stop


class CERun(_Strict):
    """SyCE/CyCE for one classifier on one dataset; the key is an explainer group, so evaluate scores
    the maps beside ours. A 2-class classifier gets the authors' per-class G_c/D_c; more classes get
    one class-conditional generator aimed at the runner-up class (our extension)."""

    classifier: str
    dataset: DatasetName
    max_epochs: int | None = Field(default=None, ge=1)
    max_train: int | None = Field(default=None, ge=2)


class VAEParams(_Strict):
    """The small VAE whose embedding scores realism (Fréchet / Jensen-Shannon, method.md §8.1)."""

    datasets: list[DatasetName] = Field(min_length=1)  # train_vae@<dataset>: every ce run's dataset
    latent: int = Field(ge=2)
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=2)
    js_bins: int = Field(ge=2)


class CEParams(_Strict):
    variants: list[Literal["syce", "cyce"]] = Field(min_length=1)
    weights: CEWeightsParams
    train: CETrainParams
    vae: VAEParams
    figure_examples: int = Field(ge=1, le=16)  # rows of input / similar / adversarial / map per run in the report
    runs: dict[str, CERun] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"variants must be unique (got {v})")
        return v

    def train_for(self, key: str) -> CETrainParams:
        """``train`` with run ``key``'s overrides."""
        run = self.runs[key]
        return self.train.model_copy(update={k: v for k, v in (("max_epochs", run.max_epochs),
                                                                ("max_train", run.max_train)) if v is not None})


class GlanceWeightsParams(_Strict):
    """The surrogate's loss weights (method.md §8.2; ours: the paper names the terms, not their weights)."""

    rec: float = Field(ge=0)
    feat: float = Field(ge=0)
    kl: float = Field(ge=0)
    gan: float = Field(ge=0)
    r1: float = Field(ge=0)
    align: float = Field(ge=0)
    decor: float = Field(ge=0)
    temperature: float = Field(gt=0)


class GlanceSurrogateParams(_Strict):
    free: int = Field(ge=1, le=64)        # free latent dims (plus one aligned dim per context feature)
    width: int = Field(ge=4)              # generator channels
    style_dim: int = Field(ge=4)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=2)
    epochs: int = Field(ge=1)
    max_train: int | None = Field(default=None, ge=10)  # first N train images (None: all)


class GlanceGraphParams(_Strict):
    lambda1: float = Field(ge=0)          # DAGMA's L1 weight
    w_threshold: float = Field(ge=0)      # |w| below it: no edge


class GlanceLocalParams(_Strict):
    grid: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)   # |δ| tried for counterfactuals (SDs, both signs)
    importance_delta: float = Field(gt=0)                             # δ of the importance scores
    strip_deltas: list[float] = Field(min_length=2)                   # the report's intervention strips


class GlanceRun(_Strict):
    """One surrogate + graph + local explanations; a key that is an explainer group is scored by evaluate@<key>."""

    classifier: str
    dataset: DatasetName
    tap: str | None = None   # the layer matched by the feature term (None: the classifier's last spatial tap)


class GlanceParams(_Strict):
    features: list[Literal["area", "length", "thickness", "slant", "width", "height", "intensity"]] = Field(min_length=1)
    feature_datasets: list[DatasetName] = Field(min_length=1)  # morpho_features@<dataset>
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


class ComputeParams(_Strict):
    """The GPU path (issue 6). The defaults are the CPU path and change no number."""

    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast for the U-Net, classifier and loss
    channels_last: bool = False
    loader_workers: int = Field(default=0, ge=0, le=64)  # processes decoding/resizing images (0: in-process)
    per_image_batch: int = Field(default=1, ge=1, le=1024)  # per-image U-Nets optimized at once (torch.func)


class LauncherParams(_Strict):
    """The command that starts a stage's script (interpolated into dvc.yaml's ``cmd``)."""

    train_explainer: str = Field(default="python", pattern=r"^(python|torchrun( --[a-z_]+(=\S+)?)*)$")


class Params(_Strict):
    seed: int = Field(ge=0)
    device: str
    compute: ComputeParams = ComputeParams()
    launcher: LauncherParams = LauncherParams()
    download: DownloadParams
    datasets: DatasetsParams
    train_classifier: TrainClassifierParams
    explainer: ExplainerParams
    evaluate: EvaluateParams
    ablation: AblationParams
    report: ReportParams
    ce: CEParams | None = None  # SyCE / CyCE (issue 8); absent: no such stages
    glance: GlanceParams | None = None  # GLANCE reconstruction (issue 9); absent: no such stages

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError(f"device {v!r} is not one of: auto, cpu, cuda, cuda:N, mps")
        return v

    @model_validator(mode="after")
    def _datasets_available(self) -> "Params":
        if "mnist" not in self.download.datasets:
            raise ValueError("download.datasets must include 'mnist': the make_cluttered_mnist stage builds on it "
                             f"(now {self.download.datasets})")
        made = set(self.download.datasets) | ({"cluttered_mnist", "mnist_3v8", "morpho_mnist"}
                                              if "mnist" in self.download.datasets else set())
        for key, run in self.train_classifier.runs.items():
            if run.dataset not in made:
                raise ValueError(f"train_classifier.runs.{key}.dataset: {run.dataset!r} is not produced by this "
                                 f"pipeline; add it (or mnist, for cluttered_mnist) to download.datasets "
                                 f"(now {self.download.datasets})")
        known = set(self.download.classifiers) | set(self.train_classifier.runs)
        for kind in ("amortized_runs", "per_image_runs"):
            for key, run in getattr(self.explainer, kind).items():
                if run.classifier not in known:
                    raise ValueError(f"explainer.{kind}.{key}.classifier: {run.classifier!r} is neither in "
                                     f"download.classifiers nor a train_classifier run; known: {sorted(known)}")
                if run.dataset not in made:
                    raise ValueError(f"explainer.{kind}.{key}.dataset: {run.dataset!r} is not produced by "
                                     f"this pipeline (download.datasets: {self.download.datasets})")
        groups = self.explainer.groups()
        for key, run in self.evaluate.runs.items():
            if key not in groups:
                raise ValueError(f"evaluate.runs.{key}: not an explainer group (an amortized run's key or a per-image "
                                 f"run's group); known: {sorted(groups)}")
            if groups[key] != (run.classifier, run.dataset):
                raise ValueError(f"evaluate.runs.{key}: its explainers explain {groups[key][0]} on {groups[key][1]}, "
                                 f"not {run.classifier} on {run.dataset}")
            regimes = self.explainer.regimes(key)
            match = run.match_area or self.evaluate.defaults.match_area
            if match not in regimes:
                raise ValueError(f"evaluate.runs.{key}.match_area: {match!r} is not a regime produced for it; "
                                 f"allowed: {regimes}")
        for key, run in (self.ce.runs if self.ce else {}).items():
            if key not in groups:
                raise ValueError(f"ce.runs.{key}: not an explainer group (its maps are scored beside ours by "
                                 f"evaluate@{key}); known: {sorted(groups)}")
            if groups[key] != (run.classifier, run.dataset):
                raise ValueError(f"ce.runs.{key}: its explainers explain {groups[key][0]} on {groups[key][1]}, "
                                 f"not {run.classifier} on {run.dataset}")
            if run.dataset not in self.ce.vae.datasets:
                raise ValueError(f"ce.runs.{key}.dataset: {run.dataset!r} needs a VAE: add it to ce.vae.datasets "
                                 f"(now {self.ce.vae.datasets})")
            if run.classifier not in self.train_classifier.runs:
                raise ValueError(f"ce.runs.{key}.classifier: {run.classifier!r} must be a train_classifier run "
                                 f"(SyCE/CyCE are built at MNIST scale); runs: {sorted(self.train_classifier.runs)}")
        for key, grun in (self.glance.runs if self.glance else {}).items():
            if key in groups and groups[key] != (grun.classifier, grun.dataset):
                raise ValueError(f"glance.runs.{key}: the explainer group {key} explains {groups[key][0]} on "
                                 f"{groups[key][1]}, not {grun.classifier} on {grun.dataset}")
            if grun.classifier not in self.train_classifier.runs:
                raise ValueError(f"glance.runs.{key}.classifier: {grun.classifier!r} must be a train_classifier run "
                                 f"(GLANCE is built at MNIST scale); runs: {sorted(self.train_classifier.runs)}")
            if grun.dataset not in self.glance.feature_datasets:
                raise ValueError(f"glance.runs.{key}.dataset: {grun.dataset!r} needs context features: add it to "
                                 f"glance.feature_datasets (now {self.glance.feature_datasets})")
        for d in (self.glance.feature_datasets if self.glance else []):
            if d not in made:
                raise ValueError(f"glance.feature_datasets: {d!r} is not produced by this pipeline")
        ab = self.ablation
        if self.report.sweep_image >= ab.eval_images:
            raise ValueError(f"report.sweep_image: {self.report.sweep_image} is not one of the "
                             f"{ab.eval_images} ablation.eval_images")
        if ab.base not in ab.variants:
            raise ValueError(f"ablation.base: {ab.base!r} is not a variant; known: {sorted(ab.variants)}")
        for c in ab.classifiers:
            for d in ab.datasets:
                try:
                    self.ablation_run(c, d)
                except KeyError as err:
                    raise ValueError(err.args[0]) from None
                for v in ab.variants:
                    try:
                        self.ablation_loss(c, d, v)
                    except ValidationError as err:
                        e = err.errors()[0]
                        where = ".".join(str(x) for x in e["loc"])
                        raise ValueError(f"ablation.variants.{v}: {where}: {e['msg']} (got {e.get('input')!r})") from None
                    except ValueError as err:  # an unknown preset
                        raise ValueError(f"ablation.variants.{v}: {err}") from None
        return self

    def ablation_run(self, classifier: str, dataset: str) -> tuple[str, ExplainerRun]:
        """The amortized run (key, settings) whose U-Net, fill and preset the ablation of the pair reuses."""
        found = [(k, r) for k, r in self.explainer.amortized_runs.items()
                 if (r.classifier, r.dataset) == (classifier, dataset)]
        if len(found) != 1:
            pairs = sorted((r.classifier, r.dataset) for r in self.explainer.amortized_runs.values())
            raise KeyError(f"ablation: {'no' if not found else 'more than one'} amortized run explains {classifier} on "
                           f"{dataset}; the ablation reuses exactly one (amortized runs: {pairs})")
        return found[0]

    def ablation_loss(self, classifier: str, dataset: str, variant: str) -> LossConfig:
        """Variant ``variant`` resolved on the preset of the pair's amortized run (or its ``preset:``)."""
        if variant not in self.ablation.variants:
            raise KeyError(f"ablation.variants has no {variant!r}; known: {sorted(self.ablation.variants)}")
        spec = dict(self.ablation.variants[variant])
        preset = spec.pop("preset", None) or self.ablation_run(classifier, dataset)[1].preset
        return LossConfig.model_validate(_deep_merge(_resolve_preset(self.explainer.presets, preset, ()), spec))

    def evaluate_run(self, name: str) -> EvaluateRunConfig:
        """The run ``evaluate.runs[name]`` with defaults filled in (baseline settings merged per method)."""
        if name not in self.evaluate.runs:
            raise KeyError(f"evaluate.runs has no run {name!r}; known: {sorted(self.evaluate.runs)}")
        run = self.evaluate.runs[name]
        merged = self.evaluate.defaults.model_dump()
        for k, v in run.model_dump().items():
            if k == "baselines" and v is not None:
                merged[k] = {**merged[k], **{m: {**merged[k].get(m, {}), **s} for m, s in v.items()}}
            elif v is not None:
                merged[k] = v
        return EvaluateRunConfig(name=name, seed=self.seed, **merged)

    def train_run(self, name: str) -> TrainRunConfig:
        """The run ``train_classifier.runs[name]`` with defaults filled in."""
        if name not in self.train_classifier.runs:
            raise KeyError(f"train_classifier.runs has no run {name!r}; known: {sorted(self.train_classifier.runs)}")
        run = self.train_classifier.runs[name]
        merged = self.train_classifier.defaults.model_dump()
        merged.update({k: v for k, v in run.model_dump().items() if v is not None})
        return TrainRunConfig(name=name, seed=self.seed, **merged)


def _unwrap_optional(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) is not dict and type(None) in get_args(tp) and len(args) == 1:
        return args[0]
    return tp


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Walk ``loc`` (without its last element) through the model's fields; list the keys allowed there."""
    current: Any = model
    for part in loc[:-1]:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _format(err: ValidationError, source: str) -> str:
    lines = [f"{source}: {err.error_count()} invalid value(s):"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<top level>"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(Params, e["loc"])
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"  {path}: unknown key{hint}")
        elif e["type"] == "missing":
            lines.append(f"  {path}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"  # a whole section is noise
            lines.append(f"  {path}: {msg}{shown}")
    return "\n".join(lines)


def parse_params(data: Any, source: str = "params") -> Params:
    """Validate an already-parsed mapping. Raises :class:`ParamsError` naming each bad key path."""
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as err:
        raise ParamsError(_format(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml`` (YAML 1.2, as DVC reads it, so ``1e-3`` is a float)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(data, str(path))
