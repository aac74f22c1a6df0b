"""Cost (method.md §5): wall-clock milliseconds and peak memory of one explanation, measured
the same way for every method in the same run and on the same device.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above the level at the start; on the
CPU, the peak resident set size of this process above its level at the start, sampled every
millisecond by a background thread (psutil) — an approximation: short spikes between samples
are missed and memory the allocator kept from earlier work is not counted again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psutil
import torch

__all__ = ["measure"]

T = TypeVar("T")


class _RssPeak:
    def __init__(self, interval: float = 0.001) -> None:
        self.proc, self.interval = psutil.Process(), interval
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> "_RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def measure(fn: Callable[[], T], device: torch.device | str = "cpu") -> tuple[T, float, float]:
    """Run ``fn()`` once; return its result, milliseconds, and peak extra memory in MiB."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        ms = 1000.0 * (time.perf_counter() - t0)
        return out, ms, (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with _RssPeak() as rss:
        t0 = time.perf_counter()
        out = fn()
        ms = 1000.0 * (time.perf_counter() - t0)
    return out, ms, (rss.peak - rss.start) / 2**20
