"""SyCE / CyCE as pipeline stages (method.md §8.1): glue between params, datasets, the frozen
classifier and the library (:mod:`.train`, :mod:`.explain`, :mod:`.vae`), and the files the
stages write.

One run ``<classifier>-<dataset>`` (an explainer group) trains each variant on the train split
(the last ``val_fraction`` of the first ``max_train`` images drive the schedule and the early
stop) and explains every test image. Output folder per variant::

    generator.pt   the generator's weights and what rebuilds it (kind, widths, classes, size)
    maps.npz       ids, map (N, H, W) float16, x_a and x_st (N, H, W, C) uint8, c, t
    config.yaml    the resolved settings, the method's name in the tables, timings

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

from actmatch.ce.explain import ce_metrics, explain_ce
from actmatch.ce.losses import CEWeights, PixelClassifier
from actmatch.ce.models import Translator, build_ce
from actmatch.ce.train import CETrainConfig, TrainedCE, train_ce
from actmatch.ce.vae import VAE, embed, frechet_distance, js_distance
from actmatch.classifiers.registry import Classifier
from actmatch.config import CEParams, CETrainParams, VAEParams
from actmatch.data.store import ImageDataset
from actmatch.io import atomic_dir, atomic_path

__all__ = ["pixel_inputs", "pixel_classifier", "kind_for", "method_name", "train_config", "weights", "run_variant",
           "save_vae", "load_vae", "load_generator", "CEMaps", "load_maps", "cost_fn"]


def pixel_inputs(ds: ImageDataset, idx: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Images ``idx`` of ``ds`` as float32 ``(N, C, H, W)`` in [0, 1] (the generators' space)."""
    if not isinstance(ds.images, np.ndarray):
        raise ValueError(f"SyCE/CyCE need a same-size array dataset (MNIST-like), got {ds.name}")
    return torch.from_numpy(ds.images[idx]).permute(0, 3, 1, 2).float().div(255.0).to(device)


def pixel_classifier(clf: Classifier, ds: ImageDataset) -> PixelClassifier:
    """The frozen classifier on pixel-space images; its input must be the dataset's own size and channels
    (the small classifiers the pipeline trains), so no resizing happens between the generator and it."""
    shape = ds.images.shape[1:] if isinstance(ds.images, np.ndarray) else None
    if shape is None or (shape[0], shape[2]) != (clf.input_size, clf.in_channels):
        raise ValueError(f"classifier {clf.name} takes {clf.in_channels}x{clf.input_size}px inputs but {ds.name} has "
                         f"images {shape}; SyCE/CyCE need a classifier trained on the dataset itself")
    dev = next(clf.model.parameters()).device
    return PixelClassifier(clf.model, clf.mean, clf.std).to(dev).eval()


def kind_for(num_classes: int) -> str:
    """The authors' per-class setting for a 2-class classifier, our conditional extension otherwise."""
    return "binary" if num_classes == 2 else "conditional"


def method_name(variant: str, num_classes: int) -> str:
    """The method's name in the tables: ``syce`` / ``cyce``, ``_10class`` for our extension."""
    return variant if num_classes == 2 else f"{variant}_{num_classes}class"


def train_config(p: CETrainParams, num_classes: int) -> CETrainConfig:
    return CETrainConfig(kind=kind_for(num_classes), g_widths=tuple(p.g_widths), d_widths=tuple(p.d_widths),
                         dropout=p.dropout, lr=p.lr, batch_size=p.batch_size, max_epochs=p.max_epochs,
                         critic_steps=p.critic_steps, plateau_factor=p.plateau_factor,
                         plateau_patience=p.plateau_patience, early_stop_patience=p.early_stop_patience)


def weights(p: CEParams) -> CEWeights:
    return CEWeights(**p.weights.model_dump())


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def run_variant(variant: str, f: PixelClassifier, num_classes: int, x_train: torch.Tensor, x_val: torch.Tensor,
                x_test: torch.Tensor, test_ids: list[str], train: CETrainParams, ce: CEParams, vae: VAE | None,
                seed: int, out: Path, *, state_path: Path | None = None,
                on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                progress: bool = True) -> tuple[TrainedCE, dict[str, Any]]:
    """Train one variant, explain ``x_test`` and write ``out`` (atomically). Returns the trained nets and
    the variant's metrics: the authors' flip / target hit / stable / L1 (means over the test images),
    the Fréchet and Jensen–Shannon distances of x_a and x_st to the real test images in ``vae``'s
    embedding, the epochs and the time."""
    cfg = train_config(train, num_classes)
    t0 = time.perf_counter()
    trained = train_ce(variant, f, x_train, x_val, num_classes, cfg, weights(ce), seed, state_path=state_path,
                       on_epoch=on_epoch, progress=progress)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = explain_ce(variant, trained.generator, f, x_test)
    t_explain = time.perf_counter() - t0
    per = ce_metrics(f, x_test, res)
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
              "val_images": len(x_val), "metrics": metrics}
    with atomic_dir(out) as tmp:
        torch.save({"state_dict": trained.generator.state_dict(), **{k: record[k] for k in
                    ("kind", "num_classes", "size", "channels", "variant")}, "g_widths": list(cfg.g_widths),
                    "d_widths": list(cfg.d_widths), "dropout": cfg.dropout}, tmp / "generator.pt")
        np.savez_compressed(tmp / "maps.npz", ids=np.array(test_ids), map=res["map"][:, 0].cpu().numpy().astype(np.float16),
                            x_a=_uint8(res["x_a"]), x_st=_uint8(res["x_st"]), c=res["c"].cpu().numpy(),
                            t=res["t"].cpu().numpy(), **{k: v.cpu().numpy() for k, v in per.items()})
        (tmp / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=True))
    return trained, metrics


def save_vae(out: Path, vae: VAE, p: VAEParams, meta: dict[str, Any]) -> None:
    with atomic_dir(out) as tmp:
        torch.save({"state_dict": vae.state_dict(), "channels": vae.enc[0].in_channels, "size": vae.side * 4,
                    "latent": p.latent}, tmp / "vae.pt")
        (tmp / "config.yaml").write_text(yaml.safe_dump({**p.model_dump(), **meta}, sort_keys=True))


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
    G, _ = build_ce(ck["kind"], ck["channels"], ck["size"], ck["num_classes"], tuple(ck["g_widths"]),
                    tuple(ck["d_widths"]), ck["dropout"])
    G.load_state_dict(ck["state_dict"])
    G.requires_grad_(False)
    return G.eval(), ck


class CEMaps:
    """One variant's explanation maps as the evaluate stage reads them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.record = yaml.safe_load((folder / "config.yaml").read_text())
        self.name: str = self.record["method"]
        with np.load(folder / "maps.npz") as z:
            self.ids = [str(i) for i in z["ids"]]
            self.maps = torch.from_numpy(z["map"].astype(np.float32))[:, None]

    def rows(self, ids: list[str]) -> tuple[list[int], list[int]]:
        """Positions in ``ids`` that have a map, and the matching rows of ``maps``."""
        pos = {k: j for j, k in enumerate(self.ids)}
        keep = [j for j, k in enumerate(ids) if k in pos]
        return keep, [pos[ids[j]] for j in keep]

    def cost(self, clf: Classifier) -> Callable[[torch.Tensor], torch.Tensor]:
        """One explanation from a normalized input, for timing (:func:`cost_fn`)."""
        return cost_fn(self, clf)


def load_maps(folder: str | Path) -> dict[str, CEMaps]:
    """Every SyCE/CyCE variant under ``folder/ce/*/`` (none when the folder is absent), by table name."""
    root = Path(folder) / "ce"
    if not root.is_dir():
        return {}
    out = {}
    for sub in sorted(p for p in root.iterdir() if (p / "maps.npz").is_file()):
        m = CEMaps(sub)
        out[m.name] = m
    return out


def cost_fn(m: CEMaps, clf: Classifier) -> Callable[[torch.Tensor], torch.Tensor]:
    """One explanation from a normalized input, for timing: back to pixels, classify, two generator
    passes (x_a, then x_st), the map."""
    G, _ = load_generator(m.folder)
    dev = next(clf.model.parameters()).device
    G.to(dev)
    f = PixelClassifier(clf.model, clf.mean, clf.std).to(dev)
    variant = m.record["variant"]

    def one(x: torch.Tensor) -> torch.Tensor:
        pix = x * f.std + f.mean
        return explain_ce(variant, G, f, pix)["map"]
    return one
