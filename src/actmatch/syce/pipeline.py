"""SyCE / CyCE as pipeline stages (method.md §8.1): glue between params, datasets, the frozen
classifier and the library (:mod:`.train`, :mod:`.explain`, :mod:`.vae`), and the files the
stages write.

One run ``<classifier>-<dataset>`` (an explainer group) trains each variant on the train split
(the last ``val_fraction`` of the first ``max_train`` images drive the schedule and the early
stop) and explains every test image. Output folder per variant::

    generator.pt   the generator's weights and what rebuilds it (kind, widths, classes, size)
    maps.npz       ids, map (N, H, W) float32, x_a and x_st (N, H, W, C) uint8, c, t
    config.yaml    the resolved settings, the method's name in the tables, the metrics (wall times only in
                   the stage's metrics file: a time in this folder would rerun evaluate every time)

``maps.npz`` is what the evaluate stage scores beside our masks (binarized to our area per image).
A 2-class classifier gets the authors' per-class G_c / D_c ("syce", "cyce"); more classes our
class-conditional extension ("syce_10class", "cyce_10class" in the tables).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from actmatch.syce.explain import syce_metrics, explain_syce
from actmatch.classifiers.pixel import PixelClassifier, pixel_classifier, pixel_inputs
from actmatch.maps import StoredMaps
from actmatch.syce.losses import SyceWeights
from actmatch.syce.models import Translator, build_syce
from actmatch.syce.train import SyceTrainConfig, TrainedSyce, train_syce
from actmatch.syce.vae import VAE, embed, frechet_distance, js_distance
from actmatch.classifiers.registry import Classifier
from actmatch.config.syce import SyceParams, SyceTrainParams, VAEParams
from actmatch.data.store import ImageDataset
from actmatch.core.io import atomic_dir, save_torch

__all__ = ["run_all", "kind_for", "method_name", "train_config", "weights", "run_variant",
           "save_vae", "load_vae", "load_generator", "SyceMaps", "load_maps", "cost_fn"]


def kind_for(num_classes: int) -> str:
    """The authors' per-class setting for a 2-class classifier, our conditional extension otherwise."""
    return "binary" if num_classes == 2 else "conditional"


def method_name(variant: str, num_classes: int) -> str:
    """The method's name in the tables: ``syce`` / ``cyce``, ``_10class`` for our extension."""
    return variant if num_classes == 2 else f"{variant}_{num_classes}class"


def train_config(p: SyceTrainParams, num_classes: int) -> SyceTrainConfig:
    return SyceTrainConfig(kind=kind_for(num_classes), g_widths=tuple(p.g_widths), d_widths=tuple(p.d_widths),
                         dropout=p.dropout, lr=p.lr, batch_size=p.batch_size, max_epochs=p.max_epochs,
                         critic_steps=p.critic_steps, plateau_factor=p.plateau_factor,
                         plateau_patience=p.plateau_patience, early_stop_patience=p.early_stop_patience)


def weights(p: SyceParams) -> SyceWeights:
    return SyceWeights(**p.weights.model_dump())


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# wall times: in the metrics the stage returns (results/syce/<run>.json), never in the output folder
WALL_TIMES = ("train_minutes", "ms_per_explanation")


def run_variant(variant: str, f: PixelClassifier, num_classes: int, x_train: torch.Tensor, x_val: torch.Tensor,
                x_test: torch.Tensor, test_ids: list[str], train: SyceTrainParams, ce: SyceParams, vae: VAE | None,
                seed: int, out: Path, *, state_path: Path | None = None,
                on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                progress: bool = True) -> tuple[TrainedSyce, dict[str, Any]]:
    """Train one variant, explain ``x_test`` and write ``out`` (atomically). Returns the trained nets and
    the variant's metrics: the authors' flip / target hit / stable / L1 (means over the test images),
    the Fréchet and Jensen–Shannon distances of x_a and x_st to the real test images in ``vae``'s
    embedding, the epochs and the time."""
    cfg = train_config(train, num_classes)
    t0 = time.perf_counter()
    trained = train_syce(variant, f, x_train, x_val, num_classes, cfg, weights(ce), seed, state_path=state_path,
                       on_epoch=on_epoch, progress=progress)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = explain_syce(variant, trained.generator, f, x_test)
    t_explain = time.perf_counter() - t0
    per = syce_metrics(f, x_test, res)
    metrics: dict[str, Any] = {k: float(v.mean()) for k, v in per.items()}
    if vae is not None:
        real = embed(vae, x_test)
        for name, key in (("adv", "x_a"), ("stable", "x_st")):
            gen = embed(vae, res[key])
            metrics[f"fd_{name}"] = frechet_distance(real, gen)
            metrics[f"js_{name}"] = js_distance(real, gen, ce.vae.js_bins)
    metrics |= {"n": len(x_test), "epochs_run": trained.epochs_run, "best_epoch": trained.best_epoch,
                "train_minutes": t_train / 60, "ms_per_explanation": 1000 * t_explain / max(len(x_test), 1)}
    record = {"method": method_name(variant, num_classes), "variant": variant, "kind": cfg.kind,
              "num_classes": num_classes, "size": int(x_train.shape[-1]), "channels": int(x_train.shape[1]),
              "train": asdict(cfg), "weights": asdict(weights(ce)), "seed": seed, "train_images": len(x_train),
              "val_images": len(x_val), "metrics": {k: v for k, v in metrics.items() if k not in WALL_TIMES}}
    with atomic_dir(out) as tmp:
        save_torch({"state_dict": trained.generator.state_dict(), **{k: record[k] for k in
                    ("kind", "num_classes", "size", "channels", "variant")}, "g_widths": list(cfg.g_widths),
                    "d_widths": list(cfg.d_widths), "dropout": cfg.dropout}, tmp / "generator.pt")
        np.savez_compressed(tmp / "maps.npz", ids=np.array(test_ids), map=res["map"][:, 0].cpu().numpy().astype(np.float32),
                            x_a=_uint8(res["x_a"]), x_st=_uint8(res["x_st"]), c=res["c"].cpu().numpy(),
                            t=res["t"].cpu().numpy(), **{k: v.cpu().numpy() for k, v in per.items()})
        (tmp / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=True))
    return trained, metrics


def save_vae(out: Path, vae: VAE, p: VAEParams, meta: dict[str, Any]) -> None:
    with atomic_dir(out) as tmp:
        save_torch({"state_dict": vae.state_dict(), "channels": vae.enc[0].in_channels, "size": vae.side * 4,
                    "latent": p.latent}, tmp / "vae.pt")
        (tmp / "config.yaml").write_text(yaml.safe_dump({**p.model_dump(), **meta}, sort_keys=True))


def run_all(clf: Classifier, ds: ImageDataset, sp: SyceParams, key: str, seed: int, data_seed: int, vae: VAE,
            out: Path, live_dir: Path, state: Path, progress: bool = True) -> dict[str, Any]:
    """Every variant of ``sp.variants`` for run ``key``: trained on a seeded, class-stratified sample of
    the train split (its last ``val_fraction`` drives the schedule and the early stop), every test
    image explained, written to ``out/<variant>/``; curves in ``live_dir/<variant>/``. Returns the
    metrics per method. Resumes by epoch (state files kept until every variant is done)."""
    from dvclive import Live

    from actmatch.core.figures import training_curves
    from actmatch.core.sampling import stratified_sample
    from actmatch.core.stage import epoch_logger

    train = sp.train_for(key)
    device = next(clf.model.parameters()).device
    f = pixel_classifier(clf, ds)
    num_classes = len(clf.class_names)
    pool = stratified_sample(ds.split_indices("train"), ds.labels, train.max_train, data_seed)
    n_val = max(1, int(round(len(pool) * train.val_fraction)))
    if len(pool) - n_val < 2:
        raise ValueError(f"syce.runs.{key}: {len(pool)} train images leave too few for training after "
                         f"{n_val} for validation")
    x_train, x_val = pixel_inputs(ds, pool[:-n_val], device), pixel_inputs(ds, pool[-n_val:], device)
    test = ds.split_indices("test")
    x_test = pixel_inputs(ds, test, device)
    test_ids = [str(i) for i in ds.index["id"].to_numpy()[test]]
    metrics = {}
    for variant in sp.variants:
        with Live(dir=str(live_dir / variant), save_dvc_exp=False, dvcyaml=False,
                  resume=state.with_suffix(f".{variant}").exists()) as live:
            trained, m = run_variant(variant, f, num_classes, x_train, x_val, x_test, test_ids, train, sp, vae, seed,
                                     out / variant, state_path=state.with_suffix(f".{variant}"),
                                     on_epoch=epoch_logger(live, variant), progress=progress)
            live.log_image("curves.png", training_curves(trained.curves, "epoch"))
            for k, v in m.items():
                live.summary[k] = v
        metrics[method_name(variant, num_classes)] = m
    for variant in sp.variants:  # kept until every variant is done: a rerun skips finished ones' training
        state.with_suffix(f".{variant}").unlink(missing_ok=True)
    return metrics


def load_vae(folder: str | Path) -> VAE:
    path = Path(folder) / "vae.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no VAE at {path}; run the train_vae stage first")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    vae = VAE(ck["channels"], ck["size"], ck["latent"])
    vae.load_state_dict(ck["state_dict"])
    return vae.eval()


def load_generator(folder: str | Path) -> tuple[Translator, dict[str, Any]]:
    """The trained generator of a variant folder (frozen, eval mode) and its record."""
    ck = torch.load(Path(folder) / "generator.pt", map_location="cpu", weights_only=True)
    G, _ = build_syce(ck["kind"], ck["channels"], ck["size"], ck["num_classes"], tuple(ck["g_widths"]),
                    tuple(ck["d_widths"]), ck["dropout"])
    G.load_state_dict(ck["state_dict"])
    G.requires_grad_(False)
    return G.eval(), ck


class SyceMaps(StoredMaps):
    """One SyCE/CyCE variant's explanation maps as the evaluate stage reads them."""

    def cost(self, clf: Classifier) -> Callable[[torch.Tensor], torch.Tensor]:
        """One explanation from a normalized input, for timing (:func:`cost_fn`)."""
        return cost_fn(self, clf)


def load_maps(folder: str | Path) -> dict[str, SyceMaps]:
    """Every SyCE/CyCE variant under ``folder/syce/*/`` (none when the folder is absent), by table name."""
    root = Path(folder) / "syce"
    if not root.is_dir():
        return {}
    out = {}
    for sub in sorted(p for p in root.iterdir() if (p / "maps.npz").is_file()):
        m = SyceMaps(sub)
        out[m.name] = m
    return out


def cost_fn(m: SyceMaps, clf: Classifier) -> Callable[[torch.Tensor], torch.Tensor]:
    """One explanation from a normalized input, for timing: back to pixels, classify, two generator
    passes (x_a, then x_st), the map."""
    G, _ = load_generator(m.folder)
    dev = next(clf.model.parameters()).device
    G.to(dev)
    f = PixelClassifier(clf.model, clf.mean, clf.std).to(dev)
    variant = m.record["variant"]

    def one(x: torch.Tensor) -> torch.Tensor:
        pix = x * f.std + f.mean
        return explain_syce(variant, G, f, pix)["map"]
    return one
