"""DVC stage ``train_vae@<dataset>``: the small VAE whose embedding scores how real SyCE/CyCE's
generated images look (Fréchet and Jensen–Shannon distances, method.md §8.1), trained on the
dataset's train split. Weights and settings in --out, the loss curve in --live, the wall time in --timing
(outside --out, which train_syce depends on)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from dvclive import Live

from actmatch.check import check_file
from actmatch.config.base import read_params
from actmatch.config.compute import runtime
from actmatch.config.syce import syce
from actmatch.core.device import resolve_device
from actmatch.core.figures import training_curves
from actmatch.core.io import write_json
from actmatch.core.provenance import machine
from actmatch.core.stage import run_stage, stage_parser
from actmatch.data import load_dataset
from actmatch.classifiers.pixel import pixel_inputs
from actmatch.syce.pipeline import save_vae
from actmatch.syce.vae import train_vae


def main(argv: Sequence[str] | None = None) -> None:
    args = stage_parser(__doc__, "--data", "--out", "--live", "--timing").parse_args(argv)
    raw = read_params(args.params)
    p, rt = syce(raw).vae, runtime(raw)
    ds = load_dataset(args.data)
    x = pixel_inputs(ds, ds.split_indices("train"), resolve_device(rt.device))
    losses: list[float] = []
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=False) as live:
        def on_epoch(epoch: int, loss: float) -> None:
            losses.append(loss)
            live.log_metric("vae/loss", loss)
            live.next_step()
        start = time.perf_counter()
        vae = train_vae(x, p.latent, p.epochs, p.lr, p.batch_size, rt.seed, on_epoch=on_epoch,
                        progress=not args.no_progress)
        live.log_image("curves.png", training_curves({"vae loss (per image)": losses}, "epoch"))
    seconds = time.perf_counter() - start
    save_vae(args.out, vae.cpu(), p, {"dataset": ds.name, "train_images": len(x), "seed": rt.seed})
    write_json(args.timing, {"stage": "train_vae", "dataset": ds.name, "train_seconds": seconds,
                             "machine": machine(x.device)})


if __name__ == "__main__":
    sys.exit(run_stage(main, check=check_file))
