"""Turning a dataset's images into the classifier's normalized input tensor on the run's device,
in parallel worker processes with pinned memory when ``compute.loader_workers`` > 0 (the GPU
path: decoding and resizing thousands of Imagenette photos is CPU work the GPU waits on).
The result is the same tensor either way (tested)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from actmatch.classifiers.registry import Classifier

__all__ = ["load_inputs"]


class _Preprocessed(Dataset):
    def __init__(self, clf: Classifier, images: Sequence[np.ndarray] | np.ndarray, idx: Sequence[int]) -> None:
        self.clf, self.images, self.idx = clf, images, list(idx)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, j: int) -> torch.Tensor:
        return self.clf.preprocess(self.images[self.idx[j]])


def load_inputs(clf: Classifier, images: Sequence[np.ndarray] | np.ndarray, idx: Sequence[int],
                device: torch.device, workers: int = 0, batch_size: int = 64) -> torch.Tensor:
    """``clf.preprocess`` of ``images[i]`` for ``i`` in ``idx``, stacked ``(N, C, S, S)`` on ``device``."""
    if workers == 0 or len(idx) == 0:
        return clf.preprocess_batch([images[i] for i in idx]).to(device)
    loader = DataLoader(_Preprocessed(clf, images, idx), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    return torch.cat([b.to(device, non_blocking=True) for b in loader])
