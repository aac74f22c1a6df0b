"""The preservation curve (issue 19): for every method, the share of images whose label the top-a pixels
of its ranking keep, and the median confidence retention p_ratio, at each budget a (1–50 % of the
pixels). Every method ranks pixels (ours by the soft mask, the baselines by their saliency), so the curve
compares them at the paper's 2–5 % whatever area each one chose; one matched point cannot. The curve and
its table leave out what Table 1 leaves out: collapsed runs, and the trivial images (an image whose label
the fill alone already gets: any budget, even none, "keeps" it; issue 27)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from actmatch.core.figures import method_colour, plt
from actmatch.metrics.aggregate import is_collapsed, success

__all__ = ["budgets_of", "preservation_table", "preservation_figure", "per_image_figure", "per_image_table"]


def budgets_of(per_image: pd.DataFrame) -> list[float]:
    """The budgets the evaluation scored (columns ``kept@<b>``), smallest first."""
    return sorted(float(m.group(1)) for c in per_image.columns if (m := re.fullmatch(r"kept@([0-9.e-]+)", c)))


def _live(per_image: pd.DataFrame) -> pd.DataFrame:
    """Rows of non-collapsed (method, seed) runs (collapse judged on the run's own area)."""
    dead = {(m, s) for (m, s), g in per_image.groupby(["method", "seed"]) if is_collapsed(g["area"].to_numpy())}
    keep = [(m, s) not in dead for m, s in zip(per_image["method"], per_image["seed"])]
    return per_image[keep]


def _curve_rows(per_image: pd.DataFrame) -> pd.DataFrame:
    """What the preservation curve is read on: non-collapsed runs, non-trivial images (when the table says)."""
    live = _live(per_image)
    return live[live["trivial"] == 0] if "trivial" in live else live


def preservation_table(per_image: pd.DataFrame) -> pd.DataFrame:
    """One row per method: seeds, n (the non-trivial images the curve is read on), then per budget
    ``kept a %`` (share of (seed, image) pairs kept) and ``p_ratio a %`` (median p_e(y) / p_x(y)); collapsed
    runs and trivial images left out (a wholly collapsed method is named)."""
    budgets = budgets_of(per_image)
    live = _curve_rows(per_image)
    rows = []
    for method, g in per_image.groupby("method", sort=False):
        lg = live[live["method"] == method]
        n = g[g["trivial"] == 0]["id"].nunique() if "trivial" in g else g["id"].nunique()
        row = {"method": method, "seeds": int(g["seed"].nunique()), "n": int(n)}
        for b in budgets:
            label = f"{100 * b:g} %"
            row[f"kept {label}"] = float(lg[f"kept@{b:g}"].mean()) if len(lg) else "collapsed"
            row[f"p_ratio {label}"] = float(np.median(lg[f"p_ratio@{b:g}"])) if len(lg) else "collapsed"
        rows.append(row)
    return pd.DataFrame(rows)


def _spread(values: np.ndarray, digits: int = 2) -> str:
    """``median (min–max)`` over seeds; a single seed is just its value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.median(values):.{digits}f} ({values.min():.{digits}f}–{values.max():.{digits}f})"


def per_image_table(per_image: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """One row per image (issue 19: report per photo, never only pooled), and per method in ``methods``
    three columns over its non-collapsed seeds: the hard ``area`` and ``p_ratio`` = p_e(y) / p_x(y) as
    median (min–max), and ``kept`` as seeds kept / seeds; "–" where a method did not explain the image,
    "collapsed" where every seed of it collapsed. First, what the classifier says of the image itself
    (when the table has them): ``p_x(y)``, ``margin_x`` = p_x(y) − the runner-up's probability (near 0:
    a near tie that any change of the image can flip) and ``trivial`` ("yes" when the classifier gives the
    fill alone, the photo with every pixel removed, the same label: an empty mask keeps it). Per-photo
    columns come from :func:`_photo_columns`, the per-method ones from :func:`_method_cells`, so a new
    column is one more entry there."""
    live = {key: g.sort_values("seed") for key, g in _live(per_image).groupby(["method", "id"])}
    ran = set(zip(per_image["method"], per_image["id"]))
    ids = list(dict.fromkeys(per_image[per_image["method"].isin(methods)]["id"]))
    rows = []
    own = per_image.drop_duplicates("id").set_index("id")
    for i in ids:
        row: dict[str, object] = {"image": i, **_photo_columns(own, i)}
        for m in methods:
            g = live.get((m, i))
            if g is None:
                cell = "collapsed" if (m, i) in ran else "–"
                row.update({f"{m} {k}": cell for k in ("area", "kept", "p_ratio")})
                continue
            row.update({f"{m} {k}": v for k, v in _method_cells(g).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _photo_columns(own: pd.DataFrame, i: str) -> dict[str, object]:
    """What the classifier says of photo ``i`` itself (columns of the per-image table, when present)."""
    out: dict[str, object] = {}
    if "margin_x" in own:
        out.update({"p_x(y)": f"{own.at[i, 'p_x']:.3f}", "margin_x": f"{own.at[i, 'margin_x']:.3f}"})
    if "trivial" in own:
        out["trivial"] = "yes" if int(own.at[i, "trivial"]) else "no"
    return out


def _method_cells(g: pd.DataFrame) -> dict[str, str]:
    """One method on one photo over its non-collapsed seeds ``g``: area, kept (seeds whose mask kept the label
    and is not full: :func:`~actmatch.metrics.aggregate.success`; the trivial column says the rest), p_ratio."""
    kept = int(success(g.drop(columns=["trivial"], errors="ignore")).sum())
    return {"area": _spread(g["area"].to_numpy(float), 3), "kept": f"{kept}/{len(g)}",
            "p_ratio": _spread(g["p_ratio"].to_numpy(float))}


def preservation_figure(per_image: pd.DataFrame, title: str, methods: list[str] | None = None) -> plt.Figure:
    """Two panels against the budget (log scale): share kept, and median p_ratio; one line per method in its
    fixed colour, the legend below the panels; collapsed runs and trivial images left out."""
    budgets = budgets_of(per_image)
    live = _curve_rows(per_image)
    methods = methods or list(dict.fromkeys(per_image["method"]))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for method in methods:
        g = live[live["method"] == method]
        if g.empty:
            continue
        style = {"lw": 2.2} if method.startswith("ours:") else {"lw": 1.0, "ls": "--" if method in ("random", "centre")
                                                                 else "-"}
        style["color"] = method_colour(method)
        axes[0].plot(budgets, [g[f"kept@{b:g}"].mean() for b in budgets], marker="o", ms=3, label=method, **style)
        axes[1].plot(budgets, [np.median(g[f"p_ratio@{b:g}"]) for b in budgets], marker="o", ms=3, **style)
    for ax, ylabel in zip(axes, ("label kept (share)", "median p_e(y) / p_x(y)")):
        ax.set_xscale("log")
        ax.set_xticks(budgets, [f"{100 * b:g}%" for b in budgets])
        ax.set_xlabel("pixels kept (top of each method's ranking)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].axvspan(0.02, 0.05, color="0.9", zorder=0)  # the paper's claim: 2-5 % of the pixels
    axes[1].axvspan(0.02, 0.05, color="0.9", zorder=0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(handles, labels, fontsize=6, ncol=min(5, max(1, len(labels))), loc="lower center", frameon=False)
    return fig


def _top(preview: np.ndarray, a: float) -> np.ndarray:
    """The top-a pixels of a uint8 map (ties by position) as a bool mask."""
    flat = preview.reshape(-1).astype(np.float64)
    k = max(1, int(round(a * flat.size)))
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[:k]] = True
    return keep.reshape(preview.shape)


def per_image_figure(images: list[np.ndarray], ids: list[str], previews: dict[str, np.ndarray],
                     per_image: pd.DataFrame, ours: str, other: str | None, areas: tuple[float, ...],
                     title: str) -> plt.Figure:
    """One row per image: the image as the classifier saw it, the top-a pixels of our map at each of
    ``areas`` (the rest dimmed), the same for ``other`` (e.g. Extremal Perturbation) at the middle area, and
    p_e(y) / p_x(y) against the pixels kept for both (first non-collapsed seed; every budget of the evaluation)."""
    budgets = budgets_of(per_image)
    live = _live(per_image)  # the first non-collapsed seed's curve
    cols = 1 + len(areas) + (other is not None) + 1
    fig, axes = plt.subplots(len(ids), cols, figsize=(1.9 * cols, 1.9 * len(ids)), squeeze=False)
    mid = areas[len(areas) // 2]
    for r, (img, i) in enumerate(zip(images, ids)):
        j = list(previews["ids"]).index(i)
        shown = [(img, "image")] + [(_top(previews[ours][j], a), f"ours {100 * a:g} %") for a in areas]
        if other is not None:
            shown.append((_top(previews[other][j], mid), f"{other} {100 * mid:g} %"))
        for c, (content, label) in enumerate(shown):
            ax = axes[r, c]
            if content.dtype == bool:
                ax.imshow(np.where(content[..., None], img, (0.3 * img).astype(img.dtype)))
            else:
                ax.imshow(content)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=7)
        axes[r, 0].set_ylabel(i, fontsize=7)
        ax = axes[r, -1]
        for method, style in ((ours, "-"), (other, "--")):
            if method is None:
                continue
            row = live[(live["method"] == method) & (live["id"] == i)].sort_values("seed").head(1)
            if len(row):
                ax.plot(budgets, [float(row[f"p_ratio@{b:g}"].iloc[0]) for b in budgets], style, marker=".",
                        label=method, color=method_colour(method))
        ax.set_xscale("log")
        ax.axhline(0.5, color="0.7", lw=0.6)
        ax.tick_params(labelsize=6)
        if r == 0:
            ax.set_title("p_e(y) / p_x(y) vs pixels kept", fontsize=7)
    handles, labels = axes[0, -1].get_legend_handles_labels()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    if handles:  # below the panels, never over a curve
        fig.legend(handles, labels, fontsize=6, ncol=len(labels), loc="lower center", frameon=False)
    return fig
