"""What the package needs is declared: every third-party import of the library and the stages belongs to
a distribution named in pyproject.toml, every module imports, and the lock file pins each declared one."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    return {_norm(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in reqs}


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [*(ROOT / "src/actmatch").rglob("*.py"), *(ROOT / "stages").glob("*.py")]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for n in names:
                top = n.split(".")[0]
                if top != "actmatch" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(f.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared():
    dists = packages_distributions()
    declared = _declared()
    missing = {mod: sorted(where)[:2] for mod, where in _third_party_imports().items()
               if not {_norm(d) for d in dists.get(mod, [mod])} & declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_module_imports():
    for f in sorted((ROOT / "src/actmatch").rglob("*.py")):
        rel = f.relative_to(ROOT / "src").with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        importlib.import_module(name)


def test_the_lock_file_pins_every_declared_distribution():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    unpinned = sorted(_declared() - set(pins))
    assert not unpinned, f"declared but not pinned in constraints.txt (run tools/lock.sh): {unpinned}"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
