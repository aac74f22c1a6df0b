"""Explanations from a trained SyCE / CyCE generator and the authors' own metrics (method.md §8.1).

``explain_syce`` gives, per image, the adversarial image x_a, the stable image x_st and the
explanation map; the map is scored like every other method (binarized to our mask's area per
image, by the evaluation code). ``syce_metrics`` are the metrics Charachon et al. report for the
generated images themselves:

- ``flip``: f(x_a) ≠ c (the adversarial image changes the decision);
- ``hit_target``: f(x_a) = t (it reaches the target class; = ``flip`` for a binary task);
- ``stable``: f(x_st) = c (the stable image keeps it);
- ``l1``: ‖x − x_a‖₁ / (C·H·W), the mean absolute pixel change, pixel space [0, 1].
"""

from __future__ import annotations

import torch

from actmatch.classifiers.pixel import PixelClassifier
from actmatch.syce.losses import Variant, explanation, targets
from actmatch.syce.models import Translator

__all__ = ["explain_syce", "syce_metrics"]


@torch.no_grad()
def explain_syce(variant: Variant, G: Translator, f: PixelClassifier, x: torch.Tensor,
               batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Pixel-space ``x`` (N, C, H, W) in [0, 1] → ``x_a``, ``x_st`` (N, C, H, W), ``map`` (N, 1, H, W) ≥ 0,
    ``c`` and ``t`` (N,) int64. SyCE: x_st = G(x_a, c, t); CyCE: x_st = G(x_a, t, c)."""
    G.eval()
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("x_a", "x_st", "map", "c", "t")}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        c, t = targets(f(xb))
        x_a = G(xb, c, t)
        x_st = G(x_a, c, t) if variant == "syce" else G(x_a, t, c)
        for k, v in zip(parts, (x_a, x_st, explanation(variant, xb, x_a, x_st), c, t), strict=True):
            parts[k].append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


@torch.no_grad()
def syce_metrics(f: PixelClassifier, x: torch.Tensor, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-image ``flip``, ``hit_target``, ``stable`` (0/1 floats) and ``l1`` for ``explain_syce``'s output."""
    pred_a = f(out["x_a"]).argmax(1)
    pred_st = f(out["x_st"]).argmax(1)
    return {"flip": (pred_a != out["c"]).float(), "hit_target": (pred_a == out["t"]).float(),
            "stable": (pred_st == out["c"]).float(), "l1": (x - out["x_a"]).abs().flatten(1).mean(1)}
