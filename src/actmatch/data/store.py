"""The one on-disk format every dataset is materialized in, and its reader.

A dataset is a folder ``data/<name>/`` holding:

``meta.json``
    ``name``, ``source`` (where the pixels came from), ``class_names`` (index -> name, or
    ``null`` where labels are unknown), ``storage`` (``"array"`` or ``"files"``), ``n``,
    ``seed`` and any builder settings.
``index.csv``
    One row per image, in storage order: ``id`` (str), ``label`` (int, -1 = unknown),
    ``split`` (``train`` | ``test``); for ``storage = files`` also ``file`` (relative to
    ``images/``); for localization sets also the ground-truth box ``x0, y0, x1, y1``
    (pixels, ``x1``/``y1`` exclusive). Extra descriptive columns are allowed.
``images.npy`` (``storage = array``)
    uint8 array ``(N, H, W, C)``, every image the same size.
``images/`` (``storage = files``)
    One PNG or JPEG per row, any size, kept at full resolution.

Writers go through :func:`actmatch.core.io.atomic_dir`, so a folder is either complete or absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from actmatch.core.io import atomic_dir

__all__ = ["ImageDataset", "load_dataset", "write_array_dataset", "write_file_dataset"]

BOX_COLUMNS = ("x0", "y0", "x1", "y1")


@dataclass(frozen=True)
class ImageDataset:
    """A materialized dataset. ``images`` is uint8 ``(N, H, W, C)`` or a list of such arrays."""

    name: str
    images: np.ndarray | list[np.ndarray]
    index: pd.DataFrame
    meta: dict[str, Any]

    @property
    def labels(self) -> np.ndarray:
        return self.index["label"].to_numpy(np.int64)

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names")

    @property
    def boxes(self) -> np.ndarray | None:
        """Ground-truth boxes ``(N, 4)`` as ``x0, y0, x1, y1`` (exclusive ends), if any."""
        if not set(BOX_COLUMNS) <= set(self.index.columns):
            return None
        return self.index[list(BOX_COLUMNS)].to_numpy(np.int64)

    def split_indices(self, split: str) -> np.ndarray:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return np.flatnonzero(self.index["split"].to_numpy() == split)

    def __len__(self) -> int:
        return len(self.index)


def _check_index(index: pd.DataFrame, n: int) -> None:
    missing = {"id", "label", "split"} - set(index.columns)
    if missing:
        raise ValueError(f"index is missing columns {sorted(missing)}")
    if len(index) != n:
        raise ValueError(f"index has {len(index)} rows but there are {n} images")
    bad = set(index["split"]) - {"train", "test"}
    if bad:
        raise ValueError(f"split values must be 'train' or 'test', got {sorted(bad)}")
    if index["id"].duplicated().any():
        raise ValueError("image ids must be unique")


def write_array_dataset(out: str | Path, images: np.ndarray, index: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write a same-size dataset: ``images`` uint8 ``(N, H, W, C)``."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    _check_index(index, len(images))
    with atomic_dir(out) as tmp:
        np.save(tmp / "images.npy", images)
        index.to_csv(tmp / "index.csv", index=False)
        full = {**meta, "storage": "array", "n": int(len(images)), "shape": list(images.shape[1:])}
        (tmp / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")


def write_file_dataset(out: str | Path, files: dict[str, Path | bytes | np.ndarray], index: pd.DataFrame,
                       meta: dict[str, Any]) -> None:
    """Write a variable-size dataset: ``files`` maps each ``index.file`` name to a source path or
    the encoded bytes to copy as they are, or to a uint8 ``(H, W, C)`` array saved as PNG."""
    _check_index(index, len(files))
    if "file" not in index.columns or set(index["file"]) != set(files):
        raise ValueError("index.file must name exactly the files given")
    with atomic_dir(out) as tmp:
        (tmp / "images").mkdir()
        for name, src in files.items():
            if isinstance(src, np.ndarray):
                Image.fromarray(src.squeeze(-1) if src.shape[-1] == 1 else src).save(tmp / "images" / name)
            elif isinstance(src, bytes):
                (tmp / "images" / name).write_bytes(src)
            else:
                (tmp / "images" / name).write_bytes(Path(src).read_bytes())
        index.to_csv(tmp / "index.csv", index=False)
        full = {**meta, "storage": "files", "n": int(len(index))}
        (tmp / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "I", "1") else "RGB"))
    return arr[..., None] if arr.ndim == 2 else arr


def load_dataset(folder: str | Path) -> ImageDataset:
    """Read a dataset folder written by this module. Raises a clear error if it is incomplete."""
    folder = Path(folder)
    for need in ("meta.json", "index.csv"):
        if not (folder / need).is_file():
            raise FileNotFoundError(f"{folder} is not a materialized dataset: {need} is missing "
                                    f"(run `dvc repro` to build it)")
    meta = json.loads((folder / "meta.json").read_text())
    index = pd.read_csv(folder / "index.csv", dtype={"id": str, "split": str, "file": str})
    if meta["storage"] == "array":
        images: np.ndarray | list[np.ndarray] = np.load(folder / "images.npy")
    elif meta["storage"] == "files":
        images = [_read_image(folder / "images" / f) for f in index["file"]]
    else:
        raise ValueError(f"{folder}/meta.json: unknown storage {meta['storage']!r}; expected 'array' or 'files'")
    _check_index(index, len(images))
    return ImageDataset(name=meta["name"], images=images, index=index, meta=meta)
