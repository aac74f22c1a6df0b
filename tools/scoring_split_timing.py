"""Timing of the evaluation's scoring before and after issue 27's split (one run, interleaved repeats,
the same inputs for every row). Writes JSON; it is not a test and asserts nothing.

    python tools/scoring_split_timing.py --out measurements/scoring_split.json [--images 200] [--repeats 3]

A random-weight classifier of each small architecture at its pipeline input size (the numbers are
wall times, not results), random soft maps, hard masks at ~5 % of the pixels. Rows per architecture:

* ``old_per_map``: one map scored as before (:func:`score_soft` and :func:`score_hard` each left to
  compute f(x) themselves: the unmasked forward pass four times, as the old ``score_masks`` did);
* ``new_per_map``: :func:`score_masks` with one shared clean pass;
* ``baseline_old``: a baseline scored once, at the first seed's areas (before issue 27);
* ``baseline_new_k``: a baseline ranked once and binarized at k seeds' areas (after; k = 3, ``seeds``);
  the extra cost of scoring every baseline at every seed, the saliency itself excluded (computed once
  either way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from actmatch.classifiers.small import build_small
from actmatch.core.io import write_json
from actmatch.core.provenance import machine
from actmatch.metrics.suite import ScoreSettings, clean_pass, combine, score_hard, score_masks, score_soft

OUTPUTS = ("measurements/scoring_split.json",)  # docs/generated.md
ARCHS = {"mnist_cnn": (1, 28, 10, ("block1", "block2", "block3")), "lenet": (1, 28, 2, ("block1", "block2", "block3")),
         "small_resnet": (1, 64, 10, ("stem", "layer1", "layer2", "layer3"))}


def _taps(model: torch.nn.Module, wanted: tuple[str, ...]) -> list[str]:
    names = [n for n, _ in model.named_modules() if n]
    found = [n for n in wanted if n in names]
    return found or [names[0]]


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="measurements/scoring_split.json")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = ScoreSettings(batch_size=128, curve_steps=50, perturb_draws=5, max_pieces=16, seed=0, mean=(0.13,),
                        std=(0.31,))
    rows = {}
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # a shared machine: say how loaded
    for arch, (ch, size, classes, wanted) in ARCHS.items():
        model = build_small(arch, ch, size, classes).eval()
        taps = _taps(model, wanted)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(args.images, ch, size, size, generator=g)
        soft = torch.rand(args.images, 1, size, size, generator=g)
        hards = [(soft > 0.95 - 0.01 * k).float() for k in range(args.seeds)]
        base, blurred = torch.full_like(x, -0.42), x * 0.5
        with torch.no_grad():
            y = model(x).argmax(1)

        def old_map() -> None:  # every metric computes f(x) itself
            combine(score_hard(model, taps, x, y, hards[0], base, cfg), score_soft(model, x, y, soft, base, blurred,
                                                                                    cfg)[0])

        def new_map() -> None:
            score_masks(model, taps, x, y, soft, hards[0], base, blurred, cfg)

        def baseline_new() -> None:
            clean = clean_pass(model, taps, x, cfg)
            soft_cols, _ = score_soft(model, x, y, soft, base, blurred, cfg, clean)
            for h in hards:
                combine(score_hard(model, taps, x, y, h, base, cfg, clean), soft_cols)

        times: dict[str, list[float]] = {"old_per_map": [], "new_per_map": [], f"baseline_new_{args.seeds}": []}
        for _ in range(args.repeats):  # interleaved, so a load change on the machine hits every row alike
            times["old_per_map"].append(_time(old_map))
            times["new_per_map"].append(_time(new_map))
            times[f"baseline_new_{args.seeds}"].append(_time(baseline_new))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows[arch] = {"input": [ch, size, size], "images": args.images, "seconds": times, "median_seconds": med,
                      "new_over_old_per_map": med["new_per_map"] / med["old_per_map"],
                      "baseline_new_over_old": med[f"baseline_new_{args.seeds}"] / med["old_per_map"]}
        print(arch, {k: round(v, 3) for k, v in med.items()})
    write_json(Path(args.out), {"tool": "tools/scoring_split_timing.py", "machine": machine("cpu"),
                                "repeats": args.repeats, "seeds": args.seeds, "rows": rows,
                                "load_average_1min": [load_start, os.getloadavg()[0] if hasattr(os, "getloadavg")
                                                      else None],
                                "note": "baseline_old equals old_per_map (one binarization, every metric)"})


if __name__ == "__main__":
    main()
