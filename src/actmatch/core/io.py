"""Atomic file and folder writes, so an interrupted stage never leaves half-written outputs, and
byte-stable ones, so the same content gives the same bytes (DVC stops a rerun where nothing changed).

``torch.save`` to a path names the zip archive's inner folder after the file, and an atomic write goes
through a randomly named temporary file: :func:`save_torch` writes through an open file handle instead,
so the inner name is always ``archive`` and identical objects give identical files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_dir", "atomic_path", "save_torch", "write_json", "write_text"]


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is renamed onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o644)  # mkstemp makes 0600 files
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``dest``; on success it replaces ``dest`` whole."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
    try:
        yield tmp
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(dest: str | Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_json(dest: str | Path, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON (byte-stable across reruns)."""
    write_text(dest, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(obj: Any, dest: str | Path) -> None:
    """``torch.save(obj)`` to ``dest`` atomically and byte-stably: through an open file handle (the
    archive's inner folder is then ``archive``, never the temporary file's random name), so saving
    the same object twice, to any path, gives the same bytes. Every checkpoint and state file goes
    through here."""
    import torch

    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
