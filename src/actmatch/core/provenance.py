"""Where numbers came from: the machine and the software that computed them (issue 27 item 9, issue 28).

Every results file that carries numbers records :func:`machine` beside them, so a number read later
says which CPU (or GPU), how many threads and which torch produced it. The same machine, threads and
versions give the same dict, so a rerun on one machine still writes byte-identical files."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from typing import Any

__all__ = ["machine", "cpu_model"]


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(device: Any = None) -> dict[str, Any]:
    """``{cpu, cores, torch_threads, torch, python, device[, gpu]}`` for the current process; ``device``
    (a torch.device or its string) is the device the numbers were computed on (default: cpu)."""
    import torch

    dev = str(device) if device is not None else "cpu"
    out: dict[str, Any] = {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                           else os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "torch": torch.__version__, "python": platform.python_version(), "device": dev}
    if dev.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(torch.device(dev))
    return out
