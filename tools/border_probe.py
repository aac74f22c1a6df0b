"""Where does the top-border strip in the photo masks come from (issue 29)? Three experiments on the bundled
photos with EfficientNet-Lite0 and the blur fill (σ = 10 px at 224 px), forward passes only:

1. the classifier on the fill with one strip of the photo kept sharp — along the top, bottom, left or right
   border, or a band of the same area through the middle — against the fill alone (the null explanation), with
   the blur's border handled three ways (torchvision's reflect padding, the default; replicate; and a blur of the
   photo with its true surroundings, computed on the uncropped photo before the centre crop);
2. how far the fill is from the photo near each border, per blur: mean |x − blur(x)| in the outer 8 rows or
   columns against the interior;
3. the mask U-Net (the photo run's architecture, fresh weights, seeds 0-2, zero and reflect padding) on a
   constant image: how far its logits at the border rows and columns differ from the interior;
4. (``--optimize NAME:SEED``) the photo recipe at its fixed 5 % target (no ladder), with the U-Net's zero padding
   and with reflect padding: how much of each hard mask lies in the outer 8-pixel band of the image (13.8 %
   of its pixels), with the mask's area, kept and p_ratio.

    python tools/border_probe.py --photos moon clock rocket coffee camera chelsea --optimize moon:1 clock:2

Writes ``measurements/border_probe.json`` (with the machine) and prints the tables."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("measurements/border_probe.json", "measurements/border_probe_nine.json")  # docs/generated.md
SIGMA = 10.0


def _blur(x, mode: str):
    import torch.nn.functional as F
    from torchvision.transforms.v2.functional import gaussian_blur

    k = int(2 * round(3 * SIGMA) + 1)
    if mode == "reflect":  # torchvision's own padding: what core/masks.fill_values does
        return gaussian_blur(x, [k, k], [SIGMA, SIGMA])
    pad = k // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    return gaussian_blur(padded, [k, k], [SIGMA, SIGMA])[..., pad:-pad, pad:-pad]


def _uncropped_blur(clf, image):
    """The blur of the whole photo (true surroundings) in the classifier's normalized space, then the crop."""
    import torch
    import torchvision.transforms.v2.functional as TF

    from actmatch.classifiers.registry import _crop_resized_hw

    s = clf.input_size
    x = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255.0
    x = TF.resize(x, list(_crop_resized_hw(s, *x.shape[1:])), antialias=True)
    mean, std = torch.tensor(clf.mean).view(-1, 1, 1), torch.tensor(clf.std).view(-1, 1, 1)
    full = ((x - mean) / std)[None]
    return TF.center_crop(_blur(full, "reflect"), [s, s])


def _strips(size: int, h: int):
    import torch

    out = {}
    for name in ("top", "bottom", "left", "right", "middle"):
        m = torch.zeros(1, 1, size, size)
        if name == "top":
            m[..., :h, :] = 1
        elif name == "bottom":
            m[..., -h:, :] = 1
        elif name == "left":
            m[..., :, :h] = 1
        elif name == "right":
            m[..., :, -h:] = 1
        else:
            m[..., (size - h) // 2:(size - h) // 2 + h, :] = 1
        out[name] = m
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from actmatch.cli import _classifier
    from actmatch.config.base import read_params
    from actmatch.config.explainer import explainer
    from actmatch.core.masks import apply_mask
    from actmatch.core.provenance import machine
    from actmatch.data.sources import photo
    from actmatch.explainer.ladder import judge
    from actmatch.explainer.train import build_unet, explain_per_image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--heights", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--optimize", nargs="*", default=[],
                    help="NAME:SEED pairs to run experiment 4 on (the pipeline's seed-0 run gives image i seed i)")
    ap.add_argument("--steps", type=int, help="steps of experiment 4 (default: the photo run's)")
    ap.add_argument("--out", default=str(ROOT / "measurements/border_probe.json"))
    args = ap.parse_args(argv)
    run = explainer(read_params(ROOT / "params.yaml")).per_image_run("efficientnet_lite0-photos")
    clf = _classifier(run.classifier, ROOT / "results/classifiers")
    s = clf.input_size
    result = {"sigma": SIGMA, "machine": machine(), "strips": [], "fill_gap": [], "unet_constant": [], "optimized": []}
    with torch.no_grad():
        for name in args.photos:
            image = photo(name)
            x = clf.preprocess_batch([image])
            px = clf(x).softmax(1)[0]
            y = int(px.argmax())
            fills = {"reflect": _blur(x, "reflect"), "replicate": _blur(x, "replicate"),
                     "uncropped": _uncropped_blur(clf, image)}
            for blur, fill in fills.items():
                pn = clf(fill).softmax(1)[0]
                row = {"photo": name, "class": clf.class_names[y], "p_x": round(float(px[y]), 4), "blur": blur,
                       "null": round(float(pn[y]) / float(px[y]), 4), "null_top1": clf.class_names[int(pn.argmax())]}
                for h in args.heights:
                    for where, m in _strips(s, h).items():
                        pe = clf(apply_mask(x, m, fill)).softmax(1)[0]
                        row[f"{where}{h}"] = round(float(pe[y]) / float(px[y]), 4)
                result["strips"].append(row)
                gap = (x - fill).abs().mean(1)[0]  # (S, S)
                b = 8
                inner = float(gap[b:-b, b:-b].mean())
                result["fill_gap"].append({"photo": name, "blur": blur, "interior": round(inner, 4), **{
                    side: round(float(v.mean()) / inner, 3) for side, v in (
                        ("top", gap[:b]), ("bottom", gap[-b:]), ("left", gap[:, :b]), ("right", gap[:, -b:]))}})
        for seed, padding in [(k, p) for p in ("zeros", "reflect") for k in range(3)]:
            torch.manual_seed(seed)
            net = build_unet(clf, run.unet.model_copy(update={"padding": padding}))
            z = net(torch.zeros(1, 3, s, s))[0, 0]
            inner = z[8:-8, 8:-8]
            spread = float(inner.std()) + 1e-6  # reflect: a constant image gives constant logits (spread 0)
            result["unet_constant"].append({"seed": seed, "padding": padding, "interior_std": round(spread, 6), **{
                side: round(float((v - inner.mean()).abs().mean()) / spread, 2) for side, v in (
                    ("top_row", z[0]), ("bottom_row", z[-1]), ("left_col", z[:, 0]), ("right_col", z[:, -1]))}})
    steps = run.per_image.model_copy(update={"ladder": None, **({"steps": args.steps} if args.steps else {})})
    loss = explainer(read_params(ROOT / "params.yaml")).loss(run.preset)
    band = torch.ones(s, s, dtype=torch.bool)
    band[8:-8, 8:-8] = False
    for pair in args.optimize:
        name, seed = pair.split(":")
        x = clf.preprocess_batch([photo(name)])
        for padding in ("zeros", "reflect"):
            res = explain_per_image(clf, x, loss, run.unet.model_copy(update={"padding": padding}), steps, run.fill,
                                    int(seed), progress=False)
            hard = res.soft[0, 0] > 0.5
            [im] = judge(clf, x, res.soft, run.fill, steps.keep_ratio, loss.area_target)
            result["optimized"].append({
                "photo": name, "seed": int(seed), "padding": padding, "steps": steps.steps,
                "area": round(float(hard.float().mean()), 4),
                "kept": im.rungs[0].kept, "p_ratio": round(im.rungs[0].p_ratio, 4), "trivial": im.trivial,
                "in_border_band": round(float((hard & band).sum()) / max(1, int(hard.sum())), 3),
                "band_share": round(float(band.float().mean()), 3)})
            print(result["optimized"][-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print("p_e(y)/p_x(y) with one strip of the photo kept sharp on the fill (null: the fill alone)")
        print(pd.DataFrame(result["strips"]).to_string(index=False))
        print("\nmean |x - fill| near each border / interior")
        print(pd.DataFrame(result["fill_gap"]).to_string(index=False))
        print("\nfresh U-Net on a constant image: |border logit - interior mean| / interior std")
        print(pd.DataFrame(result["unet_constant"]).to_string(index=False))
        if result["optimized"]:
            print("\nthe photo recipe at 5 %: share of the hard mask in the outer 8-pixel band")
            print(pd.DataFrame(result["optimized"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
