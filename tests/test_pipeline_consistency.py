"""dvc.yaml against params.yaml, the config classes and the code: each stage runs the script named like
it, declares params keys that exist and exactly the library files its script imports (no fewer: a
change would not rerun it; no more: an unrelated edit would); the package's layers import downward
only, and no private name crosses a package boundary."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from actmatch.check import Params

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(ROOT / "tools"))
from imports import direct_imports, imported_files, module_file  # noqa: E402

LIB = "src/actmatch/"


@pytest.fixture(scope="module")
def stages():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return [(s.addressing, s.cmd, [str(d.def_path) for d in s.deps if type(d).__name__ != "ParamsDependency"],
                 [p for d in s.deps if type(d).__name__ == "ParamsDependency" for p in d.params],
                 [str(o.def_path) for o in s.outs]) for s in repo.index.stages]


def test_stage_runs_its_own_script_and_depends_on_it(stages):
    for name, cmd, deps, _, _ in stages:
        script = f"stages/{name.split('@')[0]}.py"
        assert script in cmd.split(), (name, cmd)
        assert script in deps, name
        assert (ROOT / script).is_file()


def test_stage_library_deps_are_exactly_what_its_script_imports(stages):
    for name, _, deps, _, _ in stages:
        script = ROOT / f"stages/{name.split('@')[0]}.py"
        want = {f.relative_to(ROOT).as_posix() for f in imported_files(script)}
        have = {d for d in deps if d.startswith(LIB)}
        assert not any(Path(ROOT / d).is_dir() for d in have), f"{name}: list files, not library folders"
        assert have == want, (f"{name}: missing {sorted(want - have)}, extra {sorted(have - want)}; "
                              "run `python tools/sync_deps.py`")


def test_preset_params_are_the_presets_each_stage_reads():
    """A stage reading loss presets declares its own preset and, by name, those its runs' ``base:`` chains
    pass through (tools/sync_deps.py generates them from params.yaml; tests/test_param_deps.py runs DVC)."""
    from sync_deps import sync

    stale = [name for name in sync(check=True) if name.endswith("(preset params)")]
    assert not stale, f"{stale}: run `python tools/sync_deps.py`"


def test_the_whole_file_check_is_no_stage_dependency(stages):
    for name, _, deps, _, _ in stages:
        assert "src/actmatch/check.py" not in deps, name


@pytest.mark.parametrize("section,untouched", [
    ("glance", ("train_classifier", "train_explainer", "explain_images", "ablate", "ablate_matched", "train_syce",
                "train_vae", "download_data", "make_cluttered_mnist")),
    ("syce", ("train_classifier", "train_explainer", "explain_images", "ablate", "train_glance")),
    ("evaluate", ("train_classifier", "train_explainer", "explain_images", "train_syce", "train_glance")),
    ("report", ("train_explainer", "evaluate", "ablate", "train_syce", "train_glance")),
])
def test_editing_one_section_schema_leaves_other_stages_up_to_date(stages, section, untouched):
    schema = f"src/actmatch/config/{section}.py"
    for name, _, deps, _, _ in stages:
        if name.split("@")[0] in untouched:
            assert schema not in deps, f"{name} depends on {schema}: editing that schema would rerun it"


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


# The layers, bottom first: a module may import its own package and any package of a lower layer.
LAYERS = [
    {"core"},
    {"config"},
    {"data", "images"},
    {"classifiers"},
    {"metrics"},
    {"baselines", "maps"},
    {"explainer"},
    {"syce", "glance"},
    {"evaluation", "ablation", "report"},
    {"check"},
    {"profiles"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC / "actmatch")
    return rel.parts[0].removesuffix(".py")


def test_every_module_belongs_to_a_layer():
    for f in (SRC / "actmatch").rglob("*.py"):
        if f.parent == SRC / "actmatch" and f.name == "__init__.py":
            continue
        assert _package(f) in RANK, f"{f.relative_to(ROOT)} is in no layer of the layering test"


def test_layers_import_downward_only():
    bad = []
    for f in (SRC / "actmatch").rglob("*.py"):
        if f.parent == SRC / "actmatch" and f.name == "__init__.py":
            continue
        own = _package(f)
        for name in direct_imports(f):
            target = module_file(".".join(name.split(".")[:2]))
            if target is None:
                continue
            other = _package(target)
            if other != own and RANK[other] >= RANK[own]:
                bad.append(f"{f.relative_to(ROOT)} imports {name} ({other} is not below {own})")
    assert not bad, "\n".join(sorted(set(bad)))


def test_no_private_name_crosses_a_package():
    bad = []
    for f in list((SRC / "actmatch").rglob("*.py")) + list((ROOT / "stages").glob("*.py")):
        own = _package(f) if SRC in f.parents else "stages"
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("actmatch"):
                target = module_file(node.module)
                other = _package(target) if target is not None else node.module.split(".")[1]
                for a in node.names:
                    if a.name.startswith("_") and other != own:
                        bad.append(f"{f.relative_to(ROOT)} imports {node.module}.{a.name}")
    assert not bad, "\n".join(bad)


def test_stage_scripts_are_wiring():
    for f in (ROOT / "stages").glob("*.py"):
        n = len(f.read_text().splitlines())
        assert n <= 60, f"{f.name} has {n} lines: a stage is wiring (parse, load its sections, call the library)"
