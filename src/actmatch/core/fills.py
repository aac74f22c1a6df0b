"""The fills' names, the one home of the list (method.md §2: what a removed pixel becomes).
:func:`actmatch.core.masks.fill_values` computes each; an explainer run's ``fill`` (``config/explainer.py``)
chooses one. Kept apart from ``core/masks.py`` so that the params schema can name them without torch."""

from __future__ import annotations

__all__ = ["FILLS"]

FILLS = ("normalized_zero", "black", "blur", "mean")
