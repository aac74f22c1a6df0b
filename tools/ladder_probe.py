"""Probe the area ladder (explainer/ladder.py) on the bundled photos with EfficientNet-Lite0: per photo, each
rung's area, kept and p_ratio, the chosen rung and the seconds it took, for choosing ``steps`` / ``rung_steps``
of the photo run (issue 29: the ladder should cost about what the fixed 5 % target cost).

    python tools/ladder_probe.py --photos clock coffee chelsea --steps 300 --rung-steps 100 --label r100

Appends one JSON line per call to ``measurements/ladder_probe.jsonl`` (with the machine that ran it); the
recipe is the photo run's (params.yaml ``efficientnet_lite0-photos``) unless overridden here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("measurements/ladder_probe.jsonl",)  # docs/generated.md (none recorded yet)


def main(argv: list[str] | None = None) -> int:
    import torch

    from actmatch.cli import _classifier
    from actmatch.config.base import read_params
    from actmatch.config.explainer import explainer
    from actmatch.core.provenance import machine
    from actmatch.data.sources import photo
    from actmatch.explainer.ladder import explain_ladder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--run", default="efficientnet_lite0-photos")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--rung-steps", type=int)
    ap.add_argument("--rungs", type=float, nargs="+")
    ap.add_argument("--keep-ratio", type=float)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", default=str(ROOT / "measurements/ladder_probe.jsonl"))
    args = ap.parse_args(argv)
    ex = explainer(read_params(ROOT / "params.yaml"))
    run = ex.per_image_run(args.run)
    steps = run.per_image.model_copy(update={k: v for k, v in (("steps", args.steps), ("rung_steps", args.rung_steps),
                                                                ("ladder", args.rungs), ("keep_ratio", args.keep_ratio))
                                             if v is not None})
    clf = _classifier(run.classifier, ROOT / "results/classifiers")
    rows = []
    for name in args.photos:  # one photo at a time: its seconds are its own
        x = clf.preprocess_batch([photo(name)])
        t0 = time.perf_counter()
        res = explain_ladder(clf, x, ex.loss(run.preset), run.unet, steps, run.fill, args.seed,
                             steps.ladder or [None], keep_ratio=steps.keep_ratio, rung_steps=steps.rung_steps,
                             progress=False)
        rec = res.images[0].record(clf.class_names, steps.keep_ratio)
        lad = rec["ladder"]  # optimizer steps: the first rung's, then rung_steps per later rung
        n_steps = steps.steps + (len(lad) - 1) * (steps.rung_steps or steps.steps)
        rows.append({"photo": name, "seconds": round(time.perf_counter() - t0, 1), "optimizer_steps": n_steps, **rec})
        chosen = rec["area_target"] if rec["label_kept"] else None
        print(f"{name:14s} {rows[-1]['seconds']:7.1f} s {n_steps:5d} steps  chosen {chosen}  "
              + "  ".join(f"{r['area_target']}: {r['area']:.3f}/{'K' if r['kept'] else '-'}/{r['p_ratio']:.2f}"
                          for r in rec["ladder"]), flush=True)
    line = {"label": args.label, "seed": args.seed, "steps": steps.model_dump(), "threads": torch.get_num_threads(),
            "machine": machine(), "photos": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
