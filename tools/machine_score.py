"""A machine score: one fixed torch workload of about 10 s, so that stage times measured on two machines
compare as ratios (issue 28).

    python tools/machine_score.py                      # measurements/machine_score.json
    python tools/machine_score.py --seconds 3 --out /tmp/score.json

The workload is the kind of work the pipeline does on the CPU: a small conv net (four 3x3 conv layers,
a pooled linear head; 242,122 parameters) forward and backward plus an SGD step, on a fixed batch of
16 RGB 32x32 images, float32, at the stages' torch threads (torch's default, = the cores the process may
use; --threads to pin). After a warm-up it runs blocks of 10 iterations until ``--seconds`` have
passed; the score is the median block's iterations per second (a block slowed by another process
sharing the CPU counts once, as one block), with every block's rate and the load average beside it, and
the machine (:func:`actmatch.core.provenance.machine`). Twice the score: the stages should take about
half the time. tools/stage_times.py reads this file into the stage-time table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 10  # iterations per timed block
OUTPUTS = ("measurements/machine_score.json",)  # docs/generated.md


def _net() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(128, 128, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def measure(seconds: float = 10.0, threads: int | None = None, warmup: int = 5) -> dict[str, Any]:
    """Run the fixed workload for about ``seconds``; the score and what it was measured on."""
    import torch
    from torch.nn import functional as F

    from actmatch.core.provenance import machine

    if seconds <= 0:
        raise ValueError(f"--seconds must be positive, got {seconds}")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    net = _net()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    rates: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        t0 = time.perf_counter()
        for _ in range(BLOCK):
            step()
        rates.append(BLOCK / (time.perf_counter() - t0))
    return {"score": round(statistics.median(rates), 3), "unit": "iterations per second (higher is faster)",
            "blocks": [round(r, 3) for r in rates], "seconds": round(time.perf_counter() - start, 2),
            "workload": "4 conv3x3 (32-64-128-128 ch) + linear, batch 16x3x32x32 float32, forward+backward+SGD step",
            "parameters": sum(p.numel() for p in net.parameters()), "machine": machine("cpu"),
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "measured_at": round(time.time())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to run the timed blocks (default 10)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, like the stages)")
    ap.add_argument("--out", default=str(ROOT / "measurements/machine_score.json"))
    args = ap.parse_args(argv)
    try:
        out = measure(args.seconds, args.threads)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"generator": "tools/machine_score.py", **out}, indent=2) + "\n")
    m = out["machine"]
    print(f"machine score {out['score']:.2f} it/s on {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads; "
          f"load average {out['load_average']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
