"""Baselines of method.md §6, scored by the same metric functions as our masks.

Every method maps ``(model, x, y, baseline, areas)`` to a saliency map ``(B, 1, H, W)`` (higher
= more evidence for ``y``); :func:`binarize_to_area` then keeps, per image, exactly as many
top-ranked pixels as our mask has, and :func:`to_unit` rescales the map to [0, 1] for the
ranking-based metrics (insertion/deletion, p*, pointing game).
"""

from actmatch.baselines.base import BASELINES, Method, binarize_to_area, build_baseline, register, to_unit

__all__ = ["Method", "BASELINES", "register", "build_baseline", "binarize_to_area", "to_unit"]

from actmatch.baselines import attribution as _attribution  # noqa: E402,F401  (registers the methods)
from actmatch.baselines import optimized as _optimized  # noqa: E402,F401
