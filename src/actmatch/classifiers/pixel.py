"""A frozen classifier on pixel-space images, for methods that generate images (SyCE/CyCE's generators,
GLANCE's surrogate) rather than masks: inputs in [0, 1], normalized inside."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from actmatch.classifiers.registry import Classifier
from actmatch.data.store import ImageDataset

__all__ = ["PixelClassifier", "pixel_classifier", "pixel_inputs"]


class PixelClassifier(nn.Module):
    """The frozen classifier on pixel-space [0, 1] images ``(B, C, H, W)``: normalizes, then calls it."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def pixel_inputs(ds: ImageDataset, idx: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Images ``idx`` of ``ds`` as float32 ``(N, C, H, W)`` in [0, 1] (the generators' space)."""
    if not isinstance(ds.images, np.ndarray):
        raise ValueError(f"pixel-space methods need a same-size array dataset (MNIST-like), got {ds.name}")
    return torch.from_numpy(ds.images[idx]).permute(0, 3, 1, 2).float().div(255.0).to(device)


def pixel_classifier(clf: Classifier, ds: ImageDataset) -> PixelClassifier:
    """The frozen classifier on pixel-space images; its input must be the dataset's own size and channels
    (the small classifiers the pipeline trains), so no resizing happens between a generator and it."""
    shape = ds.images.shape[1:] if isinstance(ds.images, np.ndarray) else None
    if shape is None or (shape[0], shape[2]) != (clf.input_size, clf.in_channels):
        raise ValueError(f"classifier {clf.name} takes {clf.in_channels}x{clf.input_size}px inputs but {ds.name} has "
                         f"images {shape}; pixel-space methods need a classifier trained on the dataset itself")
    dev = next(clf.model.parameters()).device
    return PixelClassifier(clf.model, clf.mean, clf.std).to(dev).eval()
