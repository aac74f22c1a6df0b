"""Profiles: named overlays on params.yaml (``profiles/<name>.yaml``), applied in one way:

    actmatch profile paper        # merges profiles/paper.yaml into params.yaml, validated
    dvc repro                     # (or dvc exp run / --queue for grids)

Top-level keys starting with ``x-`` only hold YAML anchors the profile reuses and are dropped. The
overlay is merged key by key (mappings recursively; lists and scalars replaced), the result is
validated as a whole before params.yaml is touched, and the file is replaced atomically with its
comments kept (ruamel round-trip). Applying a profile twice changes nothing; ``git checkout
params.yaml`` returns to the offline default."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from actmatch.config.base import ParamsError

from actmatch.check import parse_params
from actmatch.core.io import atomic_path

__all__ = ["PROFILES_DIR", "available", "merge", "apply_profile"]

PROFILES_DIR = Path("profiles")


def available(profiles_dir: str | Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))


def merge(base: Any, overlay: Any) -> Any:
    """``overlay`` on ``base``: mappings merged recursively (in place, keeping ``base``'s comments),
    anything else replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        for k, v in overlay.items():
            base[k] = merge(base[k], v) if k in base else v
        return base
    return overlay


def _flow_lists(value: Any) -> Any:
    """Lists of scalars written ``[a, b]`` as params.yaml writes them (not one item per line)."""
    if isinstance(value, dict):
        return {k: _flow_lists(v) for k, v in value.items()}
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()
        return seq
    return value


def apply_profile(name: str, params: str | Path = "params.yaml", profiles_dir: str | Path = PROFILES_DIR,
                  dry_run: bool = False) -> str:
    """Merge ``profiles_dir/<name>.yaml`` into ``params``; returns the new text (not written if ``dry_run``)."""
    src = Path(profiles_dir) / f"{name}.yaml"
    if not src.is_file():
        known = ", ".join(available(profiles_dir)) or "none"
        raise ParamsError(f"no profile {name!r} ({src} not found); known profiles: {known}")
    params = Path(params)
    if not params.is_file():
        raise ParamsError(f"{params}: params file not found")
    rt = YAML()  # round-trip: comments and key order of params.yaml survive
    rt.width = 110
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = rt.load(params.read_text())
    overlay = YAML(typ="safe", pure=True).load(src.read_text())
    if not isinstance(doc, CommentedMap) or not isinstance(overlay, dict):
        raise ParamsError(f"{params} and {src} must both be YAML mappings")
    # top-level "x-" keys only hold YAML anchors for the rest of the profile (docker-compose's convention)
    overlay = {k: v for k, v in overlay.items() if not str(k).startswith("x-")}
    merged = merge(doc, _flow_lists(overlay))
    buf = io.StringIO()
    rt.dump(merged, buf)
    text = buf.getvalue()
    parse_params(YAML(typ="safe", pure=True).load(text), f"{params} + profile {name}")  # validate before writing
    if not dry_run:
        with atomic_path(params) as tmp:
            Path(tmp).write_text(text)
    return text
