"""GLANCE (our reconstruction, method.md §8.2) as pipeline stages: glue between params, datasets, the
frozen classifier and the library (:mod:`.perturb`, :mod:`.morpho`, :mod:`.train`, :mod:`.graph`,
:mod:`.local`), and the files the stages write.

- the controlled digits and the context features are built by :mod:`.data`;
- :func:`run_glance`: one run ``<classifier>-<dataset>``: the surrogate trained on the train split
  (context features standardized with the train split's mean and SD), the global graph over
  (context features, free latents, output) on the train split, and local explanations of every
  test image. Choices of ours, since the abstract does not fix them: the **output** node is the
  classifier's logit margin z_y − max_{c≠y} z_c (one scalar for any number of classes); the
  **effect map** of an image is that of its counterfactual (the smallest flipping intervention);
  where none of the grid flips the label, that of the node with the largest |importance|, moved by
  the largest |δ| in the direction that lowers the logit.

Output folder (``results/explainers/<run>/glance/``)::

    surrogate.pt   encoder + generator weights, dims, the graph, the latent map, feature mean/SD
    maps.npz       ids, map (N, H, W) float32, x_hat / x_cf (N, H, W) uint8, y, y_hat, cf_node,
                   cf_delta, cf_label, importance (N, nodes)
    strips.npz     decoded interventions per context feature for the report's strips
    graph.csv      the weighted adjacency (rows: from, columns: to)
    config.yaml    the method's name in the tables, the resolved settings, the metrics

``maps.npz`` is what evaluate@<run> scores beside our masks (binarized to our area per image).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from actmatch.classifiers.pixel import PixelClassifier, pixel_classifier, pixel_inputs
from actmatch.maps import StoredMaps
from actmatch.classifiers.registry import Classifier
from actmatch.config.glance import GlanceParams, GlanceRun
from actmatch.core.sampling import stratified_sample
from actmatch.data.store import ImageDataset
from actmatch.classifiers.taps import tapped
from actmatch.glance import local as L
from actmatch.glance import surrogate as S
from actmatch.glance.graph import adjacency, edge_scores, learn_graph, shd
from actmatch.glance.train import SurrogateConfig, TrainedSurrogate, alignment_r2, decode, encode, fidelity, \
    train_surrogate
from actmatch.core.io import atomic_dir, save_torch

__all__ = ["METHOD", "OUTPUT", "last_spatial_tap",
           "run_glance", "GlanceMaps", "load_glance_maps", "load_surrogate"]

METHOD = "glance"     # the method's name in the tables
OUTPUT = "output"     # the graph's sink node


def last_spatial_tap(clf: Classifier) -> str:
    """The classifier's last tap whose output is a feature map (the feature-matching layer by default)."""
    x = torch.zeros(1, clf.in_channels, clf.input_size, clf.input_size, device=next(clf.model.parameters()).device)
    with torch.no_grad(), tapped(clf.model, clf.taps) as taps:
        clf.model(x)
        outs = taps.ordered()
    spatial = [n for n, o in zip(clf.taps, outs) if o.dim() >= 4]
    if not spatial:
        raise ValueError(f"classifier {clf.name} has no tap with a spatial output; taps: {clf.taps}")
    return spatial[-1]


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def _margin(logits: torch.Tensor) -> torch.Tensor:
    top = logits.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def _effect_targets(cf: L.Counterfactual, imp: np.ndarray, max_delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the (node, δ) whose effect map is kept (the module docstring's rule)."""
    node, delta = cf.node.copy(), cf.delta.copy()
    none = node < 0
    k = np.abs(imp[none]).argmax(1)
    node[none] = k
    delta[none] = -np.sign(imp[none, k] + 1e-12) * max_delta
    return node, delta


def _intervene_each(z: torch.Tensor, W: np.ndarray, latent: L.LatentMap, node: np.ndarray,
                    delta: np.ndarray) -> torch.Tensor:
    z2 = z.clone()
    for k, d in sorted(set(zip(node.tolist(), delta.tolist()))):
        rows = torch.from_numpy(np.flatnonzero((node == k) & (delta == d))).to(z.device)
        z2[rows] = L.intervene(z[rows], W, latent, k, d)
    return z2


def _explain(f: Callable[[torch.Tensor], torch.Tensor], dec: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
             W: np.ndarray, latent: L.LatentMap, grid: list[float], importance_delta: float
             ) -> tuple[L.Counterfactual, np.ndarray, np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """The local explanations of latents ``z`` (B, D), every node but the output movable: the counterfactual,
    the importances (B, nodes), the kept (node, δ) per image, its latent z' and the effect map (B, 1, H, W)."""
    movable = [k for k, d in enumerate(latent.dims) if d is not None]
    cf = L.counterfactual(f, dec, z, W, latent, movable, grid)
    imp = torch.stack([L.importance(f, dec, z, W, latent, k, importance_delta) for k in movable], 1).cpu().numpy()
    node, delta = _effect_targets(cf, imp, max(grid))
    z_eff = _intervene_each(z, W, latent, node, delta)
    return cf, imp, node, delta, z_eff, L.effect_map(dec, z, z_eff)


def _graph_scores(weights: pd.DataFrame, true_edges: list[list[str]]) -> dict[str, Any]:
    """SHD and directed-edge precision / recall on the variables the recipe sets (the rest of the
    true graph, e.g. how area follows thickness, is not known)."""
    names = sorted({v for e in true_edges for v in e})
    est = weights.loc[names, names].to_numpy()
    true = adjacency([tuple(e) for e in true_edges], names)
    return {"variables": names, "shd": shd(est, true), **edge_scores(est, true)}


def run_glance(clf: Classifier, ds: ImageDataset, features: np.ndarray, gp: GlanceParams, run: GlanceRun, seed: int,
               out: Path, *, state_path: Path | None = None,
               on_epoch: Callable[[int, dict[str, float]], None] | None = None,
               progress: bool = True, data_seed: int = 0) -> tuple[TrainedSurrogate, dict[str, Any]]:
    """Train, learn the graph, explain every test image and write ``out`` (atomically). ``features``:
    the ``gp.features`` columns for every image of ``ds``. Returns the surrogate and the metrics."""
    device = next(clf.model.parameters()).device
    f = pixel_classifier(clf, ds)
    names = list(gp.features)
    sp = gp.surrogate
    # a class-stratified sample, kept in storage order (with max_train None: the whole split, as stored)
    train_idx = np.sort(stratified_sample(ds.split_indices("train"), ds.labels, sp.max_train, data_seed))
    test_idx = ds.split_indices("test")
    if len(train_idx) < 10 or len(test_idx) < 1:
        raise ValueError(f"glance on {ds.name}: {len(train_idx)} train / {len(test_idx)} test images are too few")
    mu, sd = features[train_idx].mean(0), features[train_idx].std(0)
    if np.any(sd == 0):
        raise ValueError(f"context features constant on the train split: {[n for n, s in zip(names, sd) if s == 0]}")
    std_feat = (features - mu) / sd
    x_tr, x_te = pixel_inputs(ds, train_idx, device), pixel_inputs(ds, test_idx, device)
    c_tr = torch.from_numpy(std_feat[train_idx]).float().to(device)
    tap = run.tap or last_spatial_tap(clf)
    cfg = SurrogateConfig(sp.free, sp.width, sp.style_dim, sp.lr, sp.batch_size, sp.epochs, tap)
    w = S.SurrogateWeights(**gp.weights.model_dump())
    t0 = time.perf_counter()
    trained = train_surrogate(clf.model, clf.mean, clf.std, x_tr, c_tr, cfg, w, seed, state_path=state_path,
                              on_epoch=on_epoch, progress=progress)
    t_train = time.perf_counter() - t0
    E, G, A = trained.encoder, trained.generator, len(names)
    z_tr = encode(clf.model, clf.mean, clf.std, E, x_tr)
    z_te = encode(clf.model, clf.mean, clf.std, E, x_te)
    r2 = alignment_r2(z_te[:, :A].cpu().numpy(), std_feat[test_idx])
    fid = fidelity(clf.model, clf.mean, clf.std, E, G, x_te)
    # the global graph, on the train split
    t0 = time.perf_counter()
    with torch.no_grad():
        margin_tr = _margin(f(x_tr)).cpu().numpy()
    free = [f"free{k}" for k in range(sp.free)]
    table = pd.DataFrame(features[train_idx], columns=names)
    for k, n in enumerate(free):
        table[n] = z_tr[:, A + k].cpu().numpy()
    table[OUTPUT] = margin_tr
    graph = learn_graph(table, sink=OUTPUT, lambda1=gp.graph.lambda1, w_threshold=gp.graph.w_threshold, seed=seed)
    t_graph = time.perf_counter() - t0
    nodes = list(graph.weights.index)
    W = graph.weights.to_numpy()
    scales = z_tr.std(0).cpu().numpy()
    latent = L.LatentMap(dims=[*range(A + sp.free), None], scales=[*map(float, scales), 1.0])
    # local explanations of every test image
    t0 = time.perf_counter()
    dec = lambda z: decode(G, z)  # noqa: E731
    movable = list(range(A + sp.free))
    cf, imp, node, delta, z_eff, maps = _explain(f, dec, z_te, W, latent, gp.local.grid, gp.local.importance_delta)
    t_local = time.perf_counter() - t0
    with torch.no_grad():
        x_hat, x_cf = dec(z_te), dec(z_eff)
        y, y_hat = f(x_te).argmax(1).cpu().numpy(), f(x_hat).argmax(1).cpu().numpy()
    # intervention strips for the report: one test image per label first, then the rest
    labels = ds.labels[test_idx]
    order = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    order = (order + [j for j in range(len(test_idx)) if j not in order])[: gp.figure_examples]
    zs = z_te[order]
    strips = np.stack([np.stack([_uint8(dec(L.intervene(zs, W, latent, k, d))) for d in gp.local.strip_deltas])
                       for k in range(A)])  # (features, deltas, examples, H, W)
    found = cf.node >= 0
    metrics: dict[str, Any] = {
        "n_train": len(train_idx), "n_test": len(test_idx), "tap": tap,
        "fidelity": fid, "alignment_r2": dict(zip(names, map(float, r2))), "alignment_r2_mean": float(np.nanmean(r2)),
        "reconstruction_l1": float((x_hat - x_te).abs().mean()),
        "graph_edges": [[a, b, round(v, 4)] for a, b, v in graph.edges],
        "edges_into_output": [[a, round(v, 4)] for a, b, v in graph.edges if b == OUTPUT],
        "counterfactual_found": float(found.mean()),
        "counterfactual_median_abs_delta": float(np.median(np.abs(cf.delta[found]))) if found.any() else float("nan"),
        "counterfactual_nodes": {nodes[k]: int((cf.node == k).sum()) for k in movable if (cf.node == k).any()},
        "importance_mean_abs": {nodes[k]: float(np.abs(imp[:, j]).mean()) for j, k in enumerate(movable)},
        "epochs": sp.epochs, "train_minutes": t_train / 60, "graph_seconds": t_graph,
        "ms_per_explanation": 1000 * t_local / len(test_idx)}
    true_edges = ds.meta.get("true_edges")
    if true_edges:
        metrics["graph_recovery"] = _graph_scores(graph.weights, true_edges)
        set_cols = [f"set_{n}" for n in ("thickness", "intensity", "slant")]
        if all(c in ds.index.columns for c in set_cols):  # the learner on the drawn causes themselves
            drawn = ds.index.iloc[train_idx][set_cols].set_axis(["thickness", "intensity", "slant"], axis=1)
            g_set = learn_graph(drawn.reset_index(drop=True), lambda1=gp.graph.lambda1,
                                w_threshold=gp.graph.w_threshold, seed=seed)
            metrics["graph_recovery_drawn_causes"] = _graph_scores(g_set.weights, true_edges)
    record = {"method": METHOD, "classifier": clf.name, "dataset": ds.name, "features": names,
              "surrogate": asdict(cfg), "weights": asdict(w), "graph": gp.graph.model_dump(),
              "local": gp.local.model_dump(), "seed": seed,  # wall times only in the metrics file, not in `out`
              "metrics": {k: v for k, v in metrics.items() if k not in ("train_minutes", "graph_seconds",
                                                                        "ms_per_explanation")}}
    test_ids = np.array([str(i) for i in ds.index["id"].to_numpy()[test_idx]])
    with atomic_dir(out) as tmp:
        save_torch({"encoder": E.state_dict(), "generator": G.state_dict(), "feat_dim": E.net[0].in_features,
                    "aligned": A, "free": sp.free, "width": sp.width, "style_dim": sp.style_dim,
                    "channels": int(x_tr.shape[1]), "size": int(x_tr.shape[-1]), "nodes": nodes, "W": W,
                    "scales": latent.scales, "grid": list(gp.local.grid), "importance_delta": gp.local.importance_delta,
                    "feature_mean": mu, "feature_sd": sd}, tmp / "surrogate.pt")
        np.savez_compressed(tmp / "maps.npz", ids=test_ids, map=maps[:, 0].cpu().numpy().astype(np.float32),
                            x_hat=_uint8(x_hat), x_cf=_uint8(x_cf), y=y, y_hat=y_hat, cf_node=cf.node,
                            cf_delta=cf.delta, cf_label=cf.label, effect_node=node, effect_delta=delta,
                            importance=imp.astype(np.float32), nodes=np.array(nodes))
        np.savez_compressed(tmp / "strips.npz", ids=test_ids[order], x=_uint8(x_te[order]), strips=strips,
                            deltas=np.array(gp.local.strip_deltas), features=np.array(names))
        graph.weights.to_csv(tmp / "graph.csv", float_format="%.6g")
        (tmp / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(record)), sort_keys=True))
    return trained, metrics


def load_surrogate(folder: str | Path) -> tuple[S.Encoder, S.StyleGenerator, dict[str, Any]]:
    """The encoder and generator of a glance folder (frozen, eval mode) and the saved record."""
    path = Path(folder) / "surrogate.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no GLANCE surrogate at {path}; run the train_glance stage first")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    E = S.Encoder(ck["feat_dim"], ck["aligned"], ck["free"])
    G = S.StyleGenerator(ck["aligned"] + ck["free"], ck["channels"], ck["size"], ck["width"], ck["style_dim"])
    E.load_state_dict(ck["encoder"])
    G.load_state_dict(ck["generator"])
    for net in (E, G):
        net.eval().requires_grad_(False)
    return E, G, ck


class GlanceMaps(StoredMaps):
    """The effect maps of one GLANCE run as the evaluate stage reads them (the common stored-maps format;
    only the timed explanation is GLANCE's own)."""

    def cost(self, clf: Classifier) -> Callable[[torch.Tensor], torch.Tensor]:
        """One local explanation from a normalized input, for timing: encode, the counterfactual search
        over every node and the grid, the importances, the effect map."""
        E, G, ck = load_surrogate(self.folder)
        dev = next(clf.model.parameters()).device
        E.to(dev), G.to(dev)
        f = PixelClassifier(clf.model, clf.mean, clf.std).to(dev)
        W, latent = ck["W"], L.LatentMap(dims=[*range(ck["aligned"] + ck["free"]), None], scales=ck["scales"])
        dec = lambda z: decode(G, z)  # noqa: E731

        def one(x: torch.Tensor) -> torch.Tensor:
            z = encode(clf.model, clf.mean, clf.std, E, x * f.std + f.mean)
            return _explain(f, dec, z, W, latent, ck["grid"], ck["importance_delta"])[-1]
        return one


def load_glance_maps(folder: str | Path) -> dict[str, GlanceMaps]:
    """The GLANCE effect maps under ``folder/glance/`` (none when absent), by table name."""
    sub = Path(folder) / "glance"
    if not (sub / "maps.npz").is_file():
        return {}
    m = GlanceMaps(sub)
    return {m.name: m}
