"""One ablation variant (the ``ablate`` stage): an amortized U-Net trained under a loss variant, once
per seed, each scored with the evaluation's metric code (method.md §5) on the same held-out images,
so Table 2 compares variants image by image and seed by seed.

The variant reuses the U-Net, fill and evaluation images of the amortized run it ablates; only the
loss (and the shorter ``ablation.train``) differ. The training subset is a seeded, class-stratified
sample (``data_seed``), listed in ``train_ids.csv``. A *matched* variant has its area term as a
target at the base variant's median area *and* its hard masks are the top ``target`` fraction of
its soft mask's pixels (as the baselines are binarized), so what a term does is compared at exactly
equal area; its own binarization (soft > 0.5) is kept as ``area_own``, and decides collapse.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from actmatch.classifiers import Classifier
from actmatch.config.explainer import AmortizedParams, ExplainerRun, LossConfig
from actmatch.core.figures import save_figure, training_curves
from actmatch.core.io import atomic_dir, write_json
from actmatch.core.provenance import machine
from actmatch.core.masks import fill_values
from actmatch.data.store import ImageDataset
from actmatch.explainer.outputs import eval_split, seed_dir, train_subset, write_ids, write_masks
from actmatch.explainer.train import predict_masks, train_amortized
from actmatch.metrics.aggregate import aggregate_seeds, collapse_direction, is_collapsed
from actmatch.metrics.curves import pixel_ranks, top_fraction_masks
from actmatch.metrics.fidelity import fidelity, null_prediction, predict_logits
from actmatch.metrics.suite import ScoreSettings, metric_columns, score_masks

__all__ = ["ABLATION_METRICS", "ablate", "binarize", "collapsed_columns", "score_variant", "run_variant",
           "summarize_variant", "base_median_area"]

# the columns Table 2 shows (every metric of the suite is kept in per_image.csv)
ABLATION_METRICS = ("kept", "area", "flip", "act_sim", "insertion_auc", "deletion_auc", "crispness", "p_star",
                    "removable", "suff_gaussian", "p_ratio")


def binarize(soft: torch.Tensor, hard_area: float | None, tie_seed: int) -> torch.Tensor:
    """Hard masks ``(B, 1, H, W)`` in {0, 1} from soft masks: ``soft > 0.5`` (the method's binarization),
    or with ``hard_area`` a in (0, 1) the round(a·H·W) pixels of highest soft value per image (ties
    broken by ``tie_seed``, :func:`~actmatch.metrics.curves.pixel_ranks`), so every image's area is a:
    a matched row's masks. The area term's target alone does not get there (issue 18: the matched rows'
    own binarization lands well above the target; see ``area_own`` in ``table2_<pair>_matched``)."""
    if hard_area is None:
        return (soft > 0.5).float()
    return top_fraction_masks(pixel_ranks(soft, tie_seed), hard_area)


def collapsed_columns(model: torch.nn.Module, x: torch.Tensor, hard: torch.Tensor, baseline: torch.Tensor,
                      y: torch.Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """The per-image columns of a collapsed seed: ``area`` (0 or 1 says empty or full) and the fidelity
    columns (``kept``, ``p_ratio``, ...; one forward pass). Every table leaves a collapsed seed out
    (:func:`~actmatch.metrics.aggregate.is_collapsed`), so the rest of the suite is not computed; its
    columns read NaN beside the other seeds'."""
    cols = fidelity(model, x, hard, baseline, y, batch_size)
    cols["area"] = hard.float().mean(dim=(1, 2, 3))
    return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in cols.items()}


def score_variant(clf: Classifier, ds: ImageDataset, run: ExplainerRun, loss: LossConfig, train: AmortizedParams,
                  eval_images: int, score: ScoreSettings, seed: int, data_seed: int, state_path: Path | None = None,
                  progress: bool = True, hard_area: float | None = None
                  ) -> tuple[list[str], torch.Tensor, pd.DataFrame, dict[str, list[float]], np.ndarray]:
    """Train the variant with ``seed`` and score it. Returns the evaluation ids, the soft masks
    ``(N, 1, H, W)`` (CPU), the per-image table (``id, label, y, null_y, trivial`` + every metric; ``null_y``
    the classifier's top-1 on the fill alone, ``trivial`` = null_y == y; only :func:`collapsed_columns`
    when the seed's own masks, soft > 0.5, collapsed), the training curves
    and the training rows. Training resumes by epoch from ``state_path``. With ``hard_area`` the hard
    masks are the top ``hard_area`` of each soft mask (:func:`binarize`) and the table also has
    ``area_own``, the area of ``soft > 0.5``."""
    device = next(clf.model.parameters()).device
    tr = train_subset(ds, train.max_train, data_seed)
    x_train = clf.preprocess_batch([ds.images[i] for i in tr]).to(device)
    net, curves = train_amortized(clf, x_train, loss, run.unet, train, run.fill, seed, state_path=state_path,
                                  progress=progress)
    del x_train
    idx = eval_split(ds, eval_images, data_seed)
    ids = [str(ds.index["id"].iloc[i]) for i in idx]
    x = clf.preprocess_batch([ds.images[i] for i in idx]).to(device)
    with torch.no_grad():
        soft = predict_masks(clf, net, x, loss, run.fill, seed).soft
        hard = binarize(soft, hard_area, score.seed)
        baseline = fill_values(x, run.fill, clf.mean, clf.std)
        blurred = fill_values(x, "blur", clf.mean, clf.std, blur_sigma=clf.input_size / 10.0)
        y = predict_logits(clf.model, x, score.batch_size).argmax(1)
        null_y = null_prediction(clf.model, baseline, score.batch_size)  # the explanation of an empty mask
        boxes = None
        if ds.boxes is not None:
            scale = clf.input_size / ds.images[idx[0]].shape[0]
            boxes = torch.from_numpy(np.round(ds.boxes[idx] * scale).astype(np.int64)).to(device)
        if is_collapsed((soft > 0.5).float().mean(dim=(1, 2, 3)).numpy()):
            cols = collapsed_columns(clf.model, x, hard.to(device), baseline, y, score.batch_size)
        else:
            cols, _ = score_masks(clf.model, clf.taps, x, y, soft.to(device), hard.to(device), baseline, blurred,
                                  score, boxes)
    if hard_area is not None:
        cols["area_own"] = (soft > 0.5).float().mean(dim=(1, 2, 3)).numpy().astype(np.float64)
    table = pd.DataFrame({"id": ids, "label": ds.labels[idx], "y": y.cpu().numpy(), "null_y": null_y.cpu().numpy(),
                          "trivial": (null_y == y).int().cpu().numpy(), **cols})
    return ids, soft, table, curves, tr


def run_variant(clf: Classifier, ds: ImageDataset, run: ExplainerRun, loss: LossConfig, train: AmortizedParams,
                eval_images: int, score: ScoreSettings, seeds: list[int], data_seed: int, out: Path, state: Path,
                record: dict[str, Any], progress: bool = True, hard_area: float | None = None,
                times: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every seed of one variant into ``out/seed<k>/`` (masks, per-image table, curves, config, train ids);
    returns the per-image table of all seeds (column ``seed``); each seed's wall time goes to ``times``
    (``seed<k>``), never into ``out``. A kill resumes: finished seeds are read back from their folder
    (DVC keeps nothing of a failed stage, hence state files)."""
    tables = []
    staged = state.parent / f"{state.name}.done"  # finished seeds, outside the DVC output until all are done
    for seed in seeds:
        done = seed_dir(staged, seed) / "per_image.csv"
        if done.is_file():
            tables.append(pd.read_csv(done, dtype={"id": str}))
            continue
        start = time.perf_counter()
        ids, soft, table, curves, tr = score_variant(clf, ds, run, loss, train, eval_images, score, seed, data_seed,
                                                     state.with_name(f"{state.name}-seed{seed}"), progress, hard_area)
        table = table.assign(seed=seed)
        with atomic_dir(done.parent) as tmp:
            write_masks(tmp / "masks.npz", ids, **{record["variant"]: soft})
            table.to_csv(tmp / "per_image.csv", index=False, float_format="%.6g")
            write_ids(tmp / "train_ids.csv", ds, tr)
            save_figure(training_curves(curves, "epoch"), tmp / "curves.png")
            (tmp / "config.yaml").write_text(yaml.safe_dump({**record, "loss": loss.model_dump(), "seed": seed,
                                                             "data_seed": data_seed}, sort_keys=True))
            write_json(tmp / "timing.json", {"seconds": time.perf_counter() - start,
                                             "device": str(next(clf.model.parameters()).device)})
        state.with_name(f"{state.name}-seed{seed}").unlink(missing_ok=True)
        tables.append(pd.read_csv(done, dtype={"id": str}))
    with atomic_dir(out) as tmp:
        for seed in seeds:  # the staged timing.json stays out of `out` (a wall time would change its hash)
            shutil.copytree(seed_dir(staged, seed), seed_dir(tmp, seed), ignore=shutil.ignore_patterns("timing.json"))
            if times is not None:
                times[f"seed{seed}"] = json.loads((seed_dir(staged, seed) / "timing.json").read_text())
    shutil.rmtree(staged, ignore_errors=True)
    return pd.concat(tables, ignore_index=True)


def summarize_variant(table: pd.DataFrame, variant: str, n_resamples: int, seed: int,
                      collapse_on: str = "area") -> dict[str, Any]:
    """The variant's DVC metrics: per metric the across-seed mean, sd, min–max and the per-image 95 %
    interval (non-collapsed seeds only), the seeds run and the collapsed ones with their direction
    (``empty``, ``full``, ``mixed``), the classes collapsed within a seed, the share of trivial images, and
    per-seed means. Image columns (:data:`~actmatch.metrics.fidelity.IMAGE_COLUMNS`: p_x, margin_x, null_y,
    trivial, …) are properties of the images, not metrics, and are left out of ``metrics``. A seed collapsed
    when its ``collapse_on`` column does (:func:`~actmatch.metrics.aggregate.is_collapsed`): ``area_own`` for
    a matched row, whose ``area`` is the target by construction and so cannot show a collapse."""
    metrics = metric_columns(table.columns)
    entry = aggregate_seeds(table.assign(method=variant), metrics, n_resamples, seed, collapse_on)[variant]
    seeds, dead, metrics_out = sorted(int(s) for s in table["seed"].unique()), entry["collapsed"], entry["metrics"]
    per_seed = {int(s): {"mean_area": float(g["area"].mean()), "median_area": float(g["area"].median()),
                         "kept": float(g["kept"].mean()), "collapsed": int(s) in dead,
                         "direction": collapse_direction(g[collapse_on].to_numpy()) if int(s) in dead else None}
                for s, g in table.groupby("seed")}
    if collapse_on != "area":
        for s, g in table.groupby("seed"):
            per_seed[int(s)][f"mean_{collapse_on}"] = float(g[collapse_on].mean())
    out = {"variant": variant, "n": int(table["id"].nunique()), "seeds": len(seeds),
           "collapsed": dead, "collapsed_direction": entry["collapsed_direction"],
           "class_collapsed": entry["class_collapsed"], "metrics": metrics_out, "per_seed": per_seed}
    if "trivial" in entry:
        out["trivial"] = entry["trivial"]
    return out


def base_median_area(summary_json: str | Path) -> float:
    """The median hard area of the base variant over its non-collapsed seeds (the matched rows' target)."""
    s = json.loads(Path(summary_json).read_text())
    areas = [v["median_area"] for v in s["per_seed"].values() if not v["collapsed"]]
    if not areas:
        raise ValueError(f"{summary_json}: every seed of the base variant collapsed; no area to match")
    area = float(np.median(areas))
    if not 0.0 < area < 1.0:
        raise ValueError(f"{summary_json}: the base variant's median area is {area}; cannot match it")
    return area


def ablate(raw: dict[str, Any], classifier: str, dataset: str, variant: str, classifier_dir: str | Path,
           data: str | Path, out: Path, metrics: Path, state: Path, match_area: str | Path | None = None,
           progress: bool = True, timing: Path | None = None) -> dict[str, Any]:
    """What the ``ablate`` and ``ablate_matched`` stages do: one variant of the grid of ``classifier`` on
    ``dataset``, every seed, written to ``out`` and summarized to ``metrics``. With ``match_area`` (the
    base variant's metrics file) the area term is a target at the base's median area and the hard masks
    are the top that fraction of each soft mask (:func:`binarize`)."""
    from actmatch.classifiers import load_classifier_dir
    from actmatch.config.ablation import ablation, variant_loss
    from actmatch.config.compute import runtime
    from actmatch.config.evaluate import score_defaults
    from actmatch.core.device import resolve_device
    from actmatch.data import load_dataset

    ab, ev, rt = ablation(raw), score_defaults(raw), runtime(raw)
    seeds = ab.seeds if ab.seeds is not None else rt.seeds  # ablation.seeds, else the top-level seeds
    target = None
    if match_area:
        try:
            target = base_median_area(match_area)
        except ValueError as err:  # the base collapsed: there is no area to match; say so, compute nothing
            summary = {"variant": variant, "skipped": str(err), "area_target": None, "seeds": len(seeds),
                       "collapsed": [], "metrics": {}, "per_seed": {}, "n": 0}
            with atomic_dir(out) as tmp:
                (tmp / "SKIPPED.txt").write_text(f"not run: {err}\n")
            write_json(metrics, summary)
            if timing is not None:
                write_json(timing, {"stage": "ablate_matched", "variant": variant, "machine": machine(), "seeds": {},
                                    "skipped": str(err)})
            return summary
    run, loss = variant_loss(raw, classifier, dataset, variant, area_target=target)
    clf = load_classifier_dir(classifier_dir)
    device = resolve_device(rt.device)
    clf.model.to(device)
    score = ScoreSettings(ev.batch_size, ev.curve_steps, ev.perturb_draws, tuple(ev.budgets), ev.max_pieces,
                          rt.data_seed, mean=tuple(clf.mean), std=tuple(clf.std))
    record = {"variant": variant, "overlay": ab.variants[variant], "explainer_run": classifier,
              "classifier": run.classifier, "dataset": run.dataset, "train": ab.train.model_dump(),
              "unet": run.unet.model_dump(), "fill": run.fill, "area_target": target}
    times: dict[str, Any] = {}
    table = run_variant(clf, load_dataset(data), run, loss, ab.train, ab.eval_images, score, seeds, rt.data_seed,
                        out, state, record, progress=progress, hard_area=target, times=times)
    if timing is not None:  # wall times per seed, outside `out`
        write_json(timing, {"stage": "ablate_matched" if match_area else "ablate", "variant": variant,
                            "machine": machine(next(clf.model.parameters()).device), "seeds": times})
    summary = {**summarize_variant(table, variant, ev.bootstrap, rt.data_seed,
                                   collapse_on="area" if target is None else "area_own"), "area_target": target,
               "seed_list": seeds, "machine": machine(device)}
    write_json(metrics, summary)
    return summary
