"""Extra registry entries from Python files named in ``ACTMATCH_PLUGINS`` (``os.pathsep``-separated).

Every stage (through :func:`actmatch.core.stage.run_stage`) and the CLI load them before doing
anything, so a plugin can ``register`` a classifier or point a source at a mirror, for a whole
``dvc repro``. The paper-profile tests use this to serve torchvision architectures with random
weights and a tiny Imagenette-shaped archive from 127.0.0.1; a lab can use it for an in-house
mirror or model. A plugin changes what a stage computes without DVC seeing it: name its file
as a stage dependency (or keep it out of production runs)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["ENV", "load_plugins"]

ENV = "ACTMATCH_PLUGINS"
_LOADED: set[str] = set()


def load_plugins() -> list[str]:
    """Import each file once per process; returns the files loaded by this call."""
    loaded = []
    for entry in filter(None, os.environ.get(ENV, "").split(os.pathsep)):
        path = Path(entry).resolve()
        if str(path) in _LOADED:
            continue
        if not path.is_file():
            raise FileNotFoundError(f"{ENV}: plugin file {entry} not found")
        spec = importlib.util.spec_from_file_location(f"actmatch_plugin_{len(_LOADED)}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADED.add(str(path))
        loaded.append(str(path))
    return loaded
