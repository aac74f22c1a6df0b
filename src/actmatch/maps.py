"""One interface for every map-producing method the evaluate stage scores beside the baselines (ours,
SyCE/CyCE, GLANCE, any future one): a :class:`MapSet` has a table ``name``, the image ``ids`` it has
maps for, the ``maps`` ``(N, 1, H, W)`` float32, the rows matching a list of ids, and ``cost``: one
explanation from a normalized input, for timing. A set with ``hard`` masks (ours) is scored at its
own masks; one without is binarized per image to the area of the reference regime.

:class:`StoredMaps` is the reader of the common folder format (``config.yaml`` naming the method,
``maps.npz`` with ``ids`` and ``map`` (N, H, W)); a method subclasses it to say how it is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import yaml

from actmatch.classifiers.registry import Classifier

__all__ = ["MapSet", "StoredMaps", "rows_for"]


@runtime_checkable
class MapSet(Protocol):
    name: str
    ids: list[str]
    maps: torch.Tensor
    hard: torch.Tensor | None

    def rows(self, ids: list[str]) -> tuple[list[int], list[int]]: ...

    def cost(self, clf: Classifier) -> Callable[[torch.Tensor], Any]: ...


def rows_for(have: list[str], ids: list[str]) -> tuple[list[int], list[int]]:
    """Positions in ``ids`` that ``have`` covers, and the matching positions in ``have``."""
    pos = {k: j for j, k in enumerate(have)}
    keep = [j for j, k in enumerate(ids) if k in pos]
    return keep, [pos[ids[j]] for j in keep]


class StoredMaps:
    """A method's maps as stored by its stage (``config.yaml`` + ``maps.npz``); no hard masks."""

    hard: torch.Tensor | None = None

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.record = yaml.safe_load((self.folder / "config.yaml").read_text())
        self.name: str = self.record["method"]
        with np.load(self.folder / "maps.npz") as z:
            self.ids = [str(i) for i in z["ids"]]
            self.maps = torch.from_numpy(z["map"].astype(np.float32))[:, None]

    def rows(self, ids: list[str]) -> tuple[list[int], list[int]]:
        return rows_for(self.ids, ids)

    def cost(self, clf: Classifier) -> Callable[[torch.Tensor], Any]:
        raise NotImplementedError(f"{type(self).__name__} must say how one explanation is computed")
