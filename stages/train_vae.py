"""DVC stage ``train_vae@<dataset>``: the small VAE whose embedding scores how real SyCE/CyCE's
generated images look (Fréchet and Jensen–Shannon distances, method.md §8.1), trained on the
dataset's train split. Weights and settings in --out, the loss curve in --live."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from dvclive import Live

from actmatch.ce.pipeline import pixel_inputs, save_vae
from actmatch.ce.vae import train_vae
from actmatch.config import load_params
from actmatch.data import load_dataset
from actmatch.device import resolve_device
from actmatch.report.figures import training_curves
from actmatch.runner import run_stage


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    for flag in ("--data", "--out", "--live"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if params.ce is None:
        raise KeyError("params.yaml has no 'ce' section: the VAE belongs to the SyCE/CyCE stages")
    p = params.ce.vae
    ds = load_dataset(args.data)
    x = pixel_inputs(ds, ds.split_indices("train"), resolve_device(params.device))
    losses: list[float] = []
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=False) as live:
        def on_epoch(epoch: int, loss: float) -> None:
            losses.append(loss)
            live.log_metric("vae/loss", loss)
            live.next_step()
        start = time.perf_counter()
        vae = train_vae(x, p.latent, p.epochs, p.lr, p.batch_size, params.seed, on_epoch=on_epoch,
                        progress=not args.no_progress)
        live.log_image("curves.png", training_curves({"vae loss (per image)": losses}, "epoch"))
    save_vae(args.out, vae.cpu(), p, {"dataset": ds.name, "train_images": len(x), "seed": params.seed,
                                      "train_seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    sys.exit(run_stage(main))
