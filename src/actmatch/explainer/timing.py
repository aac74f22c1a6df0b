"""The explainer stages' wall times, kept beside their outputs, never inside them (issue 28).

A wall time changes on every run, so a file holding one inside an output folder would change that
folder's hash and rerun everything that depends on it. ``train_explainer@<group>`` and
``explain_images@<run>`` therefore write their times to their own file, ``results/timing/<stage>/<name>.json``
(``{"stage", "group", "regimes", "machine", "seeds": {"seed<k>": {...}}}``, the machine from
:func:`actmatch.core.provenance.machine`), which only the report reads: our rows' milliseconds per
explanation in Table 1 come from here (:func:`our_costs`), not from timing the regimes again.

What one explanation costs, per regime (median over seeds):

- ``amortized``: one forward pass of the trained U-Net, ``amortized_ms_per_image`` (all evaluation
  images in one batch, divided by their number);
- ``finetune``: its per-image steps from the amortized net, ``finetune_seconds`` over the images;
- a per-image regime: ``seconds`` over the images (one at a time, or ``batch`` at once);
- ``<regime>_last``: the same computation as its regime (only the mask kept differs), the same time.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from actmatch.core.io import write_json
from actmatch.core.provenance import machine

__all__ = ["write_timing", "our_costs", "LAST"]

LAST = "_last"  # suffix of a regime's last-mask row: the same computation as its regime


def write_timing(path: Path | None, stage: str, group: str, device: Any, seeds: dict[str, dict[str, Any]],
                 **fields: Any) -> None:
    """Write one stage's wall times (per seed) and the machine that measured them; no-op without a path."""
    if path is not None:
        write_json(path, {"stage": stage, "group": group, "machine": machine(device), "seeds": seeds, **fields})


def _timed(seeds: dict[str, dict[str, Any]], key: str, part: str) -> list[float]:
    """The seeds' ``key`` values, leaving out a seed whose ``part`` resumed from a killed run's state (it
    timed only the rest of the work)."""
    return [float(s[key]) for s in seeds.values() if s.get(key) is not None and part not in s.get("resumed", ())]


def _ms(vals: list[float]) -> float | None:
    return statistics.median(vals) if vals else None


def _read(path: Path) -> dict[str, Any]:
    rec = json.loads(path.read_text())
    if not isinstance(rec, dict) or not isinstance(rec.get("seeds"), dict):
        raise ValueError(f"{path} is not an explain stage's timing file (no 'seeds' mapping)")
    return rec


def our_costs(timing: str | Path, group: str, prefix: str = "ours:") -> dict[str, dict[str, Any]]:
    """``{"ours:<regime>": {"ms_per_explanation", "n", "source"}}`` for the explainer group ``group``, read
    from the explain stages' timing files under ``timing`` (``train_explainer/``, ``explain_images/``);
    ``n`` is the number of seeds the median is over: a seed that resumed from a killed run's state
    (``"resumed"`` in its record) timed only the rest of its work and is left out. Regimes without a timing
    file (or with every seed resumed) are left out."""
    timing = Path(timing)
    out: dict[str, dict[str, Any]] = {}

    def add(regime: str, vals: list[float], source: Path, last: bool) -> None:
        if not vals:
            return
        entry = {"ms_per_explanation": _ms(vals), "n": len(vals), "source": source.as_posix()}
        out[prefix + regime] = entry
        if last:
            out[prefix + regime + LAST] = {**entry, "same_as": prefix + regime}

    amortized = timing / "train_explainer" / f"{group}.json"
    if amortized.is_file():
        seeds = _read(amortized)["seeds"]
        add("amortized", _timed(seeds, "amortized_ms_per_image", "prediction"), amortized, False)
        add("finetune", _timed(seeds, "finetune_ms_per_image", "finetune"), amortized, True)
    for path in sorted((timing / "explain_images").glob("*.json")):
        rec = _read(path)
        if rec.get("group") == group:
            seeds = rec["seeds"]
            add(rec["regime"], _timed(seeds, "ms_per_image", "per_image"), path, True)
    return out
