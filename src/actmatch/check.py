"""The whole-file check of params.yaml: every section's schema, the checks across sections, and every
name against the registry that owns it (datasets, photos, classifiers, architectures, baselines,
context features) and the loss weights against the loss-term registry. Every stage runs it before computing (:func:`actmatch.core.stage.run_stage`), so a
typo anywhere fails at once, naming the key path and the allowed values.

This module is deliberately **not** a DVC dependency of the stages: it can only refuse a params
file, never change what a stage computes (each stage reads its own sections through the
``actmatch.config.<section>`` modules it imports). Editing a check reruns nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from actmatch.config.ablation import AblationParams, variant_loss
from actmatch.config.base import ParamsError, Strict, format_error, read_params
from actmatch.config.classifiers import TrainClassifierParams
from actmatch.config.compute import LauncherParams, Runtime
from actmatch.config.data import DatasetsParams, DownloadParams
from actmatch.config.evaluate import EvaluateParams
from actmatch.config.explainer import ExplainerParams
from actmatch.config.glance import GlanceParams
from actmatch.config.report import ReportParams
from actmatch.config.syce import SyceParams

__all__ = ["Params", "parse_params", "check_params", "check_file"]


class Params(Runtime):
    """params.yaml as a whole (the sections' schemas; names and the checks across sections come after)."""

    launcher: LauncherParams = LauncherParams()
    download: DownloadParams
    datasets: DatasetsParams
    train_classifier: TrainClassifierParams
    explainer: ExplainerParams
    evaluate: EvaluateParams
    ablation: AblationParams
    report: ReportParams
    syce: SyceParams | None = None  # SyCE / CyCE; absent: no such stages
    glance: GlanceParams | None = None  # GLANCE reconstruction; absent: no such stages


def _made(p: Params) -> set[str]:
    from actmatch.data.registry import DATASETS

    src = set(p.download.datasets)
    return src | {n for n, e in DATASETS.items() if e.made_from in src}


def _check_across(p: Params) -> None:  # noqa: C901 (one flat list of checks reads best)
    made = _made(p)
    if "mnist" not in p.download.datasets:
        raise ValueError("download.datasets must include 'mnist': the make_* stages build on it "
                         f"(now {p.download.datasets})")
    for key, run in p.train_classifier.runs.items():
        if run.dataset not in made:
            raise ValueError(f"train_classifier.runs.{key}.dataset: {run.dataset!r} is not produced by this "
                             f"pipeline; add it (or its source) to download.datasets (now {p.download.datasets})")
    known = set(p.download.classifiers) | set(p.train_classifier.runs)
    for kind in ("amortized_runs", "per_image_runs"):
        for key, run in getattr(p.explainer, kind).items():
            if run.classifier not in known:
                raise ValueError(f"explainer.{kind}.{key}.classifier: {run.classifier!r} is neither in "
                                 f"download.classifiers nor a train_classifier run; known: {sorted(known)}")
            if run.dataset not in made:
                raise ValueError(f"explainer.{kind}.{key}.dataset: {run.dataset!r} is not produced by "
                                 f"this pipeline (download.datasets: {p.download.datasets})")
    groups = p.explainer.groups()
    for key, run in p.evaluate.runs.items():
        if key not in groups:
            raise ValueError(f"evaluate.runs.{key}: not an explainer group (an amortized run's key or a per-image "
                             f"run's group); known: {sorted(groups)}")
        if groups[key] != (run.classifier, run.dataset):
            raise ValueError(f"evaluate.runs.{key}: its explainers explain {groups[key][0]} on {groups[key][1]}, "
                             f"not {run.classifier} on {run.dataset}")
        match = run.match_area or p.evaluate.defaults.match_area
        if match not in p.explainer.regimes(key):
            raise ValueError(f"evaluate.runs.{key}.match_area: {match!r} is not a regime produced for it; "
                             f"allowed: {p.explainer.regimes(key)}")
    for key, run in (p.syce.runs if p.syce else {}).items():
        if key not in groups:
            raise ValueError(f"syce.runs.{key}: not an explainer group (its maps are scored beside ours by "
                             f"evaluate@{key}); known: {sorted(groups)}")
        if groups[key] != (run.classifier, run.dataset):
            raise ValueError(f"syce.runs.{key}: its explainers explain {groups[key][0]} on {groups[key][1]}, "
                             f"not {run.classifier} on {run.dataset}")
        if run.dataset not in p.syce.vae.datasets:
            raise ValueError(f"syce.runs.{key}.dataset: {run.dataset!r} needs a VAE: add it to syce.vae.datasets "
                             f"(now {p.syce.vae.datasets})")
        if run.classifier not in p.train_classifier.runs:
            raise ValueError(f"syce.runs.{key}.classifier: {run.classifier!r} must be a train_classifier run "
                             f"(SyCE/CyCE are built at MNIST scale); runs: {sorted(p.train_classifier.runs)}")
    for key, grun in (p.glance.runs if p.glance else {}).items():
        if key in groups and groups[key] != (grun.classifier, grun.dataset):
            raise ValueError(f"glance.runs.{key}: the explainer group {key} explains {groups[key][0]} on "
                             f"{groups[key][1]}, not {grun.classifier} on {grun.dataset}")
        if grun.classifier not in p.train_classifier.runs:
            raise ValueError(f"glance.runs.{key}.classifier: {grun.classifier!r} must be a train_classifier run "
                             f"(GLANCE is built at MNIST scale); runs: {sorted(p.train_classifier.runs)}")
        if grun.dataset not in p.glance.feature_datasets:
            raise ValueError(f"glance.runs.{key}.dataset: {grun.dataset!r} needs context features: add it to "
                             f"glance.feature_datasets (now {p.glance.feature_datasets})")
    for d in (p.glance.feature_datasets if p.glance else []):
        if d not in made:
            raise ValueError(f"glance.feature_datasets: {d!r} is not produced by this pipeline")
    ab = p.ablation
    if p.report.sweep_image >= ab.eval_images:
        raise ValueError(f"report.sweep_image: {p.report.sweep_image} is not one of the {ab.eval_images} "
                         "ablation.eval_images")
    for name in [ab.base, *ab.matched]:
        if name not in ab.variants:
            raise ValueError(f"ablation: {name!r} (base / matched) is not a variant; known: {sorted(ab.variants)}")


def _names(p: Params) -> list[str]:
    """Every name checked against its owner's registry; returns the problems found."""
    from actmatch.baselines import BASELINES
    from actmatch.classifiers.registry import CLASSIFIERS
    from actmatch.classifiers.small import SMALL_ARCHS
    from actmatch.data.registry import DATASETS, source_names
    from actmatch.data.sources import PHOTO_SOURCES
    from actmatch.glance.morpho import FEATURES

    bad: list[str] = []

    def need(path: str, name: str, known: Any) -> None:
        if name not in known:
            bad.append(f"  {path}: unknown name {name!r}; known: {', '.join(sorted(known))}")

    for d in p.download.datasets:
        need("download.datasets", d, source_names())
    for c in p.download.classifiers:
        need("download.classifiers", c, CLASSIFIERS)
    for key in p.datasets.model_extra or {}:
        need("datasets", key, DATASETS)
    for n in p.datasets.photos.names:
        need("datasets.photos.names", n, PHOTO_SOURCES)
    for k, r in p.train_classifier.runs.items():
        need(f"train_classifier.runs.{k}.arch", r.arch, SMALL_ARCHS)
        need(f"train_classifier.runs.{k}.dataset", r.dataset, DATASETS)
    for kind in ("amortized_runs", "per_image_runs"):
        for k, r in getattr(p.explainer, kind).items():
            need(f"explainer.{kind}.{k}.dataset", r.dataset, DATASETS)
    for b in p.evaluate.defaults.baselines:
        need("evaluate.defaults.baselines", b, BASELINES)
    for k, r in p.evaluate.runs.items():
        need(f"evaluate.runs.{k}.dataset", r.dataset, DATASETS)
        for b in r.baselines or {}:
            need(f"evaluate.runs.{k}.baselines", b, BASELINES)
    if p.syce:
        for d in p.syce.vae.datasets:
            need("syce.vae.datasets", d, DATASETS)
    if p.glance:
        for f in p.glance.features:
            need("glance.features", f, FEATURES)
        for d in p.glance.feature_datasets:
            need("glance.feature_datasets", d, DATASETS)
    return bad


def parse_params(data: Any, source: str = "params") -> Params:
    """Validate an already-parsed mapping as a whole. Raises :class:`ParamsError` naming each bad key path."""
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if k != "_source"}
    try:
        params = Params.model_validate(data)
    except ValidationError as err:
        raise ParamsError(format_error(err, source, Params)) from None
    bad = _names(params)
    if bad:
        raise ParamsError("\n".join([f"{source}: {len(bad)} unknown name(s):", *bad]))
    try:
        _check_across(params)
    except ValueError as err:
        raise ParamsError(f"{source}: {err}") from None
    _check_loss_weights(params, data | {"_source": source}, source)
    return params


def _check_loss_weights(params: Params, data: dict[str, Any], source: str) -> None:
    """Every preset's and ablation variant's weights against the loss-term registry (their schema)."""
    from actmatch.explainer.losses import check_weights

    losses = [(f"explainer.presets.{n}.weights", params.explainer.loss(n)) for n in params.explainer.presets]
    losses += [(f"ablation.variants.{v}.weights", variant_loss(data, c, d, v)[1]) for c in params.ablation.classifiers
               for d in params.ablation.datasets for v in params.ablation.variants]
    try:
        for where, loss in losses:
            check_weights(loss.weights, where)
    except ParamsError as err:
        raise ParamsError(f"{source}: {err}") from None


def check_params(data: dict[str, Any]) -> Params:
    return parse_params(data, data.get("_source", "params"))


def check_file(path: str | Path = "params.yaml") -> Params:
    """Read and check ``path`` as a whole (what every stage does first)."""
    return check_params(read_params(path))
