"""Figures as matplotlib Figure objects (the caller saves them; PNGs carry no volatile metadata)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = ["curves_plot", "training_curves", "save_figure"]

# PNG and PDF with no volatile metadata, so a rerun writes the same bytes (matplotlib would stamp
# its version into both and the creation date into the PDF)
_STABLE_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save_figure(fig: plt.Figure, *paths, dpi: int = 110) -> None:
    """Save ``fig`` to every path (format from the suffix: png or pdf) byte-stably, then close it."""
    for path in paths:
        fmt = str(path).rsplit(".", 1)[-1].lower()
        fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_STABLE_METADATA.get(fmt))
    plt.close(fig)


def curves_plot(curves: pd.DataFrame, title: str) -> plt.Figure:
    """Mean insertion and deletion curves per method (columns method, fraction, insertion, deletion)."""
    long = curves.melt(id_vars=["method", "fraction"], value_vars=["insertion", "deletion"], var_name="curve",
                       value_name="p(y)")
    grid = sns.relplot(data=long, x="fraction", y="p(y)", hue="method", col="curve", kind="line", height=3.2,
                       aspect=1.1, linewidth=1.2)
    grid.set_axis_labels("fraction of pixels inserted / deleted", "p(y)")
    grid.figure.suptitle(title, y=1.02, fontsize=10)
    return grid.figure


def training_curves(curves: dict[str, list[float]], xlabel: str) -> plt.Figure:
    """Small multiples of every logged quantity against step or epoch, so the training curves can
    be looked at offline as a PNG (``dvc plots show`` HTML needs the web)."""
    keys = [k for k in curves if curves[k]]
    cols = 4
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, k in zip(axes.flat, keys):
        ax.plot(range(len(curves[k])), curves[k], lw=1.2)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
