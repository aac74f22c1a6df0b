"""What every table says about itself (rows, n, seeds, selection rule, columns, source file), the
order groups are read in, and the headline paragraph, all phrased from the stored numbers: no number
in the report's text is typed by hand (the thresholds below are reading rules, stated where used)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from actmatch.metrics.aggregate import COLLAPSE_SHARE, MIN_CLASS_IMAGES, paired_seed_means
from actmatch.report.tables import (CONTROLS, KEPT_HIGH, LOW_RATIO, class_name, collapse_label, live_seeds,
                                    method_label, notes_cell, ordered, ratio_stats, seeds_all_collapsed, seeds_text)

__all__ = ["CLAIM_AREA", "TABLE1_COLUMNS", "TABLE2_COLUMNS", "SYCE_COLUMN_DEFS", "GLANCE_COLUMN_DEFS",
           "reading_order", "group_title", "is_small", "table1_caption", "table2_caption", "headline_sentences",
           "machine_text", "meets_claim"]

CLAIM_AREA = 0.05  # the paper: "about 2–5 % of pixels kept", label preserved
SMALL_N = 30       # below this many images a group's intervals are examples, not estimates
DATASET_RANK = {"mnist": 0, "mnist_3v8": 1, "cluttered_mnist": 2}

CELL = ("mean over the non-collapsed seeds of each seed's mean over images ± sd across those seeds on one machine "
        "(min–max across seeds) [95 % bootstrap interval over images of the per-image means over seeds]; "
        "one run: mean [interval]")
TABLE1_COLUMNS: dict[str, str] = {
    "method": "`ours:<regime>` our explainer regimes; baselines (binarized per image at the areas of the "
              "match-area regime, seed by seed); controls `random` and `centre` (same areas); other frameworks. "
              "\"(selected on kept)\": per image the smallest hard mask that kept the label among the steps "
              "tried; \"(last mask)\": the same run's final mask, no selection",
    "seeds": "training seeds run; for a baseline, the seeds of ours it was binarized at",
    "collapsed": f"seeds whose hard masks are empty or full on ≥ {COLLAPSE_SHARE:.0%} of images, with the "
                 "direction (empty, full, mixed); left out of every number (a row with every seed collapsed says "
                 "\"collapsed (<direction>)\")",
    "n": "images scored",
    "trivial": "share of the images whose label the classifier already gives to the fill alone (the "
               "explanation of an empty mask, `null_y` = y in `per_image.csv`): an empty mask \"keeps\" them",
    "top-1 kept": "share of the non-trivial images with f(m ⊙ x) = f(x); cell: " + CELL,
    "kept (all)": "the same over every image, trivial ones included; same cell",
    "p_ratio med.": "median over every (non-collapsed seed, image) pair of p_e(y) / p_x(y), the confidence "
                    "retention (`per_image.csv`)",
    "p_ratio ≥ 0.5": "share of those pairs keeping at least half of p_x(y) (`per_image.csv`)",
    "flag": f"⚠ where kept (all) ≥ {KEPT_HIGH:g} but p_ratio < {LOW_RATIO:g} on more than half of the pairs: "
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
    "notes": f"a class (the label explained, y) whose masks collapsed within a seed (≥ {COLLAPSE_SHARE:.0%} "
             f"empty or full, classes of ≥ {MIN_CLASS_IMAGES} images): its images are left out of the claim; "
             "\"not converged\": seeds whose run ended with an undecided soft mask (mean p(1 − p) within 5 % of "
             "0.25) or a still-moving objective (> 5 % change over the last 10 % of steps): shown, never claimed",
}
TABLE2_COLUMNS: dict[str, str] = {
    "variant": "a loss overlay on the ablated run's preset; the base is the reference row",
    "seeds": "training seeds run (each seed is one replicate of the variant's effect)",
    "collapsed": f"seeds whose hard masks are empty or full on ≥ {COLLAPSE_SHARE:.0%} of images, with the "
                 "direction; left out. A variant with every seed collapsed shows \"collapsed (empty)\" / "
                 "\"collapsed (full)\" (both, by seed, when they differ)",
    "paired seeds": "the seeds both the variant and the base have non-collapsed: the variant's value and its Δ "
                    "are over exactly these (the base's value: over its non-collapsed seeds)",
    "n": "held-out images (the same for every variant and seed)",
    "area target": "the area the area term aimed at (the base's median hard area); in the equal-area table "
                   "every row's hard masks are the top that fraction of its soft mask's pixels, so `area` is "
                   "the target by construction",
    "area_own": "equal-area table: the area of the row's own binarization (soft > 0.5), which decides "
                "collapse; how far the target alone got the training",
    "<metric>": "mean over the paired seeds of each seed's mean over images ± sd across those seeds",
    "Δ <metric>": "variant − base per paired seed (seed k with seed k) over the shared images: mean ± sd "
                  "across those seeds [95 % interval of a two-level bootstrap: seeds with replacement, then "
                  "images with replacement within each drawn seed; none with one paired seed]",
    "sign <metric>": "paired seeds whose Δ has the sign of the mean Δ, of the paired seeds (e.g. 2/3): the "
                     "training run is the replicate of a loss-term effect",
    "notes": "classes that collapsed within a seed (their images stay in the numbers; named so a mean is "
             "not read as the whole story)",
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


def machine_text(settings: dict) -> str:
    """``"on one machine (CPU, k torch threads, torch v, device)"`` from a metrics file's ``machine`` entry."""
    m = settings.get("machine")
    if not m:
        return "on one machine"
    gpu = f", {m['gpu']}" if m.get("gpu") else ""
    return (f"on one machine ({m.get('cpu', '?')}, {m.get('torch_threads', '?')} torch threads, torch "
            f"{m.get('torch', '?')}, {m.get('device', '?')}{gpu})")


def _references(st: dict) -> str:
    """Which seeds of the match-area regime the baselines were binarized at, and which were skipped."""
    if "reference_seeds" not in st:  # a metrics file written before per-seed binarization
        return f"at the areas of ours:{st['match_area']} (seed {st.get('match_area_seed', 0)})"
    refs, skipped = st["reference_seeds"], st.get("skipped_reference_seeds", {})
    out = (f"at the areas of ours:{st['match_area']} seed by seed ({seeds_text(refs)}: one row per seed, "
           "paired with ours seed k with seed k, averaged like ours)") if refs else \
        f"nowhere: every seed of ours:{st['match_area']} collapsed, so only their ranking metrics are scored"
    if skipped:
        out += (f"; {seeds_text(sorted(int(k) for k in skipped))} of ours:{st['match_area']} collapsed ("
                + ", ".join(f"{v}" for _, v in sorted(skipped.items())) + "), never a reference")
    return out


def table1_caption(group: str, metrics: dict) -> str:
    st, methods = metrics["settings"], metrics["methods"]
    ours = {m: e for m, e in methods.items() if m.startswith("ours:")}
    seeds = sorted({int(e.get("seeds", 1)) for e in ours.values()})
    sel = [m for m in ordered(list(methods)) if methods[m].get("selected_on_kept")]
    text = (f"Table 1, {st['classifier']} on {st['dataset']}: one row per method, n = {st['n_images']} held-out "
            f"images (fewer where a row says so). Seeds: {' / '.join(map(str, seeds)) or '–'} per regime of ours. "
            f"Baselines, controls and other frameworks are computed once and binarized per image "
            f"{_references(st)}. Removed pixels: fill `{st['fill']}`. ± is the spread across seeds "
            f"{machine_text(st)}; another machine can move trained explainers further (docs/results.md). ")
    if any("trivial" in e for e in methods.values()):
        text += ("`trivial` is the share of images whose label the classifier already gives to the fill alone "
                 "(an empty mask would \"keep\" them); `top-1 kept` counts only the other, non-trivial images, "
                 "`kept (all)` every image. ")
    if sel:
        text += (f"Selection rule: {', '.join(sel)} keep per image the smallest mask that kept the label (selected "
                 "on the metric `kept` itself, so their kept is optimistic); each is followed by its last mask, "
                 "and the difference is what the selection buys. ")
    paper = methods.get("ours:per_image_paper", {})
    if paper.get("not_converged"):
        text += (f"The paper's literal recipe (ours:per_image_paper) did not converge on "
                 f"{seeds_text(paper['not_converged'])} (an undecided soft mask or a still-moving objective): its "
                 "row is shown and never claimed. ")
    if is_small(st):
        text += f"n = number of photos ({st['n_images']}), tiny: the intervals are wide, read the rows as examples. "
    return text + (f"Source: `results/metrics/{group}.json` (cells), `results/metrics/{group}/per_image.csv` "
                   f"(p_ratio, trivial), `results/timing/` (ms of ours), `results/metrics/{group}/cost.json` (ms of the others).")


def table2_caption(pair: str, variants: dict, base: str, matched: bool = False) -> str:
    """Rows, n, the seeds (the replicates), Δ with its interval and sign, collapsed variants by direction."""
    ref = variants[base]
    cfg = ref.config
    seeds = sorted({s for v in variants.values() for s in v.seeds})
    dead = [k for k, v in variants.items() if v.all_collapsed]
    what = (f"Table 2{' (equal area)' if matched else ''}, {cfg.get('classifier', pair)} on "
            f"{cfg.get('dataset', '')}: loss variants of the amortized explainer against `{base}`"
            + (", each trained with its area term as a target at the base's median hard area and binarized "
               "at exactly that area (each soft mask's top pixels, as the baselines are), so a term's effect is "
               "compared at equal area" if matched else "") + ". ")
    what += (f"n = {ref.summary.get('n', '–')} held-out images; {len(seeds)} training seed"
             f"{'s' if len(seeds) != 1 else ''} per variant ({', '.join(map(str, seeds))}): the training run is the "
             "replicate of a loss-term effect, so effects are read across seeds, never across images. Cells: mean "
             "over the paired seeds ± sd across them, on one machine (docs/results.md). Δ: variant − base per "
             "paired seed (seed k with seed k), mean ± sd across seeds, with a 95 % interval from a two-level "
             "bootstrap (seeds, then images within each seed); sign: paired seeds agreeing with the sign of the "
             "mean. No p-value: a test over images would count the images of a few runs as independent "
             "replicates. ")
    if len(seeds) < 2:
        what += "One seed only: no interval, and no effect can be told from that run's noise. "
    what += "\"–\" marks the base (the reference) and collapsed variants. "
    if dead:
        what += ("Collapsed (every seed): " + ", ".join(
            f"{k} {collapse_label(variants[k].summary).removeprefix('collapsed ')}" for k in dead) + ": no Δ. ")
    sub = f"{pair}/matched" if matched else pair
    return what + (f"Source: `results/ablations/{sub}/<variant>.json` (seeds, collapse) and "
                   f"`results/ablations/{sub}/<variant>/seed<k>/per_image.csv` (cells, Δ).")


def _pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def _regime_phrase(name: str, methods: dict, per_image, names=None) -> str:
    """One regime's claim in words, on the images and seeds the claim rests on, with the row's labels."""
    e, label = methods[name], method_label(name, methods)
    if seeds_all_collapsed(e):
        return f"{label}: all {e['seeds']} seeds {collapse_label(e)}"
    c = e.get("claim")
    if c is None or "kept" not in e["metrics"]:
        return f"{label}: no claim data stored (rerun the evaluate stage)"
    if not c["seeds"]:
        return f"{label}: nothing to claim ({notes_cell(e, names) or 'no non-trivial image left'})"
    spread = f" (seeds {_pct(c['kept_min'])}–{_pct(c['kept_max'])})" if len(c["seeds"]) > 1 else ""
    out = (f"{label} keeps the label on {_pct(c['kept'])}{spread} of the non-trivial images at a mean area of "
           f"{_pct(c['area'], 1)}")
    r = ratio_stats(per_image, name, e.get("collapsed", []))
    if np.isfinite(r["median"]):
        out += f", median p_ratio {r['median']:.2f}"
    left = []
    if e.get("collapsed"):
        left.append(f"{len(e['collapsed'])} of {e['seeds']} seeds {collapse_label(e)}")
    if c["left_out"].get("seeds_not_converged"):
        left.append(f"{seeds_text(c['left_out']['seeds_not_converged'])} not converged")
    for k in c["left_out"].get("classes", []):
        left.append(f"class {class_name(int(k['class']), names)} {k['direction']} on {seeds_text(k['seeds'])}")
    if e.get("trivial"):
        left.append(f"{_pct(e['trivial'])} of the images trivial")
    return out + (f" (left out: {'; '.join(left)})" if left else "")


def meets_claim(e: dict) -> bool:
    """The paper's claim on the rows a claim may rest on (:func:`~actmatch.metrics.aggregate.claim_summary`):
    kept ≥ KEPT_HIGH at a mean area ≤ CLAIM_AREA, on the non-trivial images outside collapsed classes, over
    the converged, non-collapsed seeds. A metrics file without a claim entry meets nothing."""
    c = e.get("claim")
    if seeds_all_collapsed(e) or not c or not c.get("seeds"):
        return False
    return c["kept"] >= KEPT_HIGH and c["area"] <= CLAIM_AREA


def _versus(st: dict, methods: dict, per_image: pd.DataFrame | None) -> str | None:
    """Ours at the match-area regime against the baseline with the highest kept, paired seed by seed on the
    non-trivial images (each baseline was binarized at that seed's areas)."""
    ours = "ours:" + str(st.get("match_area"))
    if per_image is None or ours not in methods or "reference_seeds" not in st or "seed" not in per_image:
        return None
    live = [s for s in st["reference_seeds"] if s not in methods[ours].get("collapsed", [])]
    others = [m for m in methods if not m.startswith("ours:") and m not in CONTROLS and m != "glance"
              and not m.startswith(("syce", "cyce")) and not seeds_all_collapsed(methods[m])]
    best, table = None, None
    for m in others:
        t = paired_seed_means(per_image, ours, m, "kept", live)
        if len(t) and (table is None or t["b"].mean() > table["b"].mean()):
            best, table = m, t
    if best is None:
        return None
    ahead = int((table["a"] > table["b"]).sum())
    return (f"At the same per-image areas, seed by seed ({seeds_text(table['seed'].tolist())}; non-trivial images): "
            f"{method_label(ours, methods)} keeps the label on {_pct(table['a'].mean())} and the baseline with the "
            f"highest kept, {best}, on {_pct(table['b'].mean())}; ours is ahead on {ahead} of {len(table)} seeds.")


def headline_sentences(groups: dict[str, dict], per_image: dict,
                       class_names: dict[str, list[str] | None] | None = None) -> list[str]:
    """Paragraphs for the top of the page: what was replicated and what was not, from the metrics of the
    groups (``{group: metrics}``, already in reading order) and their per-image tables. Every claim is read
    on the non-trivial images of the converged, non-collapsed seeds outside collapsed classes, and every row
    keeps its label ("(selected on kept)"); ``class_names`` (per group) name the classes."""
    if not groups:
        return ["No evaluated group in `results/metrics/`: nothing to report yet."]
    names = class_names or {}
    first = next(iter(groups))
    st, methods = groups[first]["settings"], groups[first]["methods"]
    ours = [m for m in ordered(list(methods)) if m.startswith("ours:") and not m.endswith("_last")]
    out = [f"Replicated: the method of Suhail et al. (arXiv 2509.23051), a U-Net mask m whose explanation "
           f"e = m ⊙ x should keep a frozen classifier's label, trained and scored on {len(groups)} "
           "classifier/dataset groups with baselines and controls; the paper reports no numbers, so these "
           "tables are the first quantitative ones. The sentences below are read on the non-trivial images (an "
           "image is trivial when the classifier gives the fill alone its label, so an empty mask would \"keep\" "
           f"it) and the seeds that neither collapsed nor failed to converge; ranges are across seeds "
           f"{machine_text(st)}."]
    if ours:
        out.append(f"On {st['classifier']} / {st['dataset']} (n = {st['n_images']} held-out images): "
                   + "; ".join(_regime_phrase(m, methods, per_image.get(first), names.get(first)) for m in ours)
                   + ".")
    vs = _versus(st, methods, per_image.get(first))
    if vs:
        out.append(vs)
    met = [f"{method_label(m, d['methods'])} on {g}" for g, d in groups.items() for m in ordered(list(d["methods"]))
           if m.startswith("ours:") and not m.endswith("_last") and meets_claim(d["methods"][m])]
    claim = (f"The paper's claim, the label kept with about 2–5 % of the pixels (1–2 % on MNIST in the companion "
             f"paper), read here as top-1 kept ≥ {_pct(KEPT_HIGH)} at a mean hard-mask area ≤ {_pct(CLAIM_AREA)} "
             "on the non-trivial images outside collapsed classes, over the converged, non-collapsed seeds: ")
    judged = any("claim" in e for d in groups.values() for e in d["methods"].values())
    out.append(claim + (f"met by {', '.join(met)}." if met else "not met by any regime of ours in any group."
                        if judged else "not judged: these metrics files predate the trivial-image and per-class "
                        "collapse rules (rerun the evaluate stages)."))
    for g, d in groups.items():
        if "ours:per_image_paper" in d["methods"]:
            out.append(f"The paper's literal recipe (its weights, learning rate and step count) on {g}: "
                       + _regime_phrase("ours:per_image_paper", d["methods"], per_image.get(g), names.get(g)) + ".")
    own = [g for g, d in groups.items() if str(d["settings"]["classifier"]).startswith("resnet18")]
    photos = own or [g for g, d in groups.items() if _rank(d["settings"]) == 4]
    parts = []
    for g in photos:
        d = groups[g]
        mine = [m for m in ordered(list(d["methods"])) if m.startswith("ours:") and not m.endswith("_last")]
        parts.append(f"{group_title(d['settings'])}: " + "; ".join(
            _regime_phrase(m, d["methods"], per_image.get(g), names.get(g)) for m in mine))
    if own:
        out.append("The paper's own classifier (torchvision ResNet-18): " + " and ".join(parts) + ".")
    elif parts:
        out.append("Not replicated at the paper's scale: its ImageNet photos with a torchvision ResNet-18 are "
                   "approached only by " + " and ".join(parts) + ".")
    else:
        out.append("Not replicated: the paper's setting (ImageNet photos, torchvision ResNet-18) is not in "
                   "these results.")
    return out
