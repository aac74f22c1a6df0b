"""The actmatch files a script imports, transitively (with their packages' ``__init__``), found by
reading the source (ast), never by importing it. Shared by tools/sync_deps.py and the tests that
check dvc.yaml's deps and the package's layering."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# the package docstring and version only: editing it need not rerun anything
IGNORED = {SRC / "actmatch" / "__init__.py"}


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def direct_imports(path: Path) -> list[str]:
    """Dotted names of the actmatch modules (and imported members) ``path`` names, in order."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n.split(".")[0] == "actmatch"]


def imported_files(path: Path) -> set[Path]:
    """Files of the actmatch modules ``path`` imports, transitively, with their packages' __init__."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        for name in direct_imports(todo.pop()):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return seen - IGNORED
