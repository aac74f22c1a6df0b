"""The evaluate stage's library side (method.md §5-6): load our regimes' masks (every seed), run the
baselines at the same per-image areas, score every method with the metric suite, time one
explanation per baseline and other framework, and aggregate over images and seeds. Our regimes are
not timed here: their cost is the explain stages' own timing (:mod:`actmatch.explainer.timing`, read
by the report), so evaluate neither re-runs a regime to time it nor depends on a file of wall times.

Our regimes come from the explainer stages' folders ``results/explainers/<group>/<regime>/seed<k>/``
(``masks.npz`` + the resolved ``config.yaml``, and ``convergence.json`` where the stage wrote one). The
images are those of the ``match_area`` regime; a regime with masks for fewer images (e.g. the per-image
one) is scored on the images it has, and n says so. Every other map set (SyCE/CyCE, GLANCE:
:class:`actmatch.maps.MapSet`) and every baseline is computed once, its ranking metrics scored once
(:func:`~actmatch.metrics.suite.score_soft`), and it is binarized **per seed** of the ``match_area``
regime at that seed's per-image areas and scored there (:func:`~actmatch.metrics.suite.score_hard`), so
each baseline row has the seeds of ours and every comparison with ours pairs seed k with seed k (issue 27).
A collapsed seed of the ``match_area`` regime is never a reference (its areas are all 0 or 1): it is
skipped, and the settings say so. Per image the table also records the classifier's prediction on the
fill alone (``null_y``, the explanation of an empty mask) and whether it is already y (``trivial``).
Finished methods are kept in a state folder, so a run resumes.
"""

from __future__ import annotations

import json
import logging
import statistics
import warnings
from collections.abc import Iterator
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
from actmatch.classifiers.taps import tapped
from actmatch.core.resume import state_key
from actmatch.core.masks import fill_values
from actmatch.core.io import save_torch
from actmatch.core.provenance import machine
from actmatch.metrics.aggregate import aggregate_seeds, collapse_direction, is_collapsed
from actmatch.metrics.cost import measure
from actmatch.metrics.fidelity import null_prediction, predict_logits
from actmatch.metrics.suite import Clean, ScoreSettings, clean_pass, combine, metric_columns, score_hard, score_soft

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
    convergence: dict | None = None  # the explain stage's verdict on this run (convergence.json), if it wrote one

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
        verdicts = json.loads((sub / "convergence.json").read_text()) if (sub / "convergence.json").is_file() else {}
        with np.load(sub / "masks.npz") as z:
            ids = [str(i) for i in z["ids"]]
            for key in z.files:
                if key.endswith("_soft"):
                    name = key[: -len("_soft")]
                    hard = torch.from_numpy(z[f"{name}_hard"].astype(np.float32))[:, None]
                    out.setdefault(name, []).append(Regime(name, ids, torch.from_numpy(z[key].astype(np.float32))[:, None],
                                                           sub, run, loss, hard, int(cfg["seed"]),
                                                           verdicts.get(name.removesuffix("_last"))))
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


def _cached(path: Path | None, key: str) -> list[MethodResult] | None:
    if path is not None and path.is_file():
        saved = torch.load(path, weights_only=False)
        if saved.get("key") == key:
            return saved["result"]
    return None


def _save(path: Path | None, key: str, result: list[MethodResult]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_torch({"key": key, "result": result}, path)


def _references(runs: list[Regime], ids: list[str], device: torch.device) -> tuple[list[tuple[int, torch.Tensor]],
                                                                                 dict[str, str]]:
    """The per-image areas ``(len(ids),)`` of every seed of the ``match_area`` regime that can be a reference,
    as ``[(seed, areas)]``, and the skipped seeds ``{seed: direction}``: a collapsed seed (its masks all empty
    or full) would binarize every baseline at area 0 or 1."""
    refs, skipped = [], {}
    for r in runs:
        keep, rows = r.rows(ids)
        if len(keep) != len(ids):
            raise ValueError(f"seed {r.seed} of the match_area regime {r.name!r} has masks for {len(keep)} of the "
                             f"{len(ids)} evaluation images; every seed must explain the same images")
        a = r.hard_masks()[rows].to(device).mean((1, 2, 3))
        if is_collapsed(a.cpu().numpy()):
            skipped[str(r.seed)] = str(collapse_direction(a.cpu().numpy()))
            continue
        refs.append((r.seed, a))
    return refs, skipped


def evaluate(clf: Classifier, ds: ImageDataset, regimes: dict[str, list[Regime]], cfg: EvaluateRunConfig,
             state_dir: Path | None = None, progress: bool = True, maps: dict[str, MapSet] | None = None,
             previews: dict[str, np.ndarray] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Score every seed of our regimes, the other ``maps`` and the baselines. Returns the per-image table
    (columns method, seed, id, label, y, null_y, trivial, …), the mean curves (collapsed runs left out), the
    aggregated metrics ``{"settings", "methods": {method: {seeds, collapsed, selected_on_kept, convergence,
    not_converged, claim, metrics: {metric: {mean, lo, hi, n, sd, min, max}}}}}`` and the cost ``{method:
    {ms_per_explanation, peak_mb, n}}``. A baseline's rows carry the seed of ours it was binarized at. With
    ``previews`` (a dict), it also receives, per method (first seed), the soft maps of the first
    ``PREVIEW_IMAGES`` evaluation images as uint8 ``(K, H, W)`` (0–255 of the map rescaled to [0, 1]; for
    figures, never for metrics), key ``ids`` their ids."""
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
    null_y = null_prediction(clf.model, baseline, cfg.batch_size)  # the explanation of an all-zero mask
    boxes = None
    if ds.boxes is not None:
        scale = clf.input_size / ds.images[idx[0]].shape[0]
        boxes = torch.from_numpy(np.round(ds.boxes[idx] * scale).astype(np.int64)).to(device)
    score = ScoreSettings(cfg.batch_size, cfg.curve_steps, cfg.perturb_draws, tuple(cfg.budgets), cfg.max_pieces,
                          cfg.seed, mean=tuple(clf.mean), std=tuple(clf.std))
    refs, skipped = _references(regimes[cfg.match_area], ids, device)
    if not refs:
        warnings.warn(f"every seed of {cfg.match_area!r} collapsed: the baselines have no area to be binarized at "
                      "and are scored on their rankings only", stacklevel=2)
    areas = refs[0][1] if refs else ref.hard_masks()[: len(ids)].to(device).mean((1, 2, 3))  # timing's areas
    maps = maps or {}
    clash = set(maps) & set(cfg.baselines)
    if clash:
        raise ValueError(f"method names {sorted(clash)} are both generated maps and baselines")
    layer = cam_layer(clf, x)
    key = state_key("evaluate-per-seed", cfg, fill, ids, clf.name, list(clf.mean), list(clf.std))
    jobs: list[tuple[str, Any]] = [(OURS + n, r) for n, rs in regimes.items() for r in rs]
    jobs += list(maps.items()) + [(n, None) for n in cfg.baselines]
    results: list[tuple[str, MethodResult]] = []
    cleans: dict[tuple[int, ...], Clean] = {}
    for name, src in tqdm(jobs, desc=f"evaluate {cfg.name}", disable=not progress):
        seed = src.seed if isinstance(src, Regime) else -1
        path = state_dir / f"{name.replace(':', '_')}-seed{seed}.pt" if state_dir else None
        cached = _cached(path, key)
        if cached is not None:
            results += [(name, r) for r in cached]
            continue
        log.info("scoring %s (seed %s)", name, seed)
        if src is None:  # a baseline: saliency for every image once, binarized at each reference seed's areas
            sel = torch.arange(len(ids), device=device)
            method = build_baseline(name, **cfg.baselines[name])
            sal = torch.cat([method.explain(clf.model, x[s], y[s], baseline[s], areas[s], layer=layer, ids=ids[s])
                             for s in _chunks(len(ids), cfg.batch_size)])
            soft, hards = to_unit(sal), [(k, binarize_to_area(sal, a, cfg.seed)) for k, a in refs]
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
                soft, hards = sal, [(seed, src.hard[rows].to(device))]
                explain_one = None  # timed by its explain stage (results/timing/), not again here
            else:
                soft, hards = to_unit(sal), [(k, binarize_to_area(sal, a[sel], cfg.seed)) for k, a in refs]
                explain_one = (lambda g: lambda xi, yi, bi, ai: g(xi))(src.cost(clf))
        part = tuple(sel.cpu().tolist())
        if part not in cleans:  # f(x) once per image set, in the scoring's own chunks
            cleans[part] = clean_pass(clf.model, clf.taps, x[sel], score)
        bsel = None if boxes is None else boxes[sel]
        soft_cols, curves = score_soft(clf.model, x[sel], y[sel], soft, baseline[sel], blurred[sel], score,
                                       cleans[part], bsel)
        scored = [(k, combine(score_hard(clf.model, clf.taps, x[sel], y[sel], h, baseline[sel], score, cleans[part],
                                         bsel), soft_cols)) for k, h in hards] or [(-1, soft_cols)]
        timings = []
        for i in range(min(cfg.cost_images, len(x)) if explain_one is not None else 0):  # timed once per method
            one = slice(i, i + 1)
            timings.append(measure(lambda: explain_one(x[one], y[one], baseline[one], areas[one]), device)[1:])
        first = [k for k, j in enumerate(sel.cpu().tolist()) if j < PREVIEW_IMAGES]
        preview = (to_unit(soft[first]).clamp(0, 1)[:, 0] * 255).round().to(torch.uint8).cpu().numpy() \
            if len(first) == min(PREVIEW_IMAGES, len(ids)) else None
        done = [MethodResult(cols, curves, [ids[int(j)] for j in sel.cpu()],
                             [t[0] for t in timings] if j == 0 else [], [t[1] for t in timings] if j == 0 else [],
                             k, preview if j == 0 else None) for j, (k, cols) in enumerate(scored)]
        _save(path, key, done)
        results += [(name, r) for r in done]
    if previews is not None:
        previews["ids"] = np.asarray(ids[:PREVIEW_IMAGES])
        for name, r in results:  # the first non-collapsed seed of each method (figures leave out what tables do)
            if r.preview is not None and name not in previews and not is_collapsed(r.cols.get("area", [])):
                previews[name] = r.preview
    images = pd.DataFrame({"id": ids, "label": ds.labels[idx].tolist(), "y": y.cpu().tolist(),
                           "null_y": null_y.cpu().tolist(), "trivial": (null_y == y).int().cpu().tolist()})
    selected = {OURS + n for n, rs in regimes.items() if rs[0].selected}
    verdicts = {OURS + n: {str(r.seed): r.convergence for r in rs if r.convergence is not None}
                for n, rs in regimes.items()}
    refs_info = {"match_area": cfg.match_area, "reference_seeds": [k for k, _ in refs], "skipped_reference_seeds":
                 skipped, "machine": machine(device)}
    return _tables(results, images, cfg, fill, blur_sigma, refs_info, selected, verdicts)


def _tables(results: list[tuple[str, MethodResult]], images: pd.DataFrame, cfg: EvaluateRunConfig, fill: str,
            blur_sigma: float, refs: dict, selected: set[str],
            verdicts: dict[str, dict[str, dict]]) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    frames, curves = [], []
    frac = np.linspace(0.0, 1.0, cfg.curve_steps + 1)
    own = images.set_index("id")
    for name, r in results:
        frames.append(pd.DataFrame({"method": name, "seed": r.seed, "id": r.ids,
                                    **{c: own.loc[r.ids, c].to_numpy() for c in own.columns}, **r.cols}))
    per_image = pd.concat(frames, ignore_index=True)
    metric_cols = metric_columns(per_image.columns)
    not_converged = {m: sorted(int(s) for s, v in seeds.items() if not v.get("converged", True))
                     for m, seeds in verdicts.items()}
    for m in list(not_converged):  # a _last row is the same run as its regime
        if m + "_last" in set(per_image["method"]):
            not_converged[m + "_last"] = not_converged[m]
    methods = aggregate_seeds(per_image, metric_cols, cfg.bootstrap, cfg.seed, not_converged=not_converged)
    for name, entry in methods.items():
        entry["selected_on_kept"] = name in selected
        base = name.removesuffix("_last") if name.removesuffix("_last") in verdicts else name
        if verdicts.get(base):
            entry["convergence"] = verdicts[base]
            entry["not_converged"] = not_converged[base]
    for name, r in results:  # the mean curves leave out what the tables leave out: collapsed runs
        if r.seed not in methods[name]["collapsed"]:
            curves.append(pd.DataFrame({"method": name, "seed": r.seed, "fraction": frac,
                                        "deletion": r.curves["deletion"].mean(0),
                                        "insertion": r.curves["insertion"].mean(0)}))
    curves_df = pd.concat(curves, ignore_index=True).groupby(["method", "fraction"], sort=False, as_index=False)[
        ["deletion", "insertion"]].mean() if curves else pd.DataFrame(columns=["method", "fraction", "deletion",
                                                                               "insertion"])
    settings = {"classifier": cfg.classifier, "dataset": cfg.dataset, **refs, "fill": fill, "tie_seed": cfg.seed,
                "n_images": int(per_image.groupby(["method", "seed"]).size().max()), "curve_steps": cfg.curve_steps,
                "insertion_blur_sigma": blur_sigma, "bootstrap": cfg.bootstrap, "baselines": cfg.baselines}
    cost: dict[str, dict] = {}
    for name, r in results:
        c = cost.setdefault(name, {"ms": [], "mb": []})
        c["ms"] += r.cost_ms
        c["mb"] += r.cost_mb
    cost = {n: {"ms_per_explanation": statistics.median(c["ms"]), "peak_mb": max(c["mb"]), "n": len(c["ms"])}
            for n, c in cost.items() if c["ms"]}  # ours: none (their explain stages' timing files)
    return per_image, curves_df, {"settings": settings, "methods": methods}, cost
