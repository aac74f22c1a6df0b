"""Paper-scale speed and memory on the device at hand (issue 6, item 6). Writes JSON; asserts nothing.

    python tools/paper_benchmark.py --out measurements/paper_benchmark_h100.json [--classifiers resnet18 vit_b_16]

The paper profile's classifiers at 224 px with random weights (speed does not depend on the
weights, and the GPU machine has no network for the real ones), the paper-size U-Net (widths
32-256), the ``tuned_photos`` loss, random normalized inputs. Rows per classifier and compute
setting (fp32; bf16 + channels_last): amortized training throughput (images/s, second epoch)
and peak memory at batch 64; the per-image regime's seconds per step one image at a time and
with 20 images' U-Nets in one step (explainer.batched), extrapolated to the paper's 880 steps;
and how many hard-mask pixels bf16 changes against fp32 after the same steps.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from actmatch.classifiers.registry import build_classifier
from actmatch.config.explainer import AmortizedParams, StepsParams, UNetParams
from actmatch.check import check_file as load_params
from actmatch.explainer.batched import explain_per_image_batched
from actmatch.explainer.train import Compute, explain_per_image, train_amortized
from actmatch.core.io import write_json

OUTPUTS = ("measurements/paper_benchmark_h100.json",)  # docs/generated.md

__all__ = ["main"]

UNET = UNetParams(widths=[32, 64, 128, 256], bottleneck=512, init_area=0.1)
SETTINGS = {"fp32": Compute(), "bf16+channels_last": Compute("bf16", True)}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _peak_reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(dev: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None


def bench(name: str, dev: torch.device, loss, n_train: int, batch: int, steps: int, chunk: int) -> dict:
    clf = build_classifier(name)
    clf.model.to(dev)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train, 3, clf.input_size, clf.input_size, generator=gen).to(dev)
    out: dict = {}
    masks = {}
    for label, compute in SETTINGS.items():
        compute.module(clf.model)
        row: dict = {}
        _peak_reset(dev)
        stamps: list[float] = []

        def on_epoch(_e: int, _m: dict) -> None:
            _sync(dev)
            stamps.append(time.perf_counter())

        _sync(dev)
        t0 = time.perf_counter()
        train_amortized(clf, x, loss, UNET, AmortizedParams(lr=1e-3, epochs=2, batch_size=batch), "normalized_zero",
                        0, on_epoch=on_epoch, progress=False, compute=compute)
        row["amortized_images_per_s"] = n_train / (stamps[1] - stamps[0])
        row["amortized_first_epoch_s"] = stamps[0] - t0
        row["amortized_peak_gb"] = _peak_gb(dev)
        xs = x[:chunk]
        cfg = StepsParams(lr=5e-5, steps=steps, select="last")
        explain_per_image_batched(clf, xs, loss, UNET, StepsParams(lr=5e-5, steps=2), "normalized_zero", 0,
                                  chunk=chunk, progress=False, compute=compute)  # warm-up (cuDNN autotune)
        _peak_reset(dev)
        _sync(dev)
        t0 = time.perf_counter()
        res = explain_per_image_batched(clf, xs, loss, UNET, cfg, "normalized_zero", 0, chunk=chunk, progress=False,
                                        compute=compute)
        _sync(dev)
        per_step = (time.perf_counter() - t0) / steps
        row["per_image_batched_s_per_step"] = per_step
        row["per_image_batched_images"] = chunk
        row["per_image_batched_peak_gb"] = _peak_gb(dev)
        row["paper_880_steps_s_per_image_batched"] = per_step * 880 / chunk
        masks[label] = res.soft
        explain_per_image(clf, x[:1], loss, UNET, StepsParams(lr=5e-5, steps=2), "normalized_zero", 0,
                          progress=False, compute=compute)  # warm-up: cuDNN autotunes the batch-1 shapes too
        _sync(dev)
        t0 = time.perf_counter()
        explain_per_image(clf, x[:2], loss, UNET, cfg, "normalized_zero", 0, progress=False, compute=compute)
        _sync(dev)
        seq = (time.perf_counter() - t0) / (2 * steps)
        row["per_image_one_at_a_time_s_per_step"] = seq
        row["paper_880_steps_s_per_image_one_at_a_time"] = seq * 880
        row["batched_speedup_per_image"] = seq / (per_step / chunk)
        out[label] = row
        clf.model.to(memory_format=torch.contiguous_format)
    a, b = (masks[k] > 0.5 for k in SETTINGS)
    out["bf16_vs_fp32_hard_mask_agreement"] = float((a == b).float().mean())
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="e.g. measurements/paper_benchmark_<device>.json")
    ap.add_argument("--classifiers", nargs="+", default=["resnet18", "efficientnet_b0", "mobilenet_v3_large", "vit_b_16"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-images", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--chunk", type=int, default=20)
    args = ap.parse_args(argv)
    from actmatch.core.device import resolve_device

    dev = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True
    loss = load_params("params.yaml").explainer.loss("tuned_photos")
    res: dict = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else str(dev),
                 "torch": torch.__version__, "settings": vars(args), "classifiers": {}}
    for name in args.classifiers:
        res["classifiers"][name] = bench(name, dev, loss, args.train_images, args.batch, args.steps, args.chunk)
        r = res["classifiers"][name]
        print(name, {k: {kk: round(vv, 4) if isinstance(vv, float) else vv for kk, vv in v.items()}
                     if isinstance(v, dict) else round(v, 4) for k, v in r.items()}, flush=True)
    write_json(args.out, res)


if __name__ == "__main__":
    main()
