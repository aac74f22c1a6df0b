"""The area ladder (issue 29): per image, the smallest mask on a ladder of target areas that keeps the
classifier's decision, and an honest answer when there is none.

A fixed area target is the wrong question for one photo (some need 3 % of the pixels, some 15 %). The
ladder asks the paper's own claim per image. Rungs ``a_1 < a_2 < …`` are tried in order; rung ``r``
optimizes the per-image objective (method.md §3, §4) with the area term a constraint toward ``a_r``
(``LossConfig.area_target``, Fong et al.'s ranking constraint). The first rung starts from scratch with
``steps.steps`` steps; every later rung starts from the image's U-Net after the previous rung (a warm start)
and runs ``rung_steps`` steps. An image stops at the first rung whose hard mask is within
:data:`AREA_SLACK` times the rung's target and

* is not empty,
* keeps the classifier's top-1 label ``y`` (``y = argmax p_x``, the classifier's own answer on the image,
  never a label file), and
* keeps ``p_e(y) / p_x(y) >= keep_ratio``.

An image whose mask came out empty at a rung starts the next rung afresh (a collapsed net's saturated sigmoid
hardly moves), also with ``rung_steps`` steps: an image costs at most ``steps + (rungs − 1) · rung_steps``.

A rung's optimizer does not always reach its target (a 2 % rung may end at 30 % of the pixels): the climb
stops early only at a passing mask within :data:`AREA_SLACK` times its rung's target; a passing mask above
that is remembered and the climb goes on. The *chosen* rung is the passing rung with the smallest area
(the one that stopped the climb, unless an earlier over-target mask was smaller; the record says
``over_target`` when the chosen mask is above its rung's slack): the answer is always the smallest mask
found that keeps the decision. A mask larger than :data:`AREA_SLACK` times the highest target tried (with the
default rungs, 80 % of the pixels; always a full mask) never counts, however well it keeps the label: like an
empty mask, it explains nothing. When no rung passes, the image has no explanation: :meth:`ImageLadder.reason` says
what was measured (each rung's top-1 on the explanation and p_ratio, and the classifier's own top two on
the image, a near tie when ``margin_x`` < :data:`NEAR_TIE`). The *null explanation* (the fill alone, no
pixel kept) is scored once per image: when it already gives ``y`` the image is *trivial* (an empty or tiny
mask "keeps" the label, which explains nothing), and the record says so.

One implementation serves the CLI (``actmatch explain``) and the pipeline (``explain_images`` with
``per_image.ladder``). Rungs reuse :func:`~actmatch.explainer.train.explain_per_image` (or its batched twin
with ``chunk > 1``) with ``init_state`` for the warm start. Randomness: image ``i`` uses ``seed + i`` at every
rung, as in the plain per-image run (a later rung of a chunk runs the span from its first to its last image
still climbing, so every image keeps its own seed; the others' results in the span are discarded), so the
batched ladder equals the sequential one to float tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from actmatch.classifiers.registry import Classifier
from actmatch.config.explainer import LossConfig, StepsParams, UNetParams
from actmatch.core.io import write_json
from actmatch.core.masks import apply_mask, fill_values
from actmatch.core.resume import load_state, save_state, state_key
from actmatch.explainer.train import Compute, MaskRun, _collect, build_unet, explain_per_image

__all__ = ["Rung", "ImageLadder", "LadderRun", "explain_ladder", "judge", "write_ladder", "NEAR_TIE", "DEFAULT_RUNGS",
           "AREA_SLACK"]

AREA_SLACK = 2.0  # a passing mask stops the climb only if its area <= AREA_SLACK x its rung's target
NEAR_TIE = 0.1  # margin_x = p_x(y) − p_x(runner-up) below this: the classifier itself nearly ties on the image
DEFAULT_RUNGS = (0.02, 0.05, 0.1, 0.2, 0.4)


@dataclass(frozen=True)
class Rung:
    """One rung's hard mask as the classifier sees it: ``area`` (share of pixels kept), whether the
    top-1 label on the explanation is still ``y`` (``kept``), ``p_e`` = p_e(y), ``p_ratio`` = p_e(y) / p_x(y),
    ``y_e`` the top-1 on the explanation. ``area_target`` None: the recipe's own area term (no target)."""

    area_target: float | None
    area: float
    kept: bool
    p_e: float
    p_ratio: float
    y_e: int

    def passes(self, keep_ratio: float) -> bool:
        return self.area > 0 and self.kept and self.p_ratio >= keep_ratio

    @property
    def on_target(self) -> bool:
        """The mask's area is within :data:`AREA_SLACK` times the rung's target (always, without a target)."""
        return self.area_target is None or self.area <= AREA_SLACK * self.area_target


@dataclass
class ImageLadder:
    """One image's climb: what the classifier says of the image (``y``, ``p_x``, its runner-up) and of the
    fill alone (``y_null``, ``p_null`` = p_null(y)), each rung tried, and the chosen rung (None: none passed)."""

    y: int
    p_x: float
    runner_up: int
    p_runner_up: float
    y_null: int
    p_null: float
    rungs: list[Rung] = field(default_factory=list)
    chosen: int | None = None

    @property
    def margin_x(self) -> float:
        return self.p_x - self.p_runner_up

    @property
    def trivial(self) -> bool:
        """The fill alone (no pixel kept) is already classified ``y``."""
        return self.y_null == self.y

    @property
    def label_kept(self) -> bool:
        return self.chosen is not None

    @property
    def over_target(self) -> bool:
        """The chosen mask is larger than its rung aimed at (no rung reached its target and kept the label)."""
        return self.chosen is not None and not self.rungs[self.chosen].on_target

    @property
    def area_cap(self) -> float:
        """The largest area that still counts as an explanation: :data:`AREA_SLACK` times the highest target
        tried (a full mask keeps every pixel and explains nothing, like the empty one), never 1."""
        targets = [r.area_target for r in self.rungs if r.area_target is not None]
        return min(AREA_SLACK * max(targets), 1.0) if targets else 1.0

    def _explains(self, r: Rung, keep_ratio: float) -> bool:
        return r.passes(keep_ratio) and (r.area <= self.area_cap if self.area_cap < 1 else r.area < 1)

    def choose(self, keep_ratio: float) -> None:
        """After the climb: the passing rung with the smallest area, if any (ties: the lower rung); a mask
        over :attr:`area_cap` (e.g. all ones) never counts, however well it keeps the label."""
        ok = [j for j, r in enumerate(self.rungs) if self._explains(r, keep_ratio)]
        self.chosen = min(ok, key=lambda j: (self.rungs[j].area, j)) if ok else None

    @property
    def shown(self) -> Rung:
        """The rung the image's mask comes from: the chosen one, else the last one tried."""
        return self.rungs[self.chosen if self.chosen is not None else -1]

    def reason(self, names: Sequence[str], keep_ratio: float) -> str | None:
        """Why there is no explanation (or why it explains little); None for a plain success."""
        top2 = (f"the classifier's own top two on the image: '{names[self.y]}' {self.p_x:.3f} vs "
                f"'{names[self.runner_up]}' {self.p_runner_up:.3f} (margin_x {self.margin_x:.3f}"
                + (", a near tie)" if self.margin_x < NEAR_TIE else ")"))
        null = (f"the fill alone (no pixel kept) is already classified '{names[self.y]}' (p_null(y) {self.p_null:.3f}, "
                f"p_null/p_x {self.p_null / self.p_x:.2f}): a trivial keep, any mask keeps the label")
        if self.chosen is not None:
            over = (f"the smallest mask that kept the label covers {self.shown.area:.1%} of the pixels, over its "
                    f"rung's target ({_pct(self.shown.area_target)})" if self.over_target else None)
            parts = [p for p in (over, f"trivial: {null}; the mask says little" if self.trivial else None) if p]
            return "; ".join(parts) or None
        top = _pct(self.rungs[-1].area_target)
        if all(r.area == 0 for r in self.rungs):
            what = f"every mask up to {top} came out empty (the fill alone is classified '{names[self.y_null]}')"
        elif not any(r.kept for r in self.rungs):
            what = f"no mask up to {top} keeps the label '{names[self.y]}': " + "; ".join(
                f"at {r.area:.1%} of the pixels the explanation is '{names[r.y_e]}' (p_ratio {r.p_ratio:.2f})"
                for r in self.rungs)
        elif any(r.passes(keep_ratio) for r in self.rungs):
            big = min((r for r in self.rungs if r.passes(keep_ratio)), key=lambda r: r.area)
            what = (f"only the full mask (every pixel) keeps '{names[self.y]}' (p_ratio {big.p_ratio:.2f}): it "
                    "explains nothing" if self.area_cap >= 1 else
                    f"only masks over {self.area_cap:.0%} of the pixels keep '{names[self.y]}' (the smallest: "
                    f"{big.area:.1%}, p_ratio {big.p_ratio:.2f}): too large to be an explanation")
        else:
            best = max((r for r in self.rungs if r.kept), key=lambda r: r.p_ratio)
            what = (f"no mask up to {top} keeps '{names[self.y]}' with p_e(y)/p_x(y) >= {keep_ratio:g}: the best "
                    f"keeps p_ratio {best.p_ratio:.2f} at {best.area:.1%} of the pixels")
        return f"{what}; {top2}" + (f"; {null}" if self.trivial else "")

    def record(self, names: Sequence[str], keep_ratio: float) -> dict[str, Any]:
        """The image's JSON fields: label, p_x, top two, null explanation, the shown rung, and the ladder."""
        shown = self.shown
        return {"label": self.y, "class_name": names[self.y], "p_x": self.p_x, "label_kept": self.label_kept,
                "p_e": shown.p_e, "p_ratio": shown.p_ratio, "area": shown.area, "area_target": shown.area_target,
                "over_target": self.over_target,
                "runner_up": names[self.runner_up], "p_x_runner_up": self.p_runner_up, "margin_x": self.margin_x,
                "null_class_name": names[self.y_null], "p_null": self.p_null, "trivial": self.trivial,
                "keep_ratio": keep_ratio, "reason": self.reason(names, keep_ratio),
                "ladder": [{**asdict(r), "class_name_e": names[r.y_e], "chosen": j == self.chosen}
                           for j, r in enumerate(self.rungs)]}


@dataclass
class LadderRun:
    """``masks``: the per-image result in the plain per-image format (the chosen rung's soft mask, its
    final loss terms and last-step mask; the last rung's where none passed; curves: the first rung's,
    mean over images); ``images``: each image's climb."""

    masks: MaskRun
    images: list[ImageLadder]
    keep_ratio: float


def _pct(a: float | None) -> str:
    return "the recipe's area" if a is None else f"{a:.0%} of the pixels"


@torch.no_grad()
def _classify(clf: Classifier, x: torch.Tensor) -> torch.Tensor:
    return clf(x).softmax(1).float()


@torch.no_grad()
def _rung(clf: Classifier, x: torch.Tensor, soft: torch.Tensor, baseline: torch.Tensor, y: torch.Tensor,
          px: torch.Tensor, target: float | None) -> list[Rung]:
    """Score soft masks ``(B, 1, H, W)`` at their hard threshold, as :func:`~actmatch.explainer.api.summarize`."""
    hard = (soft.to(x.device) > 0.5).to(x.dtype)
    pe = _classify(clf, apply_mask(x, hard, baseline))
    pey = pe.gather(1, y[:, None])[:, 0]
    return [Rung(target, float(hard[j].mean()), bool(pe[j].argmax() == y[j]), float(pey[j]),
                 float(pey[j] / px[j]), int(pe[j].argmax())) for j in range(len(x))]


def _start(clf: Classifier, x: torch.Tensor, baseline: torch.Tensor) -> list[ImageLadder]:
    """What the classifier says of each image and of its fill alone (the null explanation)."""
    px, pn = _classify(clf, x), _classify(clf, baseline)
    top = px.topk(min(2, px.shape[1]), dim=1)
    out = []
    for j in range(len(x)):
        y = int(top.indices[j, 0])
        second = int(top.indices[j, -1]) if px.shape[1] > 1 else y
        out.append(ImageLadder(y, float(px[j, y]), second, float(px[j, second]) if second != y else 0.0,
                               int(pn[j].argmax()), float(pn[j, y])))
    return out


def judge(clf: Classifier, x: torch.Tensor, soft: torch.Tensor, fill: str, keep_ratio: float,
          area_target: float | None = None) -> list[ImageLadder]:
    """Masks made elsewhere (an amortized explainer) judged by the ladder's rule, as a one-rung ladder."""
    baseline = fill_values(x, fill, clf.mean, clf.std)
    images = _start(clf, x, baseline)
    y = torch.tensor([im.y for im in images], device=x.device)
    px = torch.tensor([im.p_x for im in images], device=x.device)
    for im, r in zip(images, _rung(clf, x, soft, baseline, y, px, area_target)):
        im.rungs.append(r)
        im.choose(keep_ratio)
    return images


def explain_ladder(clf: Classifier, x: torch.Tensor, loss: LossConfig, unet: UNetParams, steps: StepsParams,
                   fill: str, seed: int, rungs: Sequence[float | None], *, keep_ratio: float = 0.25,
                   rung_steps: int | None = None, chunk: int = 1, state_path: Path | None = None,
                   progress: bool = True, compute: Compute = Compute()) -> LadderRun:
    """Climb ``rungs`` (ascending target areas in (0, 1); one rung ``None``: the recipe's own area term) for
    every image of ``x`` ``(N, C, H, W)``, normalized, on the classifier's device. ``rung_steps``: steps of a
    warm-started rung (None: ``steps.steps``). ``chunk > 1``: that many images' U-Nets at once
    (:func:`~actmatch.explainer.batched.explain_per_image_batched`). With ``state_path`` finished images
    are saved (per chunk) and skipped on a rerun."""
    rungs = list(rungs)
    if not rungs or (None in rungs and len(rungs) > 1):
        raise ValueError(f"rungs: one or more target areas, or a single None (the recipe's own area); got {rungs}")
    if None not in rungs and (any(not 0 < a < 1 for a in rungs) or sorted(set(rungs)) != rungs):
        raise ValueError(f"rungs must be strictly increasing target areas in (0, 1); got {rungs}")
    if not 0 <= keep_ratio:
        raise ValueError(f"keep_ratio must be >= 0, got {keep_ratio}")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    later = steps.model_copy(update={"steps": rung_steps or steps.steps})
    key = state_key("ladder", loss, unet, steps, later, fill, seed, rungs, keep_ratio, x.shape, float(x.double().sum()))
    state = load_state(state_path, key) or {"key": key, "done": [], "curves": []}
    baseline = fill_values(x, fill, clf.mean, clf.std)
    starts = _start(clf, x, baseline)
    y = torch.tensor([im.y for im in starts], device=x.device)
    px = torch.tensor([im.p_x for im in starts], device=x.device)
    bar = tqdm(total=len(x), desc="images", unit="image", disable=not progress, initial=len(state["done"]))
    while len(state["done"]) < len(x):
        lo = len(state["done"])
        hi = min(lo + chunk, len(x))
        done: dict[int, dict[str, Any]] = {}
        by_rung: dict[int, list[dict[str, Any]]] = {i: [] for i in range(lo, hi)}  # each image's result per rung
        weights: dict[int, dict[str, torch.Tensor]] = {}
        climbing = list(range(lo, hi))
        curves: list[dict[str, list[float]]] = []
        rung_bar = tqdm(total=len(rungs), desc=f"rungs, image {lo + 1}" + (f"-{hi}" if hi - lo > 1 else ""),
                        unit="rung", leave=False, disable=not progress)
        for r, target in enumerate(rungs):
            rung_loss = loss if target is None else loss.model_copy(update={"area_target": target})
            # an image whose last mask came out empty starts afresh (a collapsed net's saturated sigmoid hardly
            # moves); the others start from their U-Net after the previous rung; both run rung_steps steps
            fresh = [i for i in climbing if r == 0 or starts[i].rungs[-1].area == 0]
            for group, group_steps in ((fresh, steps if r == 0 else later), ([i for i in climbing if i not in fresh],
                                                                              later)):
                if not group:
                    continue
                a, b = group[0], group[-1] + 1  # the span holding the group (each image keeps seed + i)
                init = None if r == 0 else [weights[i] if i in weights and i not in fresh else
                                            _fresh(clf, unet, seed + i) for i in range(a, b)]
                keep = _keeper(weights, a, set(group))  # the others in the span keep their own weights
                res = _optimize(clf, x[a:b], rung_loss, unet, group_steps, fill, seed + a, init, chunk, compute, keep)
                if r == 0:
                    curves = [res.curves]
                scored = _rung(clf, x[a:b], res.soft, baseline[a:b], y[a:b], px[a:b], target)
                for i in group:
                    j = i - a
                    starts[i].rungs.append(scored[j])
                    by_rung[i].append({"soft": res.soft[j:j + 1],
                                       "last": None if res.last is None else res.last[j:j + 1],
                                       "final": {k: v[j:j + 1] for k, v in res.final.items()}})
            for i in list(climbing):
                if starts[i].rungs[-1].passes(keep_ratio) and starts[i].rungs[-1].on_target:
                    climbing.remove(i)
            rung_bar.update(1)
            shown = starts[hi - 1].rungs[-1]
            rung_bar.set_postfix_str(f"target {_pct(target)}, area {shown.area:.3f}, p_ratio {shown.p_ratio:.2f}")
            if not climbing:
                break
        rung_bar.close()
        for i in range(lo, hi):  # the smallest passing mask (the one that stopped the climb, if any), else the last
            starts[i].choose(keep_ratio)
            done[i] = by_rung[i][starts[i].chosen if starts[i].chosen is not None else -1]
            state["done"].append({**done[i], "ladder": starts[i]})
        state["curves"] += curves
        save_state(state_path, state)
        bar.update(hi - lo)
    bar.close()
    entries = state["done"]
    if any(e["last"] is None for e in entries):
        for e in entries:
            e["last"] = e["soft"]
    keys = entries[0]["final"].keys() if entries else []
    first = [c for c in state["curves"] if c]
    mean_curves = {k: np.mean([c[k] for c in first], axis=0).tolist() for k in (first[0] if first else {})}
    return LadderRun(_collect(entries, keys, mean_curves, steps), [e["ladder"] for e in entries], keep_ratio)


def _keeper(weights: dict[int, dict[str, torch.Tensor]], a: int, group: set[int]):
    """``on_state`` for a span starting at image ``a``: store the final weights of the group's images."""
    def keep(j: int, w: dict[str, torch.Tensor]) -> None:
        if a + j in group:
            weights[a + j] = w
    return keep


def _fresh(clf: Classifier, unet: UNetParams, seed: int) -> dict[str, torch.Tensor]:
    """The weights a fresh per-image U-Net starts from with ``seed`` (as explain_per_image builds it)."""
    torch.manual_seed(seed)
    return build_unet(clf, unet).state_dict()


def _optimize(clf: Classifier, x: torch.Tensor, loss: LossConfig, unet: UNetParams, steps: StepsParams, fill: str,
              seed: int, init: list[dict[str, torch.Tensor]] | None, chunk: int, compute: Compute,
              on_state) -> MaskRun:
    """One rung for the images ``x`` (image ``j`` with ``seed + j``), sequential or batched."""
    if chunk > 1 and len(x) > 1:
        from actmatch.explainer.batched import explain_per_image_batched

        return explain_per_image_batched(clf, x, loss, unet, steps, fill, seed, chunk=chunk, init_state=init,
                                         progress=False, compute=compute, on_state=on_state)
    return explain_per_image(clf, x, loss, unet, steps, fill, seed, init_state=init, progress=False, compute=compute,
                             on_state=on_state)


def write_ladder(path: Path, ids: Sequence[str], run: LadderRun, names: Sequence[str]) -> None:
    """``ladder.json`` of a pipeline seed: the keep ratio and, per image id, :meth:`ImageLadder.record`
    (deterministic content: no times)."""
    write_json(path, {"keep_ratio": run.keep_ratio,
                      "images": {i: im.record(names, run.keep_ratio) for i, im in zip(ids, run.images)}})
