"""The GLANCE datasets (method.md §8.2), kept apart from the training code so that the stages that
build them depend on nothing else: the controlled digits and the cached context features.

- :func:`build_morpho_mnist`: the recipe of :mod:`.perturb` on every mnist digit (split, ids and
  labels kept), the drawn causes in the index, the true edges in the meta;
- :func:`write_features` / :func:`read_features`: the Morpho-MNIST context features of every image.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from actmatch.data.store import ImageDataset, write_array_dataset
from actmatch.glance.morpho import FEATURES, measure_batch
from actmatch.glance.perturb import TRUE_EDGES, controlled_digits
from actmatch.core.io import atomic_dir

__all__ = ["build_morpho_mnist", "write_features", "read_features"]

log = logging.getLogger(__name__)


def build_morpho_mnist(source: ImageDataset, out: str | Path, seed: int, scale: int, workers: int = 1,
                       progress: bool = False) -> None:
    """The recipe on every digit of ``source`` (ids, labels and split kept); the drawn causes become the
    index columns ``set_thickness``, ``set_intensity``, ``set_slant``; ``meta.true_edges`` the graph."""
    if not isinstance(source.images, np.ndarray) or source.images.shape[-1] != 1:
        raise ValueError(f"morpho_mnist needs a grey array dataset (mnist), got {source.name}")
    digits, causes = controlled_digits(source.images[..., 0], seed, scale, workers, progress)
    index = source.index.copy()
    for k in causes.columns:
        index[f"set_{k}"] = causes[k].to_numpy()
    meta = {"name": "morpho_mnist", "class_names": source.class_names,
            "source": f"built from data/{source.name}: Morpho-MNIST recipe thickness -> intensity, thickness -> slant "
                      "(actmatch.glance.perturb)", "true_edges": [list(e) for e in TRUE_EDGES], "seed": seed}
    write_array_dataset(out, digits[..., None], index, meta)


def write_features(ds: ImageDataset, out: str | Path, scale: int, workers: int = 1, progress: bool = False) -> None:
    """``out/features.csv``: id and the Morpho-MNIST features (method.md §8.2) of every image of ``ds``."""
    if not isinstance(ds.images, np.ndarray) or ds.images.shape[-1] != 1:
        raise ValueError(f"Morpho-MNIST features need grey digits in an array dataset, got {ds.name}")
    t0 = time.perf_counter()
    table = measure_batch(ds.images, scale, workers=workers, progress=progress)
    table.insert(0, "id", ds.index["id"].astype(str).to_numpy())
    with atomic_dir(out) as tmp:
        table.to_csv(tmp / "features.csv", index=False, float_format="%.6g")
        (tmp / "meta.json").write_text(json.dumps({"dataset": ds.name, "n": len(table), "scale": scale,
                                                   "features": list(FEATURES)}, indent=2) + "\n")
    # no wall time in `out` (train_glance depends on it); the stage's time is in the stage-time log
    log.info("features of %d images in %.1f s", len(table), time.perf_counter() - t0)


def read_features(folder: str | Path, ds: ImageDataset, names: list[str]) -> np.ndarray:
    """The ``names`` columns for every image of ``ds``, in its order; an error names missing ids."""
    path = Path(folder) / "features.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no context features at {path}; run the morpho_features stage first")
    table = pd.read_csv(path, dtype={"id": str}).set_index("id")
    ids = ds.index["id"].astype(str)
    missing = ids[~ids.isin(table.index)]
    if len(missing):
        raise KeyError(f"{path} has no features for {len(missing)} images of {ds.name} (e.g. {list(missing[:3])}); "
                       "were they measured on another dataset?")
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        raise KeyError(f"{path} has no columns {unknown}; it has {list(table.columns)}")
    return table.loc[ids, names].to_numpy(np.float64)
