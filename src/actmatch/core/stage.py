"""What every stage script shares (style.md: a stage is wiring): its argument parser, the run lookup
that names the known runs, the dvclive epoch callback, and :func:`run_stage`, which sets up logging,
loads plugins, runs the check it is handed on params.yaml (every stage passes the whole-file check,
:func:`actmatch.check.check_file`: this bottom layer imports nothing above it), runs the stage and turns a
known error into one clear line and exit code 2 (a message that names the problem, no traceback noise)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from actmatch.core.errors import ActmatchError
from actmatch.core.plugins import load_plugins
from actmatch.core.provenance import cpu_model

__all__ = ["run_stage", "stage_parser", "lookup", "epoch_logger"]

_KNOWN = (ActmatchError, FileNotFoundError, KeyError, ValueError)
# Under `dvc repro` (DVC sets DVC_STAGE), each finished stage appends its wall time, from process start, here:
# tools/stage_times.py turns the log into the per-stage table (measurements/stage_times.json).
TIMINGS = os.environ.get("ACTMATCH_TIMINGS", "data/state/stage_times.jsonl")
T = TypeVar("T")


def stage_parser(doc: str | None, *required: str, progress: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the stage's required ``--flags``, ``--params`` and ``--no-progress``."""
    ap = argparse.ArgumentParser(description=doc)
    for flag in required:
        ap.add_argument(flag, required=True)
    ap.add_argument("--params", default="params.yaml")
    if progress:
        ap.add_argument("--no-progress", action="store_true", help="no progress bars (DVC runs)")
    return ap


def lookup(mapping: Mapping[str, T], key: str, where: str) -> T:
    """``mapping[key]``, or a KeyError naming ``where`` and the known keys."""
    if key not in mapping:
        raise KeyError(f"{where} has no {key!r}; known: {sorted(mapping)}")
    return mapping[key]


def epoch_logger(live: Any, prefix: str) -> Callable[[int, dict[str, float]], None]:
    """An ``on_epoch(epoch, means)`` callback that logs ``<prefix>/<name>`` to a dvclive ``Live`` and steps."""
    def on_epoch(epoch: int, means: dict[str, float]) -> None:
        for k, v in means.items():
            live.log_metric(f"{prefix}/{k}", v)
        live.next_step()
    return on_epoch


def _params_path(argv: Sequence[str] | None) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--params", default="params.yaml")
    return pre.parse_known_args(argv)[0].params


def run_stage(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None, *,
              check: Callable[[str], object] | None) -> int:
    """Run a stage's ``main``; known errors print ``error: ...`` on stderr and return 2. ``check`` is called
    first with the ``--params`` path (stages pass :func:`actmatch.check.check_file`, the whole-file check;
    ``None``: no check)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    resumed = _has_state(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins()  # ACTMATCH_PLUGINS: extra registry entries / mirrors (tests, labs)
        if check is not None:
            check(_params_path(sys.argv[1:] if argv is None else argv))
        main(argv)
    except _KNOWN as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    _log_time(resumed)
    return 0


def _has_state(argv: Sequence[str]) -> bool:
    """Whether a killed earlier run of this stage left state behind (``--state PATH``): the stage resumes
    from it, so its wall time covers only the rest of its work."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--state")
    state = pre.parse_known_args(argv)[0].state
    if not state:
        return False
    path = Path(state)  # the stage's own names: PATH, PATH.<part>, PATH-seed<k>[.<part>] (not PATH-<other run>)
    return path.exists() or any(p for pattern in (".*", "-seed*") for p in path.parent.glob(path.name + pattern))


def _log_time(resumed: bool = False) -> None:
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return
    import psutil

    started = psutil.Process().create_time()  # includes interpreter start and imports
    path = os.path.join(os.environ.get("DVC_ROOT", "."), TIMINGS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps({"stage": stage, "seconds": round(time.time() - started, 2), "end": round(time.time()),
                             "threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None,
                             "cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                             else os.cpu_count(), **({"resumed": True} if resumed else {})}) + "\n")
