"""Profiles: named overlays on params.yaml (``profiles/<name>.yaml``), applied in one way:

    actmatch profile quick        # merges profiles/quick.yaml into params.yaml, validated
    dvc repro                     # (or dvc exp run / --queue for grids)
    actmatch profile default      # back to the params.yaml you had before the first profile

The first profile applied saves the params file it changes as ``params.default.yaml`` (beside it);
``default`` restores that file and removes the copy (with no copy, params.yaml is the default already).

Top-level keys starting with ``x-`` only hold YAML anchors the profile reuses and are dropped, except
``x-replace``: a list of dotted key paths whose mappings the overlay replaces instead of merging into
(e.g. the quick profile's two ablation variants replace the whole grid), and ``x-own-lock: true``: the
profile keeps its own ``dvc.lock`` (the quick smoke run): the pipeline's lock beside params.yaml is set
aside as ``dvc.default.lock`` and ``default`` puts it back, so a smoke run neither overwrites the default's
record nor pays for rewriting it after every stage (DVC rewrites the whole lock each time; the default's
is ~15,000 lines, about 3 s a rewrite on 2 cores). The rest of the overlay is
merged key by key (mappings recursively; lists and scalars replaced), the result is
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

__all__ = ["PROFILES_DIR", "DEFAULT", "available", "merge", "apply_profile", "backup_path", "lock_paths"]

PROFILES_DIR = Path("profiles")
DEFAULT = "default"


def backup_path(params: str | Path) -> Path:
    """Where the params file is kept while a profile is applied: ``params.default.yaml`` beside it."""
    params = Path(params)
    return params.with_name(f"{params.stem}.default{params.suffix}")


def lock_paths(params: str | Path) -> tuple[Path, Path]:
    """The pipeline's lock beside the params file, and where an ``x-own-lock`` profile sets it aside."""
    params = Path(params)
    return params.with_name("dvc.lock"), params.with_name("dvc.default.lock")


def available(profiles_dir: str | Path = PROFILES_DIR) -> list[str]:
    return sorted([DEFAULT, *(p.stem for p in Path(profiles_dir).glob("*.yaml"))])


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
    """Merge ``profiles_dir/<name>.yaml`` into ``params``; returns the new text (not written if ``dry_run``).
    ``default`` restores the params file saved when the first profile was applied."""
    params = Path(params)
    if name == DEFAULT:
        saved = backup_path(params)
        lock, aside = lock_paths(params)
        if not saved.is_file():
            if aside.is_file() and not dry_run:
                aside.replace(lock)
            return params.read_text() if params.is_file() else ""
        text = saved.read_text()
        parse_params(YAML(typ="safe", pure=True).load(text), str(saved))
        if not dry_run:
            with atomic_path(params) as tmp:
                Path(tmp).write_text(text)
            saved.unlink()
            if aside.is_file():  # the default's own lock back (the smoke run's is dropped)
                aside.replace(lock)
        return text
    src = Path(profiles_dir) / f"{name}.yaml"
    if not src.is_file():
        known = ", ".join(available(profiles_dir)) or "none"
        raise ParamsError(f"no profile {name!r} ({src} not found); known profiles: {known}")
    if not params.is_file():
        raise ParamsError(f"{params}: params file not found")
    rt = YAML()  # round-trip: comments and key order of params.yaml survive
    rt.width = 110
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = rt.load(params.read_text())
    overlay = YAML(typ="safe", pure=True).load(src.read_text())
    if not isinstance(doc, CommentedMap) or not isinstance(overlay, dict):
        raise ParamsError(f"{params} and {src} must both be YAML mappings")
    replace = overlay.get("x-replace", [])
    own_lock = overlay.get("x-own-lock", False)
    if not isinstance(own_lock, bool):
        raise ParamsError(f"{src}: x-own-lock must be true or false, got {own_lock!r}")
    # top-level "x-" keys only hold YAML anchors for the rest of the profile (docker-compose's convention)
    overlay = {k: v for k, v in overlay.items() if not str(k).startswith("x-")}
    for path in replace:  # these mappings are replaced, not merged into
        node, over, parts = doc, overlay, str(path).split(".")
        try:
            for part in parts[:-1]:
                node = node[part]
            for part in parts:
                over = over[part]
        except (KeyError, TypeError):
            raise ParamsError(f"{src}: x-replace names {path!r}, which is not in both {params} and the profile") from None
        node[parts[-1]] = {}
    merged = merge(doc, _flow_lists(overlay))
    buf = io.StringIO()
    rt.dump(merged, buf)
    text = buf.getvalue()
    parse_params(YAML(typ="safe", pure=True).load(text), f"{params} + profile {name}")  # validate before writing
    if not dry_run:
        saved = backup_path(params)
        if not saved.exists():
            saved.write_text(params.read_text())
        with atomic_path(params) as tmp:
            Path(tmp).write_text(text)
        lock, aside = lock_paths(params)
        if own_lock and lock.is_file() and not aside.exists():
            lock.replace(aside)
    return text
