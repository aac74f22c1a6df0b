"""The evaluate stage's library side (method.md §5-6): load our regimes' masks, run the
baselines at the same per-image area, score every method with :func:`score_masks`, time one
explanation per method, and aggregate.

Our regimes come from the explainer stages' folders ``results/explainers/<classifier>-<dataset>/*/``
(``masks.npz`` + the resolved ``config.yaml``). The images are those of the ``match_area``
regime; a regime with masks for fewer images (e.g. the per-image one) is scored on the images it
has, and n says so. SyCE / CyCE maps (``<group>/ce/*/maps.npz``, method.md §8.1) are scored like the
baselines: binarized per image to the area of our ``match_area`` mask. Finished methods are kept in a state folder, so an interrupted run resumes.
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
from actmatch.ce.pipeline import CEMaps
from actmatch.classifiers.registry import Classifier
from actmatch.config import EvaluateRunConfig, ExplainerRun, LossConfig
from actmatch.data.store import ImageDataset
from actmatch.explainer.api import load_explainer
from actmatch.explainer.taps import tapped
from actmatch.explainer.train import explain_per_image, state_key
from actmatch.explainer.unet import fill_values
from actmatch.io import atomic_path
from actmatch.metrics.aggregate import aggregate
from actmatch.metrics.cost import measure
from actmatch.metrics.fidelity import predict_logits
from actmatch.metrics.suite import ScoreSettings, score_masks

__all__ = ["Regime", "load_regimes", "evaluate", "MethodResult"]

log = logging.getLogger(__name__)
OURS = "ours:"  # prefix of our regimes in every table


@dataclass
class Regime:
    """One regime of ours: its masks (soft ``(N, 1, H, W)`` float32, and the hard masks exactly as the
    regime made them) and the run that made them."""

    name: str
    ids: list[str]
    soft: torch.Tensor
    folder: Path
    run: ExplainerRun
    loss: LossConfig
    hard: torch.Tensor | None = None

    def hard_masks(self) -> torch.Tensor:
        """The stored hard masks. Re-thresholding the float16 soft masks is not the same: a mask that
        stays near the flat start (the paper's recipe) has values like 0.5001 that float16 rounds to 0.5."""
        return self.hard if self.hard is not None else (self.soft > 0.5).float()


def load_regimes(folder: str | Path) -> dict[str, Regime]:
    """Every regime in the explainer folders under ``folder`` (each sub-folder with masks.npz)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no explainer outputs at {folder}; run the explainer stages first")
    out: dict[str, Regime] = {}
    for sub in sorted(p for p in folder.iterdir() if (p / "masks.npz").is_file()):
        cfg = yaml.safe_load((sub / "config.yaml").read_text())
        run, loss = ExplainerRun.model_validate(cfg["run"]), LossConfig.model_validate(cfg["loss"])
        with np.load(sub / "masks.npz") as z:
            ids = [str(i) for i in z["ids"]]
            for key in z.files:
                if key.endswith("_soft"):
                    name = key[: -len("_soft")]
                    hard = torch.from_numpy(z[f"{name}_hard"].astype(np.float32))[:, None]
                    out[name] = Regime(name, ids, torch.from_numpy(z[key].astype(np.float32))[:, None], sub, run, loss,
                                       hard)
    if not out:
        raise FileNotFoundError(f"no masks.npz under {folder}/*/; run the explainer stages first")
    return out


@dataclass
class MethodResult:
    cols: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    ids: list[str]
    cost_ms: list[float]
    cost_mb: list[float]


def _our_cost_fn(reg: Regime, clf: Classifier, seed: int) -> Callable[[torch.Tensor], Any]:
    """How one explanation of regime ``reg`` is computed, for timing."""
    if reg.name == "amortized":
        net, _ = load_explainer(reg.folder / "explainer.pt", clf)
        net.to(next(clf.model.parameters()).device)
        return lambda xi, yi, bi, ai: (torch.sigmoid(net(xi)) > 0.5)
    init = None
    steps = reg.run.per_image
    if reg.name == "finetune":
        net, _ = load_explainer(reg.folder / "explainer.pt", clf)
        init, steps = net.state_dict(), reg.run.finetune
    return lambda xi, yi, bi, ai: explain_per_image(clf, xi, reg.loss, reg.run.unet, steps, reg.run.fill, seed, init_state=init,
                                        progress=False)


@torch.no_grad()
def cam_layer(clf: Classifier, x: torch.Tensor) -> str:
    """The layer the CAM baselines read: the last tap with a spatial (or token) output, so a net whose
    last tap is a dense block (LeNet's fc layers) uses its last convolutional block."""
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


def evaluate(clf: Classifier, ds: ImageDataset, regimes: dict[str, Regime], cfg: EvaluateRunConfig,
             state_dir: Path | None = None, progress: bool = True,
             maps: dict[str, CEMaps] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Score our regimes, the generated ``maps`` (SyCE/CyCE, GLANCE: anything with ``name``, ``ids``,
    ``maps``, ``rows`` and ``cost``) and the baselines. Returns the per-image table, the mean curves, the
    aggregated metrics ``{"settings", "methods": {method: {metric: {mean, lo, hi, n}}}}`` and the
    cost ``{method: {ms_per_explanation, peak_mb, n}}``."""
    if cfg.match_area not in regimes:
        raise KeyError(f"match_area {cfg.match_area!r} has no masks; found: {sorted(regimes)}")
    fills = {r.run.fill for r in regimes.values()}
    if len(fills) != 1:
        raise ValueError(f"our regimes use different fills {sorted(fills)}; one evaluation needs one removal operator")
    fill = fills.pop()
    ref = regimes[cfg.match_area]
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
                          cfg.seed)
    ref_hard = ref.hard_masks()[: len(ids)].to(device)
    areas = ref_hard.mean((1, 2, 3))
    maps = maps or {}
    clash = set(maps) & set(cfg.baselines)
    if clash:
        raise ValueError(f"method names {sorted(clash)} are both generated maps and baselines")
    methods = [OURS + n for n in regimes] + list(maps) + list(cfg.baselines)
    layer = cam_layer(clf, x)
    key = state_key("evaluate", cfg, fill, ids)
    results: dict[str, MethodResult] = {}
    for name in tqdm(methods, desc=f"evaluate {cfg.name}", disable=not progress):
        path = state_dir / f"{name.replace(':', '_')}.pt" if state_dir else None
        if path is not None and path.is_file():
            saved = torch.load(path, weights_only=False)
            if saved.get("key") == key:
                results[name] = saved["result"]
                continue
        log.info("scoring %s", name)
        if name.startswith(OURS):
            reg = regimes[name[len(OURS):]]
            pos = {k: j for j, k in enumerate(reg.ids)}
            keep = [j for j, k in enumerate(ids) if k in pos]
            sel = torch.tensor(keep, dtype=torch.long, device=device)
            rows = [pos[ids[j]] for j in keep]
            soft, hard = reg.soft[rows].to(device), reg.hard_masks()[rows].to(device)
            explain_one = _our_cost_fn(reg, clf, cfg.seed)
        elif name in maps:
            m = maps[name]
            keep, rows = m.rows(ids)
            sal = m.maps[rows].to(device)
            if sal.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"{name} maps are {tuple(sal.shape[-2:])} px but the classifier's inputs are "
                                 f"{tuple(x.shape[-2:])}: generated maps must be made at the classifier's input size")
            sel = torch.tensor(keep, dtype=torch.long, device=device)
            soft, hard = to_unit(sal), binarize_to_area(sal, areas[sel], cfg.seed)
            explain_one = (lambda g: lambda xi, yi, bi, ai: g(xi))(m.cost(clf))
        else:
            sel = torch.arange(len(ids), device=device)
            method = build_baseline(name, **cfg.baselines[name])
            sal = torch.cat([method.explain(clf.model, x[s], y[s], baseline[s], areas[s], layer=layer)
                             for s in _chunks(len(ids), cfg.batch_size)])
            soft, hard = to_unit(sal), binarize_to_area(sal, areas, cfg.seed)
            explain_one = (lambda m: lambda xi, yi, bi, ai: m.explain(clf.model, xi, yi, bi, ai, layer=layer))(method)
        cols, curves = score_masks(clf.model, clf.taps, x[sel], y[sel], soft, hard, baseline[sel], blurred[sel], score,
                                   None if boxes is None else boxes[sel])
        timings = []
        for i in range(min(cfg.cost_images, len(x))):
            one = slice(i, i + 1)
            timings.append(measure(lambda: explain_one(x[one], y[one], baseline[one], areas[one]), device)[1:])
        results[name] = MethodResult(cols, curves, [ids[int(j)] for j in sel.cpu()], [t[0] for t in timings],
                                     [t[1] for t in timings])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save({"key": key, "result": results[name]}, tmp)
    labels = dict(zip(ids, ds.labels[idx].tolist()))
    ylab = dict(zip(ids, y.cpu().tolist()))
    return _tables(results, labels, ylab, cfg, fill, blur_sigma)


def _tables(results: dict[str, MethodResult], labels: dict, ylab: dict, cfg: EvaluateRunConfig, fill: str,
            blur_sigma: float) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    frames, curves = [], []
    for name, r in results.items():
        frames.append(pd.DataFrame({"method": name, "id": r.ids, "label": [labels[i] for i in r.ids],
                                    "y": [ylab[i] for i in r.ids], **r.cols}))
        frac = np.linspace(0.0, 1.0, cfg.curve_steps + 1)
        curves.append(pd.DataFrame({"method": name, "fraction": frac, "deletion": r.curves["deletion"].mean(0),
                                    "insertion": r.curves["insertion"].mean(0)}))
    per_image = pd.concat(frames, ignore_index=True)
    metric_cols = [c for c in per_image.columns if c not in ("method", "id", "label", "y", "p_x", "p_e")]
    settings = {"classifier": cfg.classifier, "dataset": cfg.dataset, "match_area": cfg.match_area, "fill": fill,
                "tie_seed": cfg.seed, "n_images": int(per_image.groupby("method").size().max()),
                "curve_steps": cfg.curve_steps, "insertion_blur_sigma": blur_sigma, "bootstrap": cfg.bootstrap,
                "baselines": cfg.baselines}
    metrics = {"settings": settings, "methods": aggregate(per_image, metric_cols, cfg.bootstrap, cfg.seed)}
    cost = {name: {"ms_per_explanation": statistics.median(r.cost_ms), "peak_mb": max(r.cost_mb),
                   "n": len(r.cost_ms)} for name, r in results.items()}
    return per_image, pd.concat(curves, ignore_index=True), metrics, cost
