"""Figures as matplotlib Figure objects (the caller saves them; PNGs carry no volatile metadata)."""

from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = ["curves_plot", "training_curves", "save_figure", "method_colour", "METHOD_COLOURS"]

# One fixed colour per method across every figure (issue 27). Known methods get a hand-picked entry of
# matplotlib's tab20 (a regime's last-mask row the light shade of its regime); any other name a stable
# colour of tab20b from a CRC32 of the name (never the order a figure happens to draw it in).
_TAB20 = matplotlib.colormaps["tab20"].colors
_TAB20B = matplotlib.colormaps["tab20b"].colors
METHOD_COLOURS: dict[str, tuple[float, ...] | str] = {
    "ours:amortized": _TAB20[6], "ours:finetune": _TAB20[0], "ours:finetune_last": _TAB20[1],
    "ours:per_image": _TAB20[4], "ours:per_image_last": _TAB20[5], "ours:per_image_paper": _TAB20[8],
    "integrated_gradients": _TAB20[2], "occlusion": _TAB20[10], "extremal": _TAB20[12],
    "extremal_authors": _TAB20[13], "rise": _TAB20[16], "gradcam": _TAB20[18], "gradcam_pp": _TAB20[19],
    "random": _TAB20[14], "centre": _TAB20[15], "syce": _TAB20[3], "cyce": _TAB20[11], "syce_10class": _TAB20[9],
    "cyce_10class": _TAB20[17], "glance": "black",
}


def method_colour(name: str) -> tuple[float, ...] | str:
    """The colour of ``name`` in every figure: :data:`METHOD_COLOURS`, else a stable hash into tab20b."""
    if name in METHOD_COLOURS:
        return METHOD_COLOURS[name]
    return _TAB20B[zlib.crc32(name.encode()) % len(_TAB20B)]

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
    """Mean insertion and deletion curves per method (columns method, fraction, insertion, deletion), each
    method in its fixed colour (:func:`method_colour`), the legend outside the panels."""
    long = curves.melt(id_vars=["method", "fraction"], value_vars=["insertion", "deletion"], var_name="curve",
                       value_name="p(y)")
    grid = sns.relplot(data=long, x="fraction", y="p(y)", hue="method", col="curve", kind="line", height=3.2,
                       aspect=1.1, linewidth=1.2, palette={m: method_colour(m) for m in long["method"].unique()})
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
