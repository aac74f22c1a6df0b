"""The paper's figures (and ours) drawn from what the pipeline stored (issue: report stage).

Every function takes arrays or frames already loaded and returns a matplotlib Figure; loading
from ``results/`` is in :mod:`actmatch.report.build`. Figure 1: original / mask / explanation
triplets captioned with area and p_x → p_e. Figure 2: one image under a loss-weight sweep, from
the whole object to a few pixels. Figure 3: area against label kept for every method and variant
(error bars: min–max over seeds).
SyCE / CyCE figure: input, similar, adversarial image and explanation map per example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from actmatch.images import explanation_images
from actmatch.core.figures import method_colour, plt

__all__ = ["Example", "SyceExample", "CFExample", "triplet_figure", "sweep_figure", "tradeoff_figure", "syce_figure",
           "glance_graph_figure", "glance_strips_figure", "glance_cf_figure"]


@dataclass(frozen=True)
class Example:
    """One explained image: the original (uint8, its own size), a hard mask (any size), a title
    (the class name) and a caption (area, p_x → p_e)."""

    image: np.ndarray
    mask: np.ndarray
    title: str
    caption: str


def _show(ax, img: np.ndarray) -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def triplet_figure(examples: Sequence[Example], title: str) -> plt.Figure:
    """Columns are images; rows are original, mask, explanation (kept pixels, the rest black)."""
    n = len(examples)
    if n == 0:
        raise ValueError("triplet_figure needs at least one example")
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n, 6.0), squeeze=False)
    for j, ex in enumerate(examples):
        parts = explanation_images(ex.image, ex.mask)
        for i, (img, row) in enumerate(((ex.image, "original"), (parts["mask"], "mask"),
                                        (parts["explanation"], "explanation"))):
            _show(axes[i, j], img)
            if j == 0:
                axes[i, j].set_ylabel(row, fontsize=9)
        axes[0, j].set_title(ex.title, fontsize=8)
        axes[2, j].set_xlabel(ex.caption, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def sweep_figure(image: np.ndarray, rows: dict[str, Sequence[tuple[str, np.ndarray]]], title: str) -> plt.Figure:
    """One row per swept weight (e.g. ``area``, ``tv``); in each, the explanation of ``image`` under
    every value, labelled, in the order given (low weight to high)."""
    if not rows or not all(rows.values()):
        raise ValueError("sweep_figure needs at least one row with at least one mask")
    ncol = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.8 * ncol, 2.1 * len(rows)), squeeze=False)
    for i, (name, items) in enumerate(rows.items()):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(items):
                ax.axis("off")
                continue
            label, mask = items[j]
            _show(ax, explanation_images(image, mask)["explanation"])
            ax.set_title(label, fontsize=7)
        axes[i, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tradeoff_figure(points: pd.DataFrame, title: str) -> plt.Figure:
    """Mean hard-mask area against label kept (columns ``panel``, ``name``, ``kind``, ``area``, ``kept``;
    optional ``method``, the full method name), one panel per ``panel`` value. Each point has its
    method's fixed colour (:func:`~actmatch.core.figures.method_colour`; ablation variants one colour) and
    its kind's marker (ours / baseline / control / other frameworks / variant), the marker legend below the
    panels. With ``area_min``, ``area_max``, ``kept_min``, ``kept_max`` (the spread over seeds) each point
    gets min–max error bars (zero length for a single run)."""
    if points.empty:
        raise ValueError("tradeoff_figure needs at least one point")
    panels = list(dict.fromkeys(points["panel"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.3), squeeze=False)
    markers = {"ours": "o", "baseline": "s", "SyCE/CyCE": "D", "GLANCE": "P", "control": "X", "variant": "^"}
    for ax, panel in zip(axes[0], panels):
        d = points[points["panel"] == panel]
        if {"area_min", "area_max", "kept_min", "kept_max"} <= set(d.columns):
            ax.errorbar(d["area"], d["kept"], xerr=[d["area"] - d["area_min"], d["area_max"] - d["area"]],
                        yerr=[d["kept"] - d["kept_min"], d["kept_max"] - d["kept"]], fmt="none", ecolor="0.65",
                        elinewidth=0.8, capsize=1.5, zorder=1)
        for _, r in d.iterrows():
            method = r["method"] if "method" in d and isinstance(r["method"], str) else r["name"]
            colour = method_colour(method) if r["kind"] != "variant" else "tab:green"
            ax.scatter([r["area"]], [r["kept"]], s=30, zorder=2, color=colour, marker=markers.get(r["kind"], "o"),
                       edgecolors="0.2", linewidths=0.4)
            ax.annotate(r["name"], (r["area"], r["kept"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("mean area of the hard mask")
        ax.set_ylabel("top-1 kept")
        ax.set_ylim(-0.03, 1.05)
        right = d["area_max"] if "area_max" in d else d["area"]
        ax.set_xlim(0.0, max(0.05, 1.15 * float(right.max())))  # from 0: areas are compared across panels
    kinds = [k for k in markers if k in set(points["kind"])]
    handles = [plt.Line2D([], [], ls="", marker=markers[k], color="0.5", label=k) for k in kinds]
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles=handles, fontsize=7, ncol=len(handles), loc="lower center", frameon=False)
    return fig


@dataclass(frozen=True)
class SyceExample:
    """One image explained by SyCE / CyCE: the input (uint8), a title (c → t), and per method the
    similar image x_st, the adversarial image x_a (uint8, the input's shape), the map (float) and
    a caption (the classifier's labels of x_st and x_a)."""

    image: np.ndarray
    title: str
    panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, str]]


def syce_figure(examples: Sequence[SyceExample], title: str) -> plt.Figure:
    """Rows are examples; columns the input, then per method similar / adversarial / map."""
    if not examples:
        raise ValueError("syce_figure needs at least one example")
    methods = list(examples[0].panels)
    ncol = 1 + 3 * len(methods)
    fig, axes = plt.subplots(len(examples), ncol, figsize=(1.45 * ncol, 1.6 * len(examples) + 0.6), squeeze=False)
    for i, ex in enumerate(examples):
        _show(axes[i, 0], ex.image)
        axes[i, 0].set_ylabel(ex.title, fontsize=8)
        for k, m in enumerate(methods):
            stable, adv, heat, caption = ex.panels[m]
            _show(axes[i, 1 + 3 * k], stable)
            _show(axes[i, 2 + 3 * k], adv)
            ax = axes[i, 3 + 3 * k]
            ax.imshow(heat, cmap="magma", vmin=0, vmax=max(float(heat.max()), 1e-6), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            axes[i, 2 + 3 * k].set_xlabel(caption, fontsize=6)
            if i == 0:
                for j, name in enumerate(("similar", "adversarial", "map")):
                    axes[0, 1 + 3 * k + j].set_title(f"{m}\n{name}", fontsize=7)
    axes[0, 0].set_title("input", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def glance_graph_figure(weights: pd.DataFrame, title: str, sink: str = "output") -> plt.Figure:
    """The learned graph: nodes on a circle (context features, free latents, the output apart on the
    right), one arrow per edge, its width and colour from the weight (red positive, blue negative)."""
    names = list(weights.index)
    others = [n for n in names if n != sink]
    angles = np.linspace(np.pi / 2, np.pi / 2 + 2 * np.pi, len(others), endpoint=False)
    pos = {n: (np.cos(a) - 0.3, np.sin(a)) for n, a in zip(others, angles)}
    if sink in names:
        pos[sink] = (1.35, 0.0)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    w = weights.to_numpy()
    top = max(float(np.abs(w).max()), 1e-9)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if w[i, j] == 0:
                continue
            ax.annotate("", xy=pos[b], xytext=pos[a],
                        arrowprops=dict(arrowstyle="-|>", color="C3" if w[i, j] > 0 else "C0", shrinkA=14, shrinkB=14,
                                        lw=0.6 + 2.4 * abs(w[i, j]) / top, alpha=0.85))
    for n, (x, y) in pos.items():
        ctx = not n.startswith("free") and n != sink
        ax.text(x, y, n, ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round", fc="#fde0c5" if ctx else "#d9e8f5" if n != sink else "#cfe8cf", ec="0.4"))
    ax.set_xlim(-1.6, 1.75)
    ax.set_ylim(-1.25, 1.25)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title + "\n(orange: context features, blue: free latents; red edge +, blue edge −)", fontsize=8)
    fig.tight_layout()
    return fig


def glance_strips_figure(x: np.ndarray, strips: np.ndarray, deltas: Sequence[float], features: Sequence[str],
                         title: str, example: int = 0) -> plt.Figure:
    """One row per context feature: the decoded image of one example after do(feature += δ) for each δ."""
    nf, nd = strips.shape[:2]
    fig, axes = plt.subplots(nf, nd + 1, figsize=(1.1 * (nd + 1), 1.1 * nf + 0.6), squeeze=False)
    for i in range(nf):
        _show(axes[i, 0], x[example])
        axes[i, 0].set_ylabel(features[i], fontsize=7)
        for k in range(nd):
            _show(axes[i, k + 1], strips[i, k, example])
            if i == 0:
                axes[0, k + 1].set_title(f"δ = {deltas[k]:+g}", fontsize=7)
    axes[0, 0].set_title("input", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


@dataclass
class CFExample:
    image: np.ndarray
    recon: np.ndarray
    counterfactual: np.ndarray
    effect: np.ndarray
    title: str      # the input's label and what the intervention did


def glance_cf_figure(examples: Sequence[CFExample], title: str) -> plt.Figure:
    """Rows: input, its decoded reconstruction G(z), the counterfactual G(z'), the effect map |G(z') − G(z)|."""
    if not examples:
        raise ValueError("glance_cf_figure needs at least one example")
    fig, axes = plt.subplots(len(examples), 4, figsize=(6.0, 1.5 * len(examples) + 0.6), squeeze=False)
    for i, ex in enumerate(examples):
        for k, img in enumerate((ex.image, ex.recon, ex.counterfactual)):
            _show(axes[i, k], img)
        axes[i, 3].imshow(ex.effect, cmap="magma", vmin=0, vmax=max(float(ex.effect.max()), 1e-6),
                          interpolation="nearest")
        axes[i, 3].set_xticks([])
        axes[i, 3].set_yticks([])
        axes[i, 0].set_ylabel(ex.title, fontsize=6)
    for k, name in enumerate(("input", "G(z)", "G(z') counterfactual", "effect map")):
        axes[0, k].set_title(name, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
