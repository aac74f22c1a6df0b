"""Rows of the ``full`` profile (issue 28): the contrast computations that did not fit the offline
default's CPU budget live in ``profiles/full.yaml``, an overlay on params.yaml. The report names them, so
a reader of RESULTS.md knows which rows are absent and how to get them; read from the overlay itself,
compared with the params the pipeline ran (nothing to keep in step by hand)."""

from __future__ import annotations

from typing import Any

__all__ = ["full_only", "full_only_markdown"]


def _baselines(evaluate: dict[str, Any], group: str) -> set[str]:
    run = (evaluate.get("runs") or {}).get(group) or {}
    return set((evaluate.get("defaults") or {}).get("baselines") or {}) | set(run.get("baselines") or {})


def full_only(params: dict[str, Any], overlay: dict[str, Any]) -> list[str]:
    """What the overlay adds that ``params`` lacks, one phrase per row: SyCE/CyCE runs (``syce.runs``) and
    baselines (``evaluate.defaults.baselines``, ``evaluate.runs.<group>.baselines``). Empty when the profile
    is applied (or adds none of these)."""
    rows = []
    have = set((params.get("syce") or {}).get("runs") or {})
    for g in (overlay.get("syce") or {}).get("runs") or {}:
        if g not in have:
            rows.append(f"SyCE and CyCE on `{g}` (`train_syce@{g}`, scored by `evaluate@{g}`)")
    ev, extra = params.get("evaluate") or {}, overlay.get("evaluate") or {}
    groups = sorted((ev.get("runs") or {}))
    for b in (extra.get("defaults") or {}).get("baselines") or {}:
        missing = [g for g in groups if b not in _baselines(ev, g)]
        if missing:
            rows.append(f"`{b}` on " + ", ".join(f"`{g}`" for g in missing))
    for g, run in (extra.get("runs") or {}).items():
        for b in (run or {}).get("baselines") or {}:
            if g in groups and b not in _baselines(ev, g):
                rows.append(f"`{b}` on `{g}`")
    return rows


def full_only_markdown(rows: list[str]) -> str:
    """The RESULTS.md paragraph naming the full-only rows (empty string when there are none)."""
    if not rows:
        return ""
    return ("These rows are in the `full` profile only (over the offline default's CPU budget, "
            "`profiles/full.yaml`): " + "; ".join(rows) + ". Get them with `actmatch profile full && dvc repro` "
            "(`actmatch profile default` goes back).\n")
