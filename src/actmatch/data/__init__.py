"""Datasets: one on-disk format (:mod:`.store`), builders per source (:mod:`.sources`,
:mod:`.cluttered`), and the only network code (:mod:`.fetch`)."""

from actmatch.data.store import ImageDataset, load_dataset

__all__ = ["ImageDataset", "load_dataset"]
