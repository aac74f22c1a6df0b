"""Photo recipe probes (issue 19): the per-image regime on the bundled photos with EfficientNet-Lite0
(crop preprocessing), from the tuned_photos preset and the photos run of params.yaml with overrides:

    python tools/photo_probes.py NAME SEEDS PHOTOS [loss.KEY=JSON] [unet.KEY=JSON] [steps.KEY=JSON] [fill=JSON] [grid=K]
    python tools/photo_probes.py C7 0 camera,chelsea loss.area_target=0.05 steps.area_ramp=10 >> probes.log

``restarts=R`` runs each seed R times (seeds s, s + 1000, …; the first is the plain run) and keeps, per
photo, the restart whose final mask has the lowest objective (the loss decides, not ``kept``).
``grid=K`` probes a coarser mask grid without touching the library: the U-Net's logits are averaged over
K×K cells and upsampled bilinearly back to the image (the mask has (H/K)·(W/K) free values).

Prints, per photo, the hard area, whether the label is kept and p_e(y) / p_x(y) (JSON lines). The probes
that chose the recipe, with their settings, are in measurements/photo_probes.jsonl (docs/results.md)."""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from actmatch.classifiers.registry import load_classifier, fetch_weights
from actmatch.config.explainer import LossConfig, StepsParams, UNetParams
from actmatch.config.base import read_params, deep_merge
from actmatch.config.explainer import explainer
from actmatch.core.masks import fill_values, apply_mask
from actmatch.data.sources import photo
from actmatch.explainer.train import explain_per_image

torch.set_num_threads(2)
name, seeds, photos = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], sys.argv[3].split(",")
over = dict(a.split("=", 1) for a in sys.argv[4:])
GRID = int(json.loads(over.pop("grid", "1")))
RESTARTS = int(json.loads(over.pop("restarts", "1")))
if GRID > 1:  # a probe-only coarser mask grid (see the docstring); UNet.forward wrapped in this process
    import torch.nn.functional as F
    from actmatch.explainer import unet as _unet
    _forward = _unet.UNet.forward

    def _coarse(self, x):
        z = _forward(self, x)
        return F.interpolate(F.avg_pool2d(z, GRID, ceil_mode=True), size=z.shape[-2:], mode="bilinear",
                             align_corners=False)
    _unet.UNet.forward = _coarse
w = Path(__file__).resolve().parents[1] / "results/classifiers/efficientnet_lite0/model/weights.pth"
if not w.exists():  # outside a pipeline checkout: fetch the pinned weights
    w = Path("/tmp/efficientnet_lite0.pth")
    if not w.exists():
        fetch_weights("efficientnet_lite0", w)
clf = load_classifier("efficientnet_lite0", w)
ex = explainer(read_params(Path(__file__).resolve().parents[1] / "params.yaml"))
base = ex.loss("tuned_photos").model_dump()
run = ex.per_image_run("efficientnet_lite0-photos")
unet = run.unet.model_dump(); steps = run.per_image.model_dump(); fill = run.fill
for k, v in over.items():
    v = json.loads(v)
    if k.startswith("loss."): 
        d = base
        parts = k[5:].split(".")
        for p in parts[:-1]: d = d[p]
        d[parts[-1]] = v
    elif k.startswith("unet."): unet[k[5:]] = v
    elif k.startswith("steps."): steps[k[6:]] = v
    elif k == "fill": fill = v
loss = LossConfig.model_validate(base); unet = UNetParams.model_validate(unet); st = StepsParams.model_validate(steps)
x = clf.preprocess_batch([photo(p) for p in photos])
rows = []
for seed in seeds:
    t0 = time.time()
    runs = [explain_per_image(clf, x, loss, unet, st, fill, seed + 1000 * r, progress=False) for r in range(RESTARTS)]
    best = np.argmin(np.stack([r.final["total"] for r in runs]), axis=0)  # per photo: the lowest final objective
    res = runs[0]
    if RESTARTS > 1:
        res.soft = torch.stack([runs[int(k)].soft[i] for i, k in enumerate(best)])
        res.last = None
    dt = time.time() - t0
    with torch.no_grad():
        b = fill_values(x, fill, clf.mean, clf.std)
        hard = (res.soft > 0.5).float()
        zx, ze = clf(x), clf(apply_mask(x, hard, b))
        y = zx.argmax(1)
        px = zx.softmax(1).gather(1, y[:, None])[:, 0]; pe = ze.softmax(1).gather(1, y[:, None])[:, 0]
        lastarea = (res.last > 0.5).float().mean((1, 2, 3)) if res.last is not None else None
    for i, p in enumerate(photos):
        rows.append({"cfg": name, "seed": seed, "photo": p, "area": round(float(hard[i].mean()), 4),
                     "kept": int(ze[i].argmax() == y[i]), "p_ratio": round(float(pe[i] / px[i]), 3),
                     "last_area": None if lastarea is None else round(float(lastarea[i]), 4),
                     **({"restart": int(best[i])} if RESTARTS > 1 else {})})
    print(f"{name} seed {seed}: {dt:.0f}s", flush=True)
    for r in rows[-len(photos):]:  # each seed's rows as soon as it ends (a long probe can be stopped)
        print(json.dumps(r), flush=True)
