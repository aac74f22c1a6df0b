"""What every table says about itself (rows, n, seeds, selection rule, columns, source file), the
order groups are read in, and the headline paragraph, all phrased from the stored numbers: no number
in the report's text is typed by hand (the thresholds below are reading rules, stated where used)."""

from __future__ import annotations

import numpy as np

from actmatch.report.tables import KEPT_HIGH, LOW_RATIO, live_seeds, ordered, ratio_stats, seeds_all_collapsed

__all__ = ["CLAIM_AREA", "TABLE1_COLUMNS", "TABLE2_COLUMNS", "SYCE_COLUMN_DEFS", "GLANCE_COLUMN_DEFS",
           "reading_order", "group_title", "is_small", "table1_caption", "table2_caption", "headline_sentences"]

CLAIM_AREA = 0.05  # the paper: "about 2–5 % of pixels kept", label preserved
SMALL_N = 30       # below this many images a group's intervals are examples, not estimates
DATASET_RANK = {"mnist": 0, "mnist_3v8": 1, "cluttered_mnist": 2}

CELL = ("mean over the non-collapsed seeds of each seed's mean over images ± sd across those seeds "
        "(min–max across seeds) [95 % bootstrap interval over images of the per-image means over seeds]; "
        "one run: mean [interval]")
TABLE1_COLUMNS: dict[str, str] = {
    "method": "`ours:<regime>` our explainer regimes; baselines (binarized per image to the area of the "
              "match-area regime); controls `random` and `centre` (same area); other frameworks. "
              "\"(selected on kept)\": per image the smallest hard mask that kept the label among the steps "
              "tried; \"(last mask)\": the same run's final mask, no selection",
    "seeds": "training seeds run (1 for methods with no seed of ours)",
    "collapsed": "seeds whose hard masks are all empty or all full on ≥ 95 % of images; left out of every "
                 "number (a row with every seed collapsed says \"collapsed\")",
    "n": "images scored",
    "top-1 kept": "share of images with f(m ⊙ x) = f(x); cell: " + CELL,
    "p_ratio med.": "median over every (non-collapsed seed, image) pair of p_e(y) / p_x(y), the confidence "
                    "retention (`per_image.csv`)",
    "p_ratio ≥ 0.5": "share of those pairs keeping at least half of p_x(y) (`per_image.csv`)",
    "flag": f"⚠ where top-1 kept ≥ {KEPT_HIGH:g} but p_ratio < {LOW_RATIO:g} on more than half of the pairs: "
            "the label survives with little of its confidence",
    "area": "mean of the hard mask (share of pixels kept); same cell",
    "compl. flip": "label lost on the complement (1 − m) ⊙ x; same cell",
    "ins. AUC": "insertion AUC (from a blurred image, ranked by the soft mask); same cell",
    "del. AUC": "deletion AUC; same cell",
    "act. sim.": "mean cosine similarity of the tapped activations of e and x; same cell",
    "p*": "smallest top-k budget of the soft mask that keeps the label; same cell",
    "pointing": "maximum of the soft map inside the ground-truth box; same cell",
    "IoU": "IoU of the hard mask with the box; same cell",
    "ms / expl.": "median milliseconds per explanation (ours: the explain stage's own time, median over seeds, "
                  "`results/timing/`; a _last row shares its regime's; the others: `cost.json`)",
}
TABLE2_COLUMNS: dict[str, str] = {
    "variant": "a loss overlay on the ablated run's preset; the base is the reference row",
    "seeds": "training seeds run",
    "collapsed": "seeds whose hard masks are all empty or all full on ≥ 95 % of images; left out",
    "n": "held-out images (the same for every variant and seed)",
    "area target": "the area the area term aimed at (the base's median hard area); in the equal-area table "
                   "every row's hard masks are the top that fraction of its soft mask's pixels, so `area` is "
                   "the target by construction",
    "area_own": "equal-area table: the area of the row's own binarization (soft > 0.5), which decides "
                "collapse; how far the target alone got the training",
    "<metric>": "mean over the non-collapsed seeds of each seed's mean over images ± sd across seeds",
    "Δ <metric>": "variant − base per paired seed (seed k with seed k, both non-collapsed) over the shared "
                  "images, mean ± sd across those seeds",
    "p_Holm <metric>": "two-sided Wilcoxon signed-rank test (scipy) over images of the per-image differences "
                       "averaged over the paired seeds, Holm-corrected across the variants tested",
}
SYCE_COLUMN_DEFS: dict[str, str] = {
    "flip": "share of adversarial images x_a the classifier labels otherwise (the authors' metric)",
    "hit target": "share of x_a labelled as the target class", "stable": "share of similar images x_st "
    "labelled like the input", "L1": "mean ‖x − x_a‖₁ per pixel",
    "FD adv. / FD similar": "Fréchet distance of x_a / x_st to the real test images in a small VAE's embedding",
    "JS adv. / JS similar": "Jensen–Shannon distance, same embedding",
    "epochs (best / run)": "epoch kept by the early stop / epochs run", "train min": "training minutes",
}
GLANCE_COLUMN_DEFS: dict[str, str] = {
    "fidelity": "surrogate's top-1 agreement with the classifier on the test digits",
    "R² <feature>": "alignment of each aligned latent with its standardized context feature",
    "SHD / precision / recall": "recovery of the known graph (controlled digits only); \"(drawn)\": on the "
                                "drawn causes, a check of the graph learner",
    "edges": "edges in the learned graph", "CF found": "share of test digits with a flipping intervention",
    "CF median |δ|": "median size (SDs) of the smallest flipping intervention", "train min": "training minutes",
}


def _rank(settings: dict) -> int:
    ds = str(settings.get("dataset", ""))
    return DATASET_RANK.get(ds, 3 if "mnist" in ds else 4)


def reading_order(settings: dict[str, dict]) -> list[str]:
    """Groups as a reader meets them: MNIST, the binary 3-vs-8, cluttered MNIST, other digit sets,
    then the photos; by name within a rank."""
    return sorted(settings, key=lambda g: (_rank(settings[g]), g))


def is_small(settings: dict) -> bool:
    """A photo group of a handful of images: its n is the number of photos."""
    return _rank(settings) == 4 and int(settings.get("n_images", 0)) < SMALL_N


def group_title(settings: dict) -> str:
    title = f"{settings['classifier']} on {settings['dataset']}"
    if is_small(settings):
        title += f" (n = number of photos, {settings['n_images']}: tiny)"
    return title


def table1_caption(group: str, metrics: dict) -> str:
    st, methods = metrics["settings"], metrics["methods"]
    ours = {m: e for m, e in methods.items() if m.startswith("ours:")}
    seeds = sorted({int(e.get("seeds", 1)) for e in ours.values()})
    sel = [m for m in ordered(list(methods)) if methods[m].get("selected_on_kept")]
    text = (f"Table 1, {st['classifier']} on {st['dataset']}: one row per method, n = {st['n_images']} held-out "
            f"images (fewer where a row says so). Seeds: {' / '.join(map(str, seeds)) or '–'} per regime of ours, "
            f"1 for every other method. Baselines, controls and other frameworks are binarized per image to the "
            f"area of ours:{st['match_area']} (seed {st['match_area_seed']}). Removed pixels: fill "
            f"`{st['fill']}`. ")
    if sel:
        text += (f"Selection rule: {', '.join(sel)} keep per image the smallest mask that kept the label (selected "
                 "on the metric `kept` itself, so their kept is optimistic); each is followed by its last mask, "
                 "and the difference is what the selection buys. ")
    if is_small(st):
        text += f"n = number of photos ({st['n_images']}), tiny: the intervals are wide, read the rows as examples. "
    return text + (f"Source: `results/metrics/{group}.json` (cells), `results/metrics/{group}/per_image.csv` "
                   f"(p_ratio), `results/timing/` (ms of ours), `results/metrics/{group}/cost.json` (ms of the others).")


def table2_caption(pair: str, variants: dict, base: str, matched: bool = False) -> str:
    """Rows, n, seeds, the test, the correction, collapsed variants and the one-seed rule."""
    ref = variants[base]
    cfg = ref.config
    seeds = sorted({s for v in variants.values() for s in v.seeds})
    dead = [k for k, v in variants.items() if v.all_collapsed]
    one_seed = len(seeds) < 2
    what = (f"Table 2{' (equal area)' if matched else ''}, {cfg.get('classifier', pair)} on "
            f"{cfg.get('dataset', '')}: loss variants of the amortized explainer against `{base}`"
            + (", each trained with its area term as a target at the base's median hard area and binarized "
               "at exactly that area (each soft mask's top pixels, as the baselines are), so a term's effect is "
               "compared at equal area" if matched else "") + ". ")
    what += (f"n = {ref.summary.get('n', '–')} held-out images, seeds {', '.join(map(str, seeds))} per variant. "
             "Cells: mean over non-collapsed seeds ± sd across them. Δ: variant − base per paired seed (seed k "
             "with seed k), mean ± sd across seeds. p_Holm: per image the differences averaged over the seeds "
             "both have non-collapsed, a two-sided Wilcoxon signed-rank test over images (scipy), "
             "Holm-corrected across the variants tested for that metric. ")
    if one_seed:
        what += ("No p-value (\"–\"): one seed only, and a test over the images of a single training run "
                 "measures that run, not the loss variant. ")
    what += "\"–\" also marks the base (the reference), collapsed variants and ties with no nonzero difference. "
    if dead:
        what += f"Collapsed (every seed): {', '.join(dead)}: no Δ, no p. "
    sub = f"{pair}/matched" if matched else pair
    return what + (f"Source: `results/ablations/{sub}/<variant>.json` (cells) and "
                   f"`results/ablations/{sub}/<variant>/seed<k>/per_image.csv` (Δ, tests).")


def _pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def _regime_phrase(name: str, e: dict, per_image) -> str:
    if seeds_all_collapsed(e):
        return f"{name}: all {e['seeds']} seeds collapsed"
    m, k = e["metrics"], live_seeds(e)
    if "kept" not in m or "area" not in m:
        return f"{name}: no kept / area metric stored"
    kept, area = m["kept"], m["area"]
    spread = f" (seeds {_pct(kept['min'])}–{_pct(kept['max'])})" if k > 1 else ""
    out = f"{name} keeps the label on {_pct(kept['mean'])}{spread} at a mean area of {_pct(area['mean'], 1)}"
    r = ratio_stats(per_image, name, e.get("collapsed", []))
    if np.isfinite(r["median"]):
        out += f", median p_ratio {r['median']:.2f}"
    if e.get("collapsed"):
        out += f"; {len(e['collapsed'])} of {e['seeds']} seeds collapsed and are left out"
    return out


def _meets(e: dict) -> bool:
    if seeds_all_collapsed(e) or "kept" not in e["metrics"] or "area" not in e["metrics"]:
        return False
    return e["metrics"]["kept"]["mean"] >= KEPT_HIGH and e["metrics"]["area"]["mean"] <= CLAIM_AREA


def headline_sentences(groups: dict[str, dict], per_image: dict) -> list[str]:
    """Paragraphs for the top of the page: what was replicated and what was not, from the metrics of the
    groups (``{group: metrics}``, already in reading order) and their per-image tables."""
    if not groups:
        return ["No evaluated group in `results/metrics/`: nothing to report yet."]
    first = next(iter(groups))
    st, methods = groups[first]["settings"], groups[first]["methods"]
    ours = [m for m in ordered(list(methods)) if m.startswith("ours:") and not m.endswith("_last")]
    out = [f"Replicated: the method of Suhail et al. (arXiv 2509.23051), a U-Net mask m whose explanation "
           f"e = m ⊙ x should keep a frozen classifier's label, trained and scored on {len(groups)} "
           "classifier/dataset groups with baselines and controls; the paper reports no numbers, so these "
           "tables are the first quantitative ones."]
    if ours:
        out.append(f"On {st['classifier']} / {st['dataset']} (n = {st['n_images']} held-out images): "
                   + "; ".join(_regime_phrase(m, methods[m], per_image.get(first)) for m in ours) + ".")
    met = [f"{m} on {g}" for g, d in groups.items() for m in ordered(list(d["methods"]))
           if m.startswith("ours:") and not m.endswith("_last") and _meets(d["methods"][m])]
    claim = (f"The paper's claim, the label kept with about 2–5 % of the pixels (1–2 % on MNIST in the companion "
             f"paper), read here as top-1 kept ≥ {_pct(KEPT_HIGH)} at a mean hard-mask area ≤ {_pct(CLAIM_AREA)}: ")
    out.append(claim + (f"met by {', '.join(met)}." if met else "not met by any regime of ours in any group."))
    paper = [(g, d["methods"]["ours:per_image_paper"]) for g, d in groups.items() if "ours:per_image_paper" in
             d["methods"]]
    for g, e in paper:
        out.append(f"The paper's literal recipe (its weights, learning rate and step count) on {g}: "
                   + _regime_phrase("ours:per_image_paper", e, per_image.get(g)) + ".")
    own = [g for g, d in groups.items() if str(d["settings"]["classifier"]).startswith("resnet18")]
    photos = own or [g for g, d in groups.items() if _rank(d["settings"]) == 4]
    parts = []
    for g in photos:
        d = groups[g]
        mine = [m for m in ordered(list(d["methods"])) if m.startswith("ours:") and not m.endswith("_last")]
        parts.append(f"{group_title(d['settings'])}: " + "; ".join(
            _regime_phrase(m, d["methods"][m], per_image.get(g)) for m in mine))
    if own:
        out.append("The paper's own classifier (torchvision ResNet-18): " + " and ".join(parts) + ".")
    elif parts:
        out.append("Not replicated at the paper's scale: its ImageNet photos with a torchvision ResNet-18 are "
                   "approached only by " + " and ".join(parts) + ".")
    else:
        out.append("Not replicated: the paper's setting (ImageNet photos, torchvision ResNet-18) is not in "
                   "these results.")
    return out
