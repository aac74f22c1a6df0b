"""Speed benchmark, one run, the same images and device for every row (issue: CLI, robustness
and benchmark). Writes JSON; it is not a test and asserts nothing.

    python tools/benchmark.py --out measurements/benchmark.json [--images 8] [--paper-images 2]

Rows: ms per explanation (one image at a time, median) with the label-kept rate and mean area
for the amortized forward pass, finetune (k steps), the paper's per-image regime (its preset,
Adam 5e-5, 880 steps), Extremal Perturbation, RISE, Grad-CAM and Integrated Gradients (those
binarized at the amortized mask's area). Ratios: amortized vs per-image speed; the amortized
training throughput over the classifier's own forward + backward throughput (the floor any such
training pays); per-image steps/s over a straightforward loop that recomputes the original
image's forward pass every step, and the batched per-image regime's image-steps/s (every image's
U-Net in one vmapped step) over the same loop.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from actmatch.baselines import binarize_to_area, build_baseline
from actmatch.classifiers import load_classifier_dir
from actmatch.config.explainer import StepsParams
from actmatch.check import check_file as load_params
from actmatch.data import load_dataset
from actmatch.explainer.api import load_explainer
from actmatch.explainer.batched import explain_per_image_batched
from actmatch.explainer.objective import loss_terms, reference, weighted_total
from actmatch.explainer.outputs import eval_split, train_subset
from actmatch.explainer.train import build_unet, explain_per_image, train_amortized
from actmatch.core.masks import fill_values, soft_mask
from actmatch.core.io import write_json
from actmatch.metrics.cost import measure
from actmatch.metrics.fidelity import fidelity

OUTPUTS = ("measurements/benchmark.json",)  # docs/generated.md

__all__ = ["main", "run_benchmark"]


def _per_explanation(fn: Callable[[int], torch.Tensor], n: int, device: torch.device) -> tuple[float, torch.Tensor]:
    """Median ms of ``fn(i)`` over images 0..n-1, and the stacked hard masks it returned."""
    times, masks = [], []
    for i in range(n):
        m, ms, _ = measure(lambda: fn(i), device)
        times.append(ms)
        masks.append(m.float().cpu())
    return statistics.median(times), torch.cat(masks)


def _naive_steps_per_s(clf, x1, loss, unet, lr, fill, steps: int, seed: int) -> float:
    """A straightforward per-image loop: the original image's forward pass is redone every step."""
    torch.manual_seed(seed)
    net = build_unet(clf, unet).to(x1.device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    b, gen = fill_values(x1, fill, clf.mean, clf.std), torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        ref = reference(clf.model, clf.taps, x1)  # recomputed each step: what we avoid
        total = weighted_total(loss_terms(clf.model, clf.taps, x1, ref, soft_mask(net(x1)), loss, b, gen), loss)
        opt.zero_grad(set_to_none=True)
        total.sum().backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def _floor_images_per_s(clf, x: torch.Tensor, batch: int) -> float:
    """Classifier forward + backward (to the input) alone, over the same batches as training."""
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].clone().requires_grad_(True)
        clf.model(xb).logsumexp(1).sum().backward()
    return len(x) / (time.perf_counter() - t0)


def _unet_images_per_s(net: torch.nn.Module, x: torch.Tensor, batch: int) -> float:
    """The U-Net's own forward + backward over the same batches: the part of training the floor omits."""
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        net(x[i:i + batch]).sum().backward()
    return len(x) / (time.perf_counter() - t0)


def run_benchmark(params_path: str, group: str, results: Path, n_images: int, paper_images: int,
                  train_images: int, device: torch.device) -> dict:
    params = load_params(params_path)
    arun = params.explainer.amortized_runs[group]
    prun = next(r for r in params.explainer.per_image_runs.values() if r.group == group and r.regime == "per_image_paper")
    clf = load_classifier_dir(results / "classifiers" / arun.classifier / "model")
    clf.model.to(device)
    ds = load_dataset(Path("data") / arun.dataset)
    idx = eval_split(ds, n_images, params.data_seed)
    x = clf.preprocess_batch([ds.images[i] for i in idx]).to(device)
    fill, seed = arun.fill, params.seeds[0]
    b = fill_values(x, fill, clf.mean, clf.std)
    y = clf.model(x).argmax(1)
    net, _ = load_explainer(results / "explainers" / group / "amortized" / "explainer.pt", clf)
    net.to(device)
    loss, ploss = params.explainer.loss(arun.preset), params.explainer.loss(prun.preset)
    one = lambda i: slice(i, i + 1)  # noqa: E731
    rows: dict[str, dict] = {}

    def row(name: str, ms: float, hard: torch.Tensor, n: int) -> None:
        f = fidelity(clf.model, x[:n], hard.to(device), b[:n], y[:n])
        rows[name] = {"ms_per_explanation": ms, "label_kept": float(f["kept"].mean()),
                      "mean_area": float(hard.mean()), "n": n}

    with torch.no_grad():
        ms, hard = _per_explanation(lambda i: torch.sigmoid(net(x[one(i)])) > 0.5, n_images, device)
    row("amortized", ms, hard, n_images)
    areas = hard.mean((1, 2, 3)).to(device)
    ft = arun.finetune
    ms, hard = _per_explanation(lambda i: explain_per_image(clf, x[one(i)], loss, arun.unet, ft, fill, seed,
                                                            init_state=net.state_dict(), progress=False).soft > 0.5,
                                n_images, device)
    row(f"finetune_{ft.steps}_steps", ms, hard, n_images)
    ms, hard = _per_explanation(lambda i: explain_per_image(clf, x[one(i)], ploss, prun.unet, prun.per_image, fill,
                                                            seed, progress=False).soft > 0.5, paper_images, device)
    row(f"per_image_paper_{prun.per_image.steps}_steps", ms, hard, paper_images)
    for name in ("extremal", "rise", "gradcam", "integrated_gradients"):
        method = build_baseline(name, **params.evaluate.defaults.baselines.get(name, {}))
        ms, hard = _per_explanation(
            lambda i: binarize_to_area(method.explain(clf.model, x[one(i)], y[one(i)], b[one(i)], areas[one(i)],
                                                      layer=clf.taps[-1]), areas[one(i)], seed), n_images, device)
        row(name, ms, hard, n_images)
    paper = rows[f"per_image_paper_{prun.per_image.steps}_steps"]
    ratios = {"amortized_speedup_over_per_image_paper": paper["ms_per_explanation"] / rows["amortized"]["ms_per_explanation"],
              "amortized_kept_over_per_image_paper_kept": rows["amortized"]["label_kept"] / max(paper["label_kept"], 1e-9)}
    # training throughput against the floor, on the same images and batches
    tr = train_subset(ds, train_images, params.data_seed)  # class-stratified, never the first N
    xt = clf.preprocess_batch([ds.images[i] for i in tr]).to(device)
    one_epoch = arun.amortized.model_copy(update={"epochs": 1})
    t0 = time.perf_counter()
    train_amortized(clf, xt, loss, arun.unet, one_epoch, fill, seed, progress=False)
    train_ips = len(xt) / (time.perf_counter() - t0)
    floor_ips = _floor_images_per_s(clf, xt, one_epoch.batch_size)
    unet_ips = _unet_images_per_s(build_unet(clf, arun.unet).to(device), xt, one_epoch.batch_size)
    # why training sits below the floor: every step also runs the U-Net, a no-grad reference forward, and
    # (rob > 0) the classifier on 1 + len(rob_backgrounds) images per image (method.md §3)
    ratios.update(train_images_per_s=train_ips, floor_images_per_s=floor_ips, train_over_floor=train_ips / floor_ips,
                  unet_images_per_s=unet_ips, unet_cost_over_classifier_cost=floor_ips / unet_ips)
    # per-image steps/s: ours (original forward once), ours batched (every image's U-Net in one
    # vmapped step; image-steps/s) and the straightforward loop; after a warm-up, alternated three
    # times and the median taken, so no side gets the cold start
    k, ours, batched, naive = 50, [], [], []
    steps = StepsParams(lr=1e-3, steps=k, select="last")
    explain_per_image(clf, x[:1], loss, arun.unet, steps.model_copy(update={"steps": 5}), fill, seed, progress=False)
    explain_per_image_batched(clf, x, loss, arun.unet, steps.model_copy(update={"steps": 5}), fill, seed,
                              chunk=len(x), progress=False)
    for _ in range(3):
        t0 = time.perf_counter()
        explain_per_image(clf, x[:1], loss, arun.unet, steps, fill, seed, progress=False)
        ours.append(k / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        explain_per_image_batched(clf, x, loss, arun.unet, steps, fill, seed, chunk=len(x), progress=False)
        batched.append(len(x) * k / (time.perf_counter() - t0))
        naive.append(_naive_steps_per_s(clf, x[:1], loss, arun.unet, 1e-3, fill, k, seed))
    ours_sps, naive_sps, bat_sps = statistics.median(ours), statistics.median(naive), statistics.median(batched)
    ratios.update(per_image_steps_per_s=ours_sps, naive_steps_per_s=naive_sps, per_image_over_naive=ours_sps / naive_sps,
                  per_image_batched_steps_per_s=bat_sps, per_image_batched_over_naive=bat_sps / naive_sps,
                  per_image_batch=len(x))
    return {"device": str(device), "threads": torch.get_num_threads(), "group": group, "classifier": clf.name,
            "images": n_images, "rows": rows, "ratios": ratios,
            "goals": {"amortized_speedup_over_per_image_paper": ">= 1000 at >= 0.9 of its kept rate",
                      "train_over_floor": ">= 0.6", "per_image_over_naive": ">= 1.5",
                      "per_image_batched_over_naive": ">= 1.5"}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="measurements/benchmark.json")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--group", default="mnist_cnn-mnist", help="an amortized run with a per_image_paper run")
    ap.add_argument("--results", default="results")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--paper-images", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=512)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    from actmatch.core.device import resolve_device

    out = run_benchmark(args.params, args.group, Path(args.results), args.images, args.paper_images,
                        args.train_images, resolve_device(args.device))
    write_json(args.out, out)
    print(np.array2string(np.array(list(out["ratios"].values())), precision=3), "->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
