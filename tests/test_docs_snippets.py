"""Every ```python snippet in the docs runs as far as it can without a pipeline: each compiles, each of its
imports resolves, and a snippet that says which module it belongs in (a first line ``# src/actmatch/…``)
is executed in that module's namespace (registries restored afterwards) and what it registers is used."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _snippets() -> list[tuple[str, int, str]]:
    found = []
    for doc in DOCS:
        for m in re.finditer(r"^```python\n(.*?)^```", doc.read_text(), flags=re.S | re.M):
            line = doc.read_text()[:m.start()].count("\n") + 1
            found.append((doc.relative_to(ROOT).as_posix(), line, m.group(1)))
    return found


SNIPPETS = _snippets()
IDS = [f"{doc}:{line}" for doc, line, _ in SNIPPETS]


def _home(code: str) -> str | None:
    """The module a snippet says it belongs in (``# src/actmatch/x/y.py …``), as a dotted name."""
    m = re.match(r"#\s*src/(actmatch/[\w/]+)\.py", code)
    return m.group(1).replace("/", ".") if m else None


def test_the_docs_have_snippets_and_some_run():
    assert len(SNIPPETS) >= 6 and sum(_home(c) is not None for _, _, c in SNIPPETS) >= 3


@pytest.mark.parametrize("doc,line,code", SNIPPETS, ids=IDS)
def test_each_snippet_compiles_and_its_imports_resolve(doc, line, code):
    tree = ast.parse(code, filename=f"{doc}:{line}")
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in imports:
        exec(compile(ast.Module([node], []), f"{doc}:{line}", "exec"), {})   # ImportError names the bad import


@pytest.fixture()
def registries():
    """Snapshot the registries a snippet may register into; restore them afterwards."""
    from actmatch.baselines import BASELINES
    from actmatch.classifiers.registry import CLASSIFIERS
    from actmatch.data.registry import DATASETS
    from actmatch.explainer.losses import TERMS

    saved = [(r, dict(r)) for r in (BASELINES, CLASSIFIERS, DATASETS, TERMS)]
    yield
    for registry, copy in saved:
        registry.clear()
        registry.update(copy)


RUNNABLE = [(d, n, c) for d, n, c in SNIPPETS if _home(c)]


@pytest.mark.parametrize("doc,line,code", RUNNABLE, ids=[f"{d}:{n}" for d, n, _ in RUNNABLE])
def test_a_snippet_that_names_its_module_runs_there(doc, line, code, registries):
    module = importlib.import_module(_home(code))
    namespace = dict(vars(module))
    exec(compile(code, f"{doc}:{line}", "exec"), namespace)


def test_the_how_to_baseline_registers_and_gives_the_map_it_promises(registries):
    from actmatch.baselines import build_baseline

    code = next(c for d, _, c in SNIPPETS if d == "docs/how-to/add-a-baseline.md")
    exec(compile(code, "add-a-baseline.md", "exec"), dict(vars(importlib.import_module("actmatch.baselines.optimized"))))
    x = torch.tensor([[[[1.0, -2.0]], [[0.5, 0.0]]]])            # (1, C=2, 1, 2)
    m = build_baseline("brightness", power=2.0).explain(None, x, None, torch.zeros_like(x), None)
    assert m.tolist() == [[[[2.25, 4.0]]]]                         # (|1| + |0.5|)², (|-2| + 0)²


def test_the_how_to_loss_terms_register_in_order(registries):
    from actmatch.explainer import losses as L

    before = list(L.TERMS)
    for code in [c for d, _, c in SNIPPETS if d == "docs/how-to/add-a-loss-term.md" and _home(c)]:
        exec(compile(code, "add-a-loss-term.md", "exec"), dict(vars(L)))
    assert list(L.TERMS) == before + ["mass", "shift"] and L.TERMS["shift"].inputs is not None
