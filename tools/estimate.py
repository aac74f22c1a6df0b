"""Paper-scale cost estimates from FLOP counts (issue 6, item 6). Writes JSON; asserts nothing.

    python tools/estimate.py --out measurements/paper_estimate.json [--gpu-tflops 50]

No GPU was lent to this project, so the README's per-stage times at paper scale are *estimates*:
FLOPs counted exactly with ``torch.utils.flop_counter.FlopCounterMode`` (the architectures run
with random weights; no download), activation memory as the bytes of every module output kept
for the backward pass (hooks; an upper bound, since in-place ops share storage), and times as
FLOPs / an assumed sustained GPU rate (``--gpu-tflops``, default 50 TFLOP/s, about 5 % of an
H100's dense bf16 peak: ResNet-50 training sustains ≈ 80 TFLOP/s there, and thin full-resolution
U-Net layers are memory-bound, so less). Image decoding and Python overhead are not counted. The same
count for the photos run, divided by its measured seconds per step on this CPU, calibrates the
CPU's sustained rate, which is reported beside it.

Per-step model of one image (method.md §3-4): U-Net forward + backward (3× forward); the
classifier on the masked image and the three rob backgrounds, forward + backward to the input
(3× forward, batched as 4 images); the reference forward is computed once per image.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from actmatch.classifiers.registry import get_spec
from actmatch.check import check_file as load_params
from actmatch.explainer.unet import UNet
from actmatch.core.io import write_json

OUTPUTS = ("measurements/paper_estimate.json",)  # docs/generated.md

__all__ = ["forward_flops", "activation_bytes", "estimate", "main"]

CLASSIFIERS = ("resnet18", "efficientnet_b0", "mobilenet_v3_large", "vit_b_16")
IMAGENETTE_TRAIN, EVAL_IMAGES, PER_IMAGE_IMAGES = 9469, 500, 20
# classifier forward-equivalents per evaluated image, from params.yaml's evaluate defaults:
# RISE 500 masks, Extremal 150 steps × (fwd + bwd), IG 32 × (fwd + bwd), Occlusion ≈ 15 × 15 windows,
# insertion/deletion 2 × 51 points, p* 7 budgets, perturbation 3 kinds × 5 draws, Grad-CAM(++) 2 × 3
EVAL_FWD_PER_IMAGE = 500 + 150 * 3 + 32 * 3 + 225 + 102 + 7 + 15 + 6


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs (multiply-add = 2) of one forward pass, counted by PyTorch's own counter."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def activation_bytes(model: nn.Module, x: torch.Tensor, bytes_per_value: int = 4) -> int:
    """Sum of every leaf module's output size in one forward: what autograd keeps for backward."""
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if torch.is_tensor(t):
                total += t.numel() * bytes_per_value

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def _unet(widths: Sequence[int], bottleneck: int) -> UNet:
    return UNet(3, list(widths), bottleneck, 0.1)


def estimate(gpu_tflops: float = 50.0, cpu_photos_s_per_step: float | None = None) -> dict:
    x = torch.zeros(1, 3, 224, 224)
    paper_unet, small_unet = _unet([32, 64, 128, 256], 512), _unet([16, 32, 64, 128], 256)
    u_paper, u_small = forward_flops(paper_unet, x), forward_flops(small_unet, x)
    rate = gpu_tflops * 1e12
    out: dict = {"assumed_gpu_tflops": gpu_tflops, "unet_paper_fwd_gflops": u_paper / 1e9,
                 "unet_small_fwd_gflops": u_small / 1e9,
                 "unet_paper_activation_mb_per_image": activation_bytes(paper_unet, x) / 2**20,
                 "classifiers": {}}
    for name in CLASSIFIERS:
        model = get_spec(name).build().eval()
        c = forward_flops(model, x)
        step_paper = 3 * u_paper + 4 * 3 * c  # U-Net fwd+bwd, classifier fwd+bwd on 4 images (paper widths,
        step_small = 3 * u_small + 4 * 3 * c  # also the amortized runs' U-Net); the tuned per-image U-Net
        stages = {
            "train_explainer (10 epochs × 9,469 + 50 finetune steps × 500)":
                (10 * IMAGENETTE_TRAIN * step_paper + IMAGENETTE_TRAIN * c + 50 * EVAL_IMAGES * step_paper),
            "explain_images paper (880 steps × 20)": 880 * PER_IMAGE_IMAGES * step_paper,
            "explain_images tuned (150 steps × 20)": 150 * PER_IMAGE_IMAGES * step_small,
            "evaluate (500 images, 8 baselines + metrics)": EVAL_IMAGES * EVAL_FWD_PER_IMAGE * c,
        }
        act = activation_bytes(model, x)
        out["classifiers"][name] = {
            "fwd_gflops": c / 1e9,
            "activation_mb_per_image_fp32": act / 2**20,
            # a training step holds U-Net + 4 classifier passes' activations per image; bf16 halves it
            "train_step_memory_gb_batch64_bf16": 64 * (activation_bytes(paper_unet, x, 2) + 4 * act / 2) / 2**30,
            "stage_pflops": {k: v / 1e15 for k, v in stages.items()},
            "stage_minutes_estimated": {k: v / rate / 60 for k, v in stages.items()},
        }
    lite = get_spec("efficientnet_lite0").build().eval()
    step_photos = 3 * u_small + 4 * 3 * forward_flops(lite, x)
    out["photos_step_gflops"] = step_photos / 1e9
    if cpu_photos_s_per_step:
        out["cpu_measured_photos_s_per_step"] = cpu_photos_s_per_step
        out["cpu_sustained_gflops"] = step_photos / cpu_photos_s_per_step / 1e9
    return out


def _photos_s_per_step(root: Path) -> float | None:
    """The photos per-image run's measured seconds per step on this machine, if it has run."""
    import json

    import statistics

    timing = root / "results/timing/explain_images/efficientnet_lite0-photos.json"  # the stage's own timing
    if not timing.is_file():
        return None
    steps = load_params(root / "params.yaml").explainer.per_image_runs["efficientnet_lite0-photos"].per_image.steps
    seeds = json.loads(timing.read_text())["seeds"].values()
    return statistics.median(s["ms_per_image"] for s in seeds) / 1000 / steps


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="measurements/paper_estimate.json")
    ap.add_argument("--gpu-tflops", type=float, default=50.0)
    args = ap.parse_args(argv)
    res = estimate(args.gpu_tflops, _photos_s_per_step(Path(".")))
    write_json(args.out, res)
    for name, r in res["classifiers"].items():
        mins = ", ".join(f"{k.split(' (')[0]} {v:.1f} min" for k, v in r["stage_minutes_estimated"].items())
        print(f"{name}: fwd {r['fwd_gflops']:.2f} GFLOP; {mins}")
    if "cpu_sustained_gflops" in res:
        print(f"this CPU sustains {res['cpu_sustained_gflops']:.1f} GFLOP/s on the photos run "
              f"({math.ceil(res['assumed_gpu_tflops'] * 1e3 / res['cpu_sustained_gflops'])}× less than the assumed GPU)")


if __name__ == "__main__":
    main()
