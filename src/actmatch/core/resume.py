"""Resumable state: a stage saves its progress under a key made from its settings, and a rerun
with the same settings picks up where the last one stopped (a state file written for other
settings is ignored, never resumed)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from actmatch.core.io import save_torch

__all__ = ["state_key", "load_state", "save_state"]

log = logging.getLogger(__name__)


def state_key(*parts: Any) -> str:
    """A short hash of a run's settings (pydantic models, dataclasses' dicts, numbers, strings)."""
    text = json.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in parts], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_state(path: Path | None, key: str) -> dict[str, Any] | None:
    """The state saved at ``path`` for ``key``; ``None`` when there is none or it is for other settings."""
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("key") != key:
        log.warning("%s was written for other settings; starting afresh", path)
        return None
    return state


def save_state(path: Path | None, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (a kill mid-write leaves the previous state); no-op without a path."""
    if path is not None:
        save_torch(state, path)
