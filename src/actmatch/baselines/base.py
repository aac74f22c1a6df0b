"""The baseline interface: one class per method, one override point (:meth:`Method.explain`)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from actmatch.metrics.curves import pixel_ranks, top_fraction_masks

__all__ = ["Method", "BASELINES", "register", "build_baseline", "binarize_to_area", "to_unit"]


class Method:
    """A saliency method. Subclasses set ``name`` and implement :meth:`explain`."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}  # every setting the method reads, with its default
    control: ClassVar[bool] = False  # a control (no evidence used): tables list it after every baseline

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise KeyError(f"baseline {self.name!r}: unknown setting(s) {unknown}; allowed: "
                           f"{sorted(self.defaults) or 'none'}")
        self.settings = {**self.defaults, **settings}

    def explain(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, baseline: torch.Tensor,
                areas: torch.Tensor, *, layer: str | None = None, ids: list[str] | None = None) -> torch.Tensor:
        """Saliency ``(B, 1, H, W)`` float for normalized images ``x`` ``(B, C, H, W)``, labels ``y``
        ``(B,)``, removal values ``baseline`` (like ``x``) and target areas ``(B,)`` in [0, 1];
        ``layer`` names the classifier's last feature block (used by the CAM methods); ``ids`` names
        the images (a random method seeds each image by its id, so chunking changes nothing)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"


BASELINES: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    BASELINES[cls.name] = cls
    return cls


def build_baseline(name: str, **settings: Any) -> Method:
    """``name`` → an instance with ``settings`` (unknown names list the known ones)."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(sorted(BASELINES))}")
    return BASELINES[name](**settings)


def binarize_to_area(saliency: torch.Tensor, areas: torch.Tensor, tie_seed: int) -> torch.Tensor:
    """Hard masks ``(B, 1, H, W)``: the round(area · H · W) highest-saliency pixels of each image
    (ties broken by the seeded order of :func:`actmatch.metrics.curves.pixel_ranks`)."""
    return top_fraction_masks(pixel_ranks(saliency, tie_seed), areas)


def to_unit(saliency: torch.Tensor) -> torch.Tensor:
    """Per-image min-max rescaling to [0, 1] (a constant map becomes 0); ranking is unchanged."""
    flat = saliency.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    out = (flat - lo) / (hi - lo).clamp_min(1e-12)
    return torch.where(hi > lo, out, torch.zeros_like(out)).view_as(saliency)
