"""dvc.yaml against params.yaml, the config classes and the code: each stage runs the script
named like it, declares params keys that exist and the library files its script imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from actmatch.check import Params

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# holds only the package docstring and version; editing it need not rerun anything
IGNORED = {SRC / "actmatch" / "__init__.py"}


@pytest.fixture(scope="module")
def stages():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return [(s.addressing, s.cmd, [str(d.def_path) for d in s.deps if type(d).__name__ != "ParamsDependency"],
                 [p for d in s.deps if type(d).__name__ == "ParamsDependency" for p in d.params],
                 [str(o.def_path) for o in s.outs]) for s in repo.index.stages]


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path) -> set[Path]:
    """Files of the actmatch modules ``path`` imports, transitively, with their packages' __init__."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        names: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if not name.startswith("actmatch"):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = _module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return seen


def _covered(f: Path, deps: list[str]) -> bool:
    rel = f.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def test_stage_runs_its_own_script_and_depends_on_it(stages):
    for name, cmd, deps, _, _ in stages:
        script = f"stages/{name.split('@')[0]}.py"
        assert cmd.startswith(f"python {script} "), (name, cmd)
        assert script in deps, name
        assert (ROOT / script).is_file()


def test_stage_deps_cover_every_library_file_it_imports(stages):
    for name, _, deps, _, _ in stages:
        script = ROOT / f"stages/{name.split('@')[0]}.py"
        missing = sorted(f.relative_to(ROOT).as_posix() for f in _imports(script) - IGNORED if not _covered(f, deps))
        assert not missing, f"{name} imports {missing} but does not list them in deps"


def test_declared_params_exist_and_are_schema_fields(stages):
    data = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    for name, _, _, params, _ in stages:
        for key in params:
            node = data
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key} not in params.yaml"
                node = node[part]
            assert key.split(".")[0] in Params.model_fields


def test_every_data_dependency_is_produced_by_a_stage(stages):
    outs = {o for *_, os_ in stages for o in os_}
    for name, _, deps, _, _ in stages:
        for d in deps:
            if d.startswith(("data/", "results/")):   # an output, or a folder holding outputs
                assert d in outs or any(o.startswith(d + "/") for o in outs), \
                    f"{name} depends on {d}, which no stage produces"


def test_dvc_config_does_not_phone_home():
    text = (ROOT / ".dvc" / "config").read_text()
    assert "analytics = false" in text and "check_update = false" in text
