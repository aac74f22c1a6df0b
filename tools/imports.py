"""The actmatch files a script imports, transitively (with their packages' ``__init__``), found by
reading the source (ast), never by importing it: ``import``/``from`` statements anywhere in a file
(inside functions too) and ``importlib.import_module("actmatch…")`` / ``__import__("actmatch…")``
calls with a literal name. Shared by tools/sync_deps.py, tools/rerun_table.py and the tests that check
dvc.yaml's deps and the package's layering.

One edge is read but not followed: :data:`NOT_DEPS`, modules a stage imports that can refuse its
params but never change its outputs (the whole-file params check), so they are no DVC dependency."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# imported by every stage (it passes the check to run_stage), but no dependency of any stage: the check only
# refuses a params file (dvc.yaml's header says so; tests/test_pipeline_consistency.py holds it)
NOT_DEPS = ("actmatch.check",)
DYNAMIC = ("import_module", "__import__")  # calls that import a module named by a string
OUTPUTS = ()  # writes nothing (docs/generated.md)


def module_file(name: str, src: Path = SRC) -> Path | None:
    base = src.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _called(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def direct_imports(path: Path) -> list[str]:
    """Dotted names of the actmatch modules (and imported members) ``path`` names, in order: import
    statements at any depth and string-named imports (``importlib.import_module``, ``__import__``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and _called(node) in DYNAMIC and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names.append(node.args[0].value.split(":")[0])
    return [n for n in names if n.split(".")[0] == "actmatch"]


def dynamic_imports(path: Path) -> list[str]:
    """``import_module(...)``/``__import__(...)`` calls in ``path``, as ``line: source`` (any argument)."""
    text = path.read_text()
    return [f"{node.lineno}: {ast.get_source_segment(text, node)}" for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Call) and _called(node) in DYNAMIC]


def imported_files(path: Path, src: Path = SRC, follow_all: bool = False) -> set[Path]:
    """Files of the actmatch modules ``path`` imports, transitively, with their packages' __init__;
    :data:`NOT_DEPS` are left out (and not followed) unless ``follow_all``."""
    skip = set() if follow_all else {module_file(n, src) for n in NOT_DEPS}
    seen: set[Path] = set()
    todo = [path]
    while todo:
        for name in direct_imports(todo.pop()):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]), src)
                if f is not None and f not in seen and f not in skip:
                    seen.add(f)
                    todo.append(f)
    return seen - {src / "actmatch" / "__init__.py"}  # the package docstring and version: editing it reruns nothing
