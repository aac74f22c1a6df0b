"""What the figures show, read from ``results/`` (results store masks and maps, not pixels, so the
images come from the dataset): Figure 1's triplets from the first seed of our regime, SyCE/CyCE's and
GLANCE's example rows, the first seed's training curves, and Figure 2's sweep from the ablation's
first seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from actmatch.report.ablations import Variant
from actmatch.classifiers.registry import view_region
from actmatch.images import crop_region
from actmatch.report.paper import SyceExample, CFExample, Example

__all__ = ["image", "seed_dirs", "triplet_examples", "syce_examples", "glance_examples", "training_logs",
           "sweep_rows"]


def image(ds, i: int) -> np.ndarray:
    a = np.asarray(ds.images[i])
    return a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a


def _rows(ds) -> dict[str, int]:
    return {str(k): i for i, k in enumerate(ds.index["id"])}


def seed_dirs(folder: Path) -> list[Path]:
    """``folder/seed<k>/`` sorted by k."""
    return sorted((p for p in folder.glob("seed*") if p.is_dir() and p.name[4:].isdigit()),
                  key=lambda p: int(p.name[4:]))


def triplet_examples(explainers: Path, group: str, ds, n: int,
                     collapsed: dict[str, list[int]] | None = None) -> tuple[str, int, int, list[Example]]:
    """Figure 1: the first ``n`` evaluation images of our amortized regime (else per-image), from its first
    seed that did not collapse (``collapsed``: {regime: seeds}, as Table 1 leaves them out; the first seed
    when all did). Returns the regime, that seed, the number of seeds and the examples."""
    regime = "amortized" if (explainers / group / "amortized").is_dir() else "per_image"
    seeds = seed_dirs(explainers / group / regime)
    if not seeds:
        raise FileNotFoundError(f"no seed folders under {explainers / group / regime}; run the explainer stage")
    dead = set((collapsed or {}).get(regime, []))
    folder = next((f for f in seeds if int(f.name[4:]) not in dead), seeds[0])
    summary = pd.read_csv(folder / "summary.csv", dtype={"id": str})
    summary = summary[summary["regime"] == regime].set_index("id")
    with np.load(folder / "masks.npz") as z:
        ids, hard = [str(i) for i in z["ids"]], z[f"{regime}_hard"]
    clf_name = str(yaml.safe_load((folder / "config.yaml").read_text()).get("classifier", ""))
    row = _rows(ds)
    out = []
    for j, i in enumerate(ids[:n]):
        s = summary.loc[i]
        img = image(ds, row[i])  # shown as the classifier saw it (a centre crop for the ImageNet ones)
        img = crop_region(img, view_region(clf_name, *img.shape[:2]))
        out.append(Example(img, hard[j], str(s["class_name"])[:18],
                           f"area {100 * s['area']:.1f} %\np {s['p_x']:.2f} → {s['p_e']:.2f}"))
    return regime, int(folder.name[4:]), len(seeds), out


def syce_examples(folder: Path, ds, n: int) -> list[SyceExample]:
    """``n`` test images with SyCE/CyCE outputs (every variant in ``folder``), one per predicted class first."""
    found = {}
    for sub in sorted(p for p in folder.iterdir() if (p / "maps.npz").is_file()):
        name = yaml.safe_load((sub / "config.yaml").read_text())["method"]
        with np.load(sub / "maps.npz") as z:
            found[name] = {k: z[k] for k in ("ids", "map", "x_a", "x_st", "c", "t", "flip", "stable")}
    if not found:
        return []
    first = next(iter(found.values()))
    names = ds.class_names or [str(k) for k in range(int(first["c"].max()) + 1)]
    row = _rows(ds)
    # one image per predicted class first (test sets are stored sorted by class), then the rest in order
    order = list(dict.fromkeys([int(np.flatnonzero(first["c"] == c)[0]) for c in np.unique(first["c"])]))
    order += [j for j in range(len(first["ids"])) if j not in order]

    def sq(a: np.ndarray) -> np.ndarray:
        return a[..., 0] if a.shape[-1] == 1 else a

    out = []
    for j in order[:n]:
        panels = {}
        for m, d in found.items():
            caption = f"{'stable' if d['stable'][j] else 'not stable'}, {'flips' if d['flip'][j] else 'no flip'}"
            panels[m] = (sq(d["x_st"][j]), sq(d["x_a"][j]), d["map"][j].astype(np.float32), caption)
        c, t = int(first["c"][j]), int(first["t"][j])
        out.append(SyceExample(image(ds, row[str(first["ids"][j])]), f"{names[c]} → {names[t]}", panels))
    return out


def glance_examples(folder: Path, ds, n: int) -> list[CFExample]:
    """Counterfactual rows: one test image per label first (the sets are stored sorted by class), those
    with a counterfactual before those without."""
    with np.load(folder / "maps.npz") as z:
        d = {k: z[k] for k in z.files}
    names = ds.class_names or [str(k) for k in range(int(d["y"].max()) + 1)]
    nodes = [str(v) for v in d["nodes"]]
    row = _rows(ds)
    found = d["cf_node"] >= 0
    order = [int(np.flatnonzero((d["y"] == c) & found)[0]) for c in np.unique(d["y"][found])]
    order += [j for j in range(len(d["ids"])) if j not in order]
    out = []
    for j in order[:n]:
        k, delta = int(d["effect_node"][j]), float(d["effect_delta"][j])
        what = (f"do({nodes[k]} {delta:+g} SD):\n{names[int(d['y_hat'][j])]} → {names[int(d['cf_label'][j])]}"
                if found[j] else f"no flip; do({nodes[k]} {delta:+g} SD)")
        out.append(CFExample(image(ds, row[str(d["ids"][j])]), d["x_hat"][j], d["x_cf"][j],
                             d["map"][j].astype(np.float32), f"{names[int(d['y'][j])]}\n{what}"))
    return out


def training_logs(live: Path) -> tuple[int | None, dict[str, list[float]]]:
    """The first seed's logged training curves under ``live/seed<k>/`` (dvclive TSVs): (seed, curves)."""
    seeds = seed_dirs(live)
    if not seeds:
        return None, {}
    curves = {}
    for f in sorted(seeds[0].glob("plots/metrics/*/*.tsv")):
        curves[f.stem] = pd.read_csv(f, sep="\t")[f.stem].tolist()
    return int(seeds[0].name[4:]), curves


def sweep_rows(variants: dict[str, Variant], base: str, sweep: dict[str, list[tuple[float, str]]], ds,
               index: int) -> tuple[np.ndarray, str, int, dict[str, list[tuple[str, np.ndarray]]]]:
    """Figure 2: the ``index``-th evaluation image and, per swept term, every variant's hard mask of it
    from the base's first seed (variants without that seed are left out). Returns the image, its id,
    the seed and the rows."""
    seed = variants[base].seeds[0]
    with np.load(variants[base].seed_folder(seed) / "masks.npz") as z:
        img_id = str(z["ids"][index])
    rows: dict[str, list[tuple[str, np.ndarray]]] = {}
    for term, pts in sweep.items():
        items = []
        for w, name in pts:
            v = variants[name]
            if seed not in v.seeds:
                continue
            with np.load(v.seed_folder(seed) / "masks.npz") as z:
                j = [str(i) for i in z["ids"]].index(img_id)
                m = z[f"{name}_hard"][j]
            pi = v.per_image[v.per_image["seed"] == seed].set_index("id").loc[img_id]
            items.append((f"{term} {w:g}: {100 * m.mean():.0f} %{'' if pi['kept'] else ' ✗'}", m))
        if items:
            rows[term] = items
    return image(ds, _rows(ds)[img_id]), img_id, seed, rows
