"""dvc.yaml against params.yaml, the config classes and the code: each stage runs the script named like
it, declares params keys that exist and exactly the library files its script imports (no fewer: a
change would not rerun it; no more: an unrelated edit would); the package's layers import downward
only (the one layer map, LAYERS, which docs/extending.md's table copies), metrics and baselines never
import the explainer, SyCE/CyCE and GLANCE only its public API, no module is imported by a string, and
no private name crosses a package boundary."""

from __future__ import annotations

import ast
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from actmatch.check import Params

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(ROOT / "tools"))
from imports import direct_imports, dynamic_imports, imported_files, module_file  # noqa: E402

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


def test_every_stage_hands_the_whole_file_check_to_the_runner():
    """The check's edge is visible: each script imports actmatch.check and passes it to run_stage (the bottom
    layer imports nothing above it); tools/imports.py's NOT_DEPS keeps it out of DVC's deps (dvc.yaml says why)."""
    for f in sorted((ROOT / "stages").glob("*.py")):
        assert "actmatch.check.check_file" in direct_imports(f), f.name
        assert "run_stage(main, check=check_file)" in f.read_text(), f.name


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


# The layers, bottom first: a module may import its own package and any package of a lower layer. This is
# the one layer map: docs/extending.md's package table is this list, row by row (a test below holds it).
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
# What no reordering of LAYERS may allow: (packages, forbidden import prefix, allowed modules under it, rule).
# Metrics and baselines judge every method alike, so they never see the explainer (not even through another
# module); SyCE/CyCE and GLANCE stand beside ours and may use only the explainer's public API.
NEVER = [
    (("metrics", "baselines"), "actmatch.explainer", (), "metrics and baselines never import the explainer"),
    (("syce", "glance"), "actmatch.explainer", ("actmatch.explainer.api",),
     "syce and glance never import explainer internals (only actmatch.explainer.api)"),
]
PLUGIN_LOADER = "core/plugins.py"  # the one module that may use importlib.util: it loads files outside the package


def _package(path: Path, src: Path = SRC) -> str:
    rel = path.relative_to(src / "actmatch")
    return rel.parts[0].removesuffix(".py")


def _modules(src: Path) -> list[Path]:
    return [f for f in sorted((src / "actmatch").rglob("*.py")) if f != src / "actmatch" / "__init__.py"]


def layering_problems(src: Path = SRC) -> list[str]:
    """Every import under ``src``/actmatch (statements at any depth, string-named imports too) that runs up
    or sideways across the layers or breaks a :data:`NEVER` rule, and every string-named import."""
    bad = []
    for f in _modules(src):
        own, rel = _package(f, src), f.relative_to(src).as_posix()
        for call in dynamic_imports(f):
            bad.append(f"{rel}:{call}: a module imported by a string (import it by name, so the edge is seen)")
        if "importlib.util" in direct_or_plain_imports(f) and not rel.endswith(PLUGIN_LOADER):
            bad.append(f"{rel}: importlib.util outside {PLUGIN_LOADER}")
        names = direct_imports(f)
        for name in names:
            target = module_file(".".join(name.split(".")[:2]), src)
            if target is None:
                continue
            other = _package(target, src)
            if other != own and RANK[other] >= RANK[own]:
                bad.append(f"{rel} imports {name} ({other} is not below {own})")
        for packages, prefix, allowed, rule in NEVER:
            if own not in packages:
                continue
            for name in names:
                if (name == prefix or name.startswith(prefix + ".")) and not any(
                        name == a or name.startswith(a + ".") for a in allowed):
                    bad.append(f"{rel} imports {name}: {rule}")
            if not allowed:  # not even through another module
                folder = src.joinpath(*prefix.split("."))
                hidden = sorted(g.relative_to(src).as_posix() for g in imported_files(f, src, follow_all=True)
                                if g.is_relative_to(folder))
                if hidden:
                    bad.append(f"{rel} reaches {hidden[0]} through its imports: {rule}")
    return sorted(set(bad))


def direct_or_plain_imports(path: Path) -> set[str]:
    """Every module an ``import``/``from`` statement in ``path`` names (any package, any depth)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_every_module_belongs_to_a_layer():
    for f in _modules(SRC):
        assert _package(f) in RANK, f"{f.relative_to(ROOT)} is in no layer of the layering test"


def test_layers_import_downward_only_and_the_never_rules_hold():
    bad = layering_problems()
    assert not bad, "\n".join(bad)


def _copy_with(tmp: Path, rel: str, code: str) -> Path:
    """A copy of src/ with ``code`` appended to src/actmatch/``rel``."""
    src = tmp / "src"
    shutil.copytree(SRC / "actmatch", src / "actmatch", ignore=shutil.ignore_patterns("__pycache__"))
    with (src / "actmatch" / rel).open("a") as fh:
        fh.write("\n\n" + textwrap.dedent(code))
    return src


@pytest.mark.parametrize("rel,code,found", [
    ("metrics/fidelity.py", """
        def _planted():
            from actmatch.explainer.losses import TERMS
            return TERMS
     """, ["metrics/fidelity.py imports actmatch.explainer.losses: metrics and baselines never import the explainer",
           "metrics/fidelity.py imports actmatch.explainer.losses (explainer is not below metrics)"]),
    ("baselines/optimized.py", """
        def _planted():
            import importlib
            return importlib.import_module("actmatch.explainer.unet")
     """, ["baselines/optimized.py imports actmatch.explainer.unet: metrics and baselines never import the explainer",
           
           'importlib.import_module("actmatch.explainer.unet"): a module imported by a string']),
    ("glance/graph.py", """
        def _planted():
            from actmatch.explainer.objective import loss_terms
            return loss_terms
     """, ["glance/graph.py imports actmatch.explainer.objective: syce and glance never import explainer internals"]),
    ("core/io.py", "X = __import__('actmatch.check')\n", ["__import__('actmatch.check'): a module imported by a string",
                                                           "core/io.py imports actmatch.check (check is not below core)"]),
])
def test_the_layer_scan_fails_on_a_planted_import(tmp_path, rel, code, found):
    assert not layering_problems(SRC)
    problems = "\n".join(layering_problems(_copy_with(tmp_path, rel, code)))
    for text in found:
        assert text in problems, f"{text!r} not reported; got:\n{problems}"


def test_syce_and_glance_may_use_the_explainers_public_api(tmp_path):
    src = _copy_with(tmp_path, "glance/graph.py", "from actmatch.explainer.api import load_explainer\n")
    assert layering_problems(src) == []


def test_no_module_is_imported_by_a_string():
    """No ``import_module``/``__import__`` anywhere in src/ (an edge the layering test and DVC could not see)."""
    found = [f"{f.relative_to(ROOT)}:{c}" for f in _modules(SRC) for c in dynamic_imports(f)]
    assert found == []


def test_the_docs_layer_table_is_LAYERS():
    """docs/extending.md's package table (bottom layer first) names exactly the packages of each layer."""
    text = (ROOT / "docs/extending.md").read_text().split("## The packages, bottom layer first", 1)[1]
    rows = [line for line in text.split("\n## ", 1)[0].splitlines() if line.startswith("| ") and "---" not in line]
    table = [{n.strip("/").removesuffix(".py") for n in re.findall(r"`([a-z_]+(?:/|\.py))`", r.split("|")[2])}
             for r in rows[1:]]
    assert [int(r.split("|")[1]) for r in rows[1:]] == list(range(len(LAYERS)))
    assert table == LAYERS, "docs/extending.md's package table and LAYERS in this test disagree"


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
