"""The evaluate stage's library side (method.md §5-6): load our regimes' masks (every seed), run the
baselines at the same per-image area, score every method with :func:`score_masks`, time one
explanation per method, and aggregate over images and seeds.

Our regimes come from the explainer stages' folders ``results/explainers/<group>/<regime>/seed<k>/``
(``masks.npz`` + the resolved ``config.yaml``). The images are those of the ``match_area`` regime; a
regime with masks for fewer images (e.g. the per-image one) is scored on the images it has, and n says
so. Every other map set (SyCE/CyCE, GLANCE: :class:`actmatch.maps.MapSet`) and every baseline is
binarized per image to the area of the ``match_area`` regime's **first seed** (scored once; the
settings say so). Finished (method, seed) pairs are kept in a state folder, so a run resumes.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from actmatch.baselines import binarize_to_area, build_baseline, to_unit
from actmatch.classifiers.registry import Classifier
from actmatch.config.evaluate import EvaluateRunConfig
from actmatch.config.explainer import ExplainerRun, LossConfig
from actmatch.maps import MapSet, rows_for
from actmatch.data.store import ImageDataset
from actmatch.explainer.api import load_explainer
from actmatch.classifiers.taps import tapped
from actmatch.explainer.train import explain_per_image
from actmatch.core.resume import state_key
from actmatch.core.masks import fill_values
from actmatch.core.io import atomic_path
from actmatch.metrics.aggregate import aggregate_seeds
from actmatch.metrics.cost import measure
from actmatch.metrics.fidelity import predict_logits
from actmatch.metrics.suite import ScoreSettings, score_masks

__all__ = ["Regime", "load_regimes", "evaluate", "MethodResult", "cam_layer", "OURS"]

log = logging.getLogger(__name__)
OURS = "ours:"  # prefix of our regimes in every table
PREVIEW_IMAGES = 12  # evaluation images whose maps every method keeps for the report's figures


@dataclass
class Regime:
    """One seed of one regime of ours (a :class:`MapSet` with hard masks): its soft masks ``(N, 1, H, W)``
    float32, the hard masks exactly as the regime made them, and the run that made them. A regime
    selected on ``kept`` (``select: smallest_kept``) comes with its last mask as ``<name>_last``."""

    name: str
    ids: list[str]
    soft: torch.Tensor
    folder: Path
    run: ExplainerRun
    loss: LossConfig
    hard: torch.Tensor
    seed: int = 0

    @property
    def maps(self) -> torch.Tensor:
        return self.soft

    def rows(self, ids: list[str]) -> tuple[list[int], list[int]]:
        return rows_for(self.ids, ids)

    def hard_masks(self) -> torch.Tensor:
        return self.hard

    @property
    def selected(self) -> bool:
        """Chosen by the criterion ``kept`` then measures (the tables label these rows)."""
        steps = self.run.finetune if self.name == "finetune" else self.run.per_image
        return (not self.name.endswith("_last") and self.name != "amortized" and steps is not None
                and (steps.select == "smallest_kept" or steps.ladder is not None))  # the area ladder stops on kept


def load_regimes(folder: str | Path) -> dict[str, list[Regime]]:
    """Every regime under ``folder/*/seed*/masks.npz``, by name, one entry per seed (sorted by seed)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no explainer outputs at {folder}; run the explainer stages first")
    out: dict[str, list[Regime]] = {}
    for sub in sorted(p for p in folder.glob("*/seed*") if (p / "masks.npz").is_file()):
        cfg = yaml.safe_load((sub / "config.yaml").read_text())
        run, loss = ExplainerRun.model_validate(cfg["run"]), LossConfig.model_validate(cfg["loss"])
        with np.load(sub / "masks.npz") as z:
            ids = [str(i) for i in z["ids"]]
            for key in z.files:
                if key.endswith("_soft"):
                    name = key[: -len("_soft")]
                    hard = torch.from_numpy(z[f"{name}_hard"].astype(np.float32))[:, None]
                    out.setdefault(name, []).append(Regime(name, ids, torch.from_numpy(z[key].astype(np.float32))[:, None],
                                                           sub, run, loss, hard, int(cfg["seed"])))
    if not out:
        raise FileNotFoundError(f"no masks.npz under {folder}/*/seed*/; run the explainer stages first")
    return {k: sorted(v, key=lambda r: r.seed) for k, v in out.items()}


@dataclass
class MethodResult:
    cols: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    ids: list[str]
    cost_ms: list[float]
    cost_mb: list[float]
    seed: int = -1  # -1: a method with no seed of ours (baselines, other frameworks)
    preview: np.ndarray | None = None  # uint8 (K, H, W): the soft map of the first K images, for figures


def _our_cost_fn(reg: Regime, clf: Classifier) -> Callable[..., Any]:
    """How one explanation of regime ``reg`` is computed, for timing (a ``_last`` row is timed as its regime)."""
    name = reg.name.removesuffix("_last")
    if name == "amortized":
        net, _ = load_explainer(reg.folder / "explainer.pt", clf)
        net.to(next(clf.model.parameters()).device)
        return lambda xi, yi, bi, ai: (torch.sigmoid(net(xi)) > 0.5)
    init = None
    steps = reg.run.per_image
    if name == "finetune":
        net, _ = load_explainer(reg.folder / "explainer.pt", clf)
        init, steps = net.state_dict(), reg.run.finetune
    return lambda xi, yi, bi, ai: explain_per_image(clf, xi, reg.loss, reg.run.unet, steps, reg.run.fill, reg.seed,
                                                    init_state=init, progress=False)


@torch.no_grad()
def cam_layer(clf: Classifier, x: torch.Tensor) -> str:
    """The layer the CAM baselines read: the classifier's ``cam_layer`` (its last conv layer) when the
    registry names one, else the last tap with a spatial (or token) output."""
    if getattr(clf, "cam_layer", None):
        return clf.cam_layer
    with tapped(clf.model, clf.taps) as taps:
        clf.model(x[:1])
        outs = taps.ordered()
    spatial = [n for n, o in zip(clf.taps, outs) if o.dim() >= 3]
    if not spatial:
        raise ValueError(f"classifier {clf.name} has no tap with a spatial output for Grad-CAM; taps: {clf.taps}")
    return spatial[-1]


def _chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def _cached(path: Path | None, key: str) -> MethodResult | None:
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=False)
        if saved.get("key") == key:
            return saved["result"]
    return None


def _save(path: Path | None, key: str, result: MethodResult) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({"key": key, "result": result}, tmp)


def evaluate(clf: Classifier, ds: ImageDataset, regimes: dict[str, list[Regime]], cfg: EvaluateRunConfig,
             state_dir: Path | None = None, progress: bool = True, maps: dict[str, MapSet] | None = None,
             previews: dict[str, np.ndarray] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Score every seed of our regimes, the other ``maps`` and the baselines. Returns the per-image table
    (columns method, seed, id, …), the mean curves, the aggregated metrics ``{"settings", "methods":
    {method: {seeds, collapsed, selected, metrics: {metric: {mean, lo, hi, n, sd, min, max}}}}}`` and
    the cost ``{method: {ms_per_explanation, peak_mb, n}}``. With ``previews`` (a dict), it also receives,
    per method (first seed), the soft maps of the first ``PREVIEW_IMAGES`` evaluation images as uint8
    ``(K, H, W)`` (0–255 of the map rescaled to [0, 1]; for figures, never for metrics), key ``ids`` their ids."""
    if cfg.match_area not in regimes:
        raise KeyError(f"match_area {cfg.match_area!r} has no masks; found: {sorted(regimes)}")
    fills = {r.run.fill for rs in regimes.values() for r in rs}
    if len(fills) != 1:
        raise ValueError(f"our regimes use different fills {sorted(fills)}; one evaluation needs one removal operator")
    fill = fills.pop()
    ref = regimes[cfg.match_area][0]
    ids = ref.ids[: cfg.max_images]
    row = {str(k): i for i, k in enumerate(ds.index["id"])}
    missing = [i for i in ids if i not in row]
    if missing:
        raise KeyError(f"mask ids {missing[:3]} are not in dataset {ds.name!r}; were the masks made from another dataset?")
    idx = np.array([row[i] for i in ids])
    device = next(clf.model.parameters()).device
    x = clf.preprocess_batch([ds.images[i] for i in idx]).to(device)
    baseline = fill_values(x, fill, clf.mean, clf.std)
    blur_sigma = clf.input_size / 10.0
    blurred = fill_values(x, "blur", clf.mean, clf.std, blur_sigma=blur_sigma)
    y = predict_logits(clf.model, x, cfg.batch_size).argmax(1)
    boxes = None
    if ds.boxes is not None:
        scale = clf.input_size / ds.images[idx[0]].shape[0]
        boxes = torch.from_numpy(np.round(ds.boxes[idx] * scale).astype(np.int64)).to(device)
    score = ScoreSettings(cfg.batch_size, cfg.curve_steps, cfg.perturb_draws, tuple(cfg.budgets), cfg.max_pieces,
                          cfg.seed, mean=tuple(clf.mean), std=tuple(clf.std))
    areas = ref.hard_masks()[: len(ids)].to(device).mean((1, 2, 3))
    maps = maps or {}
    clash = set(maps) & set(cfg.baselines)
    if clash:
        raise ValueError(f"method names {sorted(clash)} are both generated maps and baselines")
    layer = cam_layer(clf, x)
    key = state_key("evaluate", cfg, fill, ids, clf.name, list(clf.mean), list(clf.std))
    jobs: list[tuple[str, Any]] = [(OURS + n, r) for n, rs in regimes.items() for r in rs]
    jobs += list(maps.items()) + [(n, None) for n in cfg.baselines]
    results: list[tuple[str, MethodResult]] = []
    for name, src in tqdm(jobs, desc=f"evaluate {cfg.name}", disable=not progress):
        seed = src.seed if isinstance(src, Regime) else -1
        path = state_dir / f"{name.replace(':', '_')}-seed{seed}.pt" if state_dir else None
        cached = _cached(path, key)
        if cached is not None:
            results.append((name, cached))
            continue
        log.info("scoring %s (seed %s)", name, seed)
        if src is None:  # a baseline: saliency for every image, binarized to the reference area
            sel = torch.arange(len(ids), device=device)
            method = build_baseline(name, **cfg.baselines[name])
            sal = torch.cat([method.explain(clf.model, x[s], y[s], baseline[s], areas[s], layer=layer, ids=ids[s])
                             for s in _chunks(len(ids), cfg.batch_size)])
            soft, hard = to_unit(sal), binarize_to_area(sal, areas, cfg.seed)
            explain_one = (lambda m: lambda xi, yi, bi, ai: m.explain(clf.model, xi, yi, bi, ai, layer=layer,
                                                                      ids=ids[:1]))(method)
        else:
            keep, rows = src.rows(ids)
            sel = torch.tensor(keep, dtype=torch.long, device=device)
            sal = src.maps[rows].to(device)
            if sal.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"{name} maps are {tuple(sal.shape[-2:])} px but the classifier's inputs are "
                                 f"{tuple(x.shape[-2:])}: generated maps must be made at the classifier's input size")
            if src.hard is not None:  # ours: scored at our own hard masks
                soft, hard = sal, src.hard[rows].to(device)
                explain_one = _our_cost_fn(src, clf)
            else:
                soft, hard = to_unit(sal), binarize_to_area(sal, areas[sel], cfg.seed)
                explain_one = (lambda g: lambda xi, yi, bi, ai: g(xi))(src.cost(clf))
        cols, curves = score_masks(clf.model, clf.taps, x[sel], y[sel], soft, hard, baseline[sel], blurred[sel], score,
                                   None if boxes is None else boxes[sel])
        timings = []
        first_seed = not isinstance(src, Regime) or src is regimes[src.name][0]
        for i in range(min(cfg.cost_images, len(x)) if first_seed else 0):  # timed once per method
            one = slice(i, i + 1)
            timings.append(measure(lambda: explain_one(x[one], y[one], baseline[one], areas[one]), device)[1:])
        first = [k for k, j in enumerate(sel.cpu().tolist()) if j < PREVIEW_IMAGES]
        preview = (to_unit(soft[first]).clamp(0, 1)[:, 0] * 255).round().to(torch.uint8).cpu().numpy() \
            if len(first) == min(PREVIEW_IMAGES, len(ids)) else None
        res = MethodResult(cols, curves, [ids[int(j)] for j in sel.cpu()], [t[0] for t in timings],
                           [t[1] for t in timings], seed, preview)
        _save(path, key, res)
        results.append((name, res))
    if previews is not None:
        previews["ids"] = np.asarray(ids[:PREVIEW_IMAGES])
        for name, r in results:
            if r.preview is not None and name not in previews:  # the first seed of each method
                previews[name] = r.preview
    labels = dict(zip(ids, ds.labels[idx].tolist()))
    ylab = dict(zip(ids, y.cpu().tolist()))
    selected = {OURS + n for n, rs in regimes.items() if rs[0].selected}
    return _tables(results, labels, ylab, cfg, fill, blur_sigma, ref.seed, selected)


def _tables(results: list[tuple[str, MethodResult]], labels: dict, ylab: dict, cfg: EvaluateRunConfig, fill: str,
            blur_sigma: float, ref_seed: int, selected: set[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    frames, curves = [], []
    frac = np.linspace(0.0, 1.0, cfg.curve_steps + 1)
    for name, r in results:
        frames.append(pd.DataFrame({"method": name, "seed": r.seed, "id": r.ids, "label": [labels[i] for i in r.ids],
                                    "y": [ylab[i] for i in r.ids], **r.cols}))
        curves.append(pd.DataFrame({"method": name, "seed": r.seed, "fraction": frac,
                                    "deletion": r.curves["deletion"].mean(0), "insertion": r.curves["insertion"].mean(0)}))
    per_image = pd.concat(frames, ignore_index=True)
    curves_df = pd.concat(curves, ignore_index=True).groupby(["method", "fraction"], sort=False, as_index=False)[
        ["deletion", "insertion"]].mean()
    metric_cols = [c for c in per_image.columns if c not in ("method", "seed", "id", "label", "y", "p_x", "p_e", "margin_x")]
    settings = {"classifier": cfg.classifier, "dataset": cfg.dataset, "match_area": cfg.match_area,
                "match_area_seed": ref_seed, "fill": fill, "tie_seed": cfg.seed,
                "n_images": int(per_image.groupby(["method", "seed"]).size().max()), "curve_steps": cfg.curve_steps,
                "insertion_blur_sigma": blur_sigma, "bootstrap": cfg.bootstrap, "baselines": cfg.baselines}
    methods = aggregate_seeds(per_image, metric_cols, cfg.bootstrap, cfg.seed)
    for name, entry in methods.items():
        entry["selected_on_kept"] = name in selected
    cost: dict[str, dict] = {}
    for name, r in results:
        c = cost.setdefault(name, {"ms": [], "mb": []})
        c["ms"] += r.cost_ms
        c["mb"] += r.cost_mb
    cost = {n: {"ms_per_explanation": statistics.median(c["ms"]), "peak_mb": max(c["mb"]), "n": len(c["ms"])}
            for n, c in cost.items()}
    return per_image, curves_df, {"settings": settings, "methods": methods}, cost
