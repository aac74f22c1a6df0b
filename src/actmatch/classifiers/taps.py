"""Activation taps: forward hooks on block outputs found by name (method.md §3).

Hooks are registered in a context manager that removes them on exit. Each tap records its
latest output and how many times it fired, so a tap on a shared module (torchvision's
BasicBlock calls one ReLU twice) shows up as two calls per forward instead of silently
keeping the second one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["ActivationTaps", "tapped", "as_positions"]


class ActivationTaps:
    """The outputs of ``names`` (submodule paths) on the latest forward, and hook call counts."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.outputs: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {n: 0 for n in self.names}

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            self.outputs[name] = output[0] if isinstance(output, tuple) else output
            self.calls[name] += 1
        return hook

    def ordered(self) -> list[torch.Tensor]:
        """Outputs in tap order; raises if a tap did not fire on the latest forward."""
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise RuntimeError(f"taps {missing} did not fire; is the forward pass inside the context?")
        return [self.outputs[n] for n in self.names]


@contextlib.contextmanager
def tapped(model: nn.Module, names: Sequence[str]) -> Iterator[ActivationTaps]:
    """Register forward hooks on ``model.get_submodule(name)`` for each name; remove them on exit."""
    taps = ActivationTaps(names)
    handles = []
    try:
        for name in taps.names:
            try:
                module = model.get_submodule(name)
            except AttributeError as err:
                raise KeyError(f"tap {name!r} is not a submodule of {type(model).__name__}: {err}") from None
            handles.append(module.register_forward_hook(taps._hook(name)))
        yield taps
    finally:
        for h in handles:
            h.remove()


def as_positions(a: torch.Tensor) -> torch.Tensor:
    """Activations as ``(B, P, C)``: conv maps ``(B, C, H, W)`` → positions H·W; token sequences
    ``(B, N, C)`` stay as they are; vectors ``(B, C)`` become one position."""
    if a.dim() == 4:
        return a.flatten(2).transpose(1, 2)
    if a.dim() == 3:
        return a
    if a.dim() == 2:
        return a[:, None, :]
    raise ValueError(f"cannot compare activations of shape {tuple(a.shape)}")
