"""Photo recipe probes (issue 19): the per-image regime on the bundled photos with EfficientNet-Lite0
(crop preprocessing), from the tuned_photos preset and the photos run of params.yaml with overrides:

    python tools/photo_probes.py NAME SEEDS PHOTOS [loss.KEY=JSON] [unet.KEY=JSON] [steps.KEY=JSON] [fill=JSON]
        [restarts=R] [--record]
    python tools/photo_probes.py C7 0 camera,chelsea loss.area_target=0.05 steps.area_ramp=10
    python tools/photo_probes.py G8 0,1,2 chelsea,clock,coffee unet.grid=8 --record

Every override is a field of the library's own settings (``LossConfig``, ``UNetParams``, ``StepsParams``),
validated like params.yaml: ``unet.grid=K`` is the U-Net's mask grid (one free value per K×K cell), not a
patch. ``restarts=R`` runs each seed R times (seeds s, s + 1000, …; the first is the plain run) and keeps,
per photo, the restart whose final mask has the lowest objective (the loss decides, not ``kept``).

Prints, per photo, the hard area, whether the label is kept and p_e(y) / p_x(y) (JSON lines); with
``--record`` the rows are also appended to measurements/photo_probes.jsonl as each seed ends, the rows
``tools/probe_table.py`` summarizes (docs/results.md). The classifier's weights are the pipeline's
(results/classifiers/efficientnet_lite0/model/), else fetched once into data/downloads/ (git-ignored)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from actmatch.classifiers.registry import fetch_weights, load_classifier
from actmatch.config.base import read_params
from actmatch.config.explainer import LossConfig, StepsParams, UNetParams, explainer
from actmatch.core.masks import apply_mask, fill_values
from actmatch.data.sources import photo
from actmatch.explainer.train import explain_per_image

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "measurements/photo_probes.jsonl"
OUTPUTS = ("measurements/photo_probes.jsonl",)  # appended with --record (docs/generated.md)
WEIGHTS = (ROOT / "results/classifiers/efficientnet_lite0/model/weights.pth",
           ROOT / "data/downloads/efficientnet_lite0.pth")  # the pipeline's copy, else a project-local fetch


def settings(over: dict[str, str]) -> tuple[LossConfig, UNetParams, StepsParams, str]:
    """The photos run's settings with ``over`` (``loss.a.b``, ``unet.k``, ``steps.k``, ``fill``; JSON values)."""
    ex = explainer(read_params(ROOT / "params.yaml"))
    run = ex.per_image_run("efficientnet_lite0-photos")
    parts = {"loss": ex.loss("tuned_photos").model_dump(), "unet": run.unet.model_dump(),
             "steps": run.per_image.model_dump()}
    fill = run.fill
    for key, raw in over.items():
        value = json.loads(raw)
        if key == "fill":
            fill = value
            continue
        head, _, path = key.partition(".")
        if head not in parts or not path:
            raise SystemExit(f"unknown override {key!r}: loss.KEY, unet.KEY, steps.KEY or fill")
        node = parts[head]
        *inner, last = path.split(".")
        for p in inner:
            node = node[p]
        node[last] = value
    return (LossConfig.model_validate(parts["loss"]), UNetParams.model_validate(parts["unet"]),
            StepsParams.model_validate(parts["steps"]), fill)


def weights() -> Path:
    if WEIGHTS[0].is_file():
        return WEIGHTS[0]
    if not WEIGHTS[1].is_file():
        WEIGHTS[1].parent.mkdir(parents=True, exist_ok=True)
        fetch_weights("efficientnet_lite0", WEIGHTS[1])  # sha256-checked, atomic
    return WEIGHTS[1]


def main(argv: list[str]) -> int:
    torch.set_num_threads(2)
    record = "--record" in argv
    argv = [a for a in argv if a != "--record"]
    name, seeds, photos = argv[0], [int(s) for s in argv[1].split(",")], argv[2].split(",")
    over = dict(a.split("=", 1) for a in argv[3:])
    restarts = int(json.loads(over.pop("restarts", "1")))
    loss, unet, st, fill = settings(over)
    clf = load_classifier("efficientnet_lite0", weights())
    x = clf.preprocess_batch([photo(p) for p in photos])
    for seed in seeds:
        t0 = time.time()
        runs = [explain_per_image(clf, x, loss, unet, st, fill, seed + 1000 * r, progress=False) for r in range(restarts)]
        best = np.argmin(np.stack([r.final["total"] for r in runs]), axis=0)  # per photo: the lowest final objective
        res = runs[0]
        if restarts > 1:
            res.soft = torch.stack([runs[int(k)].soft[i] for i, k in enumerate(best)])
            res.last = None
        with torch.no_grad():
            hard = (res.soft > 0.5).float()
            zx, ze = clf(x), clf(apply_mask(x, hard, fill_values(x, fill, clf.mean, clf.std)))
            y = zx.argmax(1)
            px, pe = (z.softmax(1).gather(1, y[:, None])[:, 0] for z in (zx, ze))
            lastarea = (res.last > 0.5).float().mean((1, 2, 3)) if res.last is not None else None
        rows = [{"cfg": name, "seed": seed, "photo": p, "area": round(float(hard[i].mean()), 4),
                 "kept": int(ze[i].argmax() == y[i]), "p_ratio": round(float(pe[i] / px[i]), 3),
                 "last_area": None if lastarea is None else round(float(lastarea[i]), 4),
                 "settings": " ".join(argv[3:]) or "the photos run as in params.yaml",
                 **({"restart": int(best[i])} if restarts > 1 else {})} for i, p in enumerate(photos)]
        print(f"{name} seed {seed}: {time.time() - t0:.0f}s", flush=True)
        for r in rows:  # each seed's rows as soon as it ends (a long probe can be stopped)
            print(json.dumps(r, sort_keys=True), flush=True)
        if record:
            with RECORD.open("a") as fh:
                fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
