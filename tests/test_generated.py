"""docs/generated.md indexes every generated, committed file: each tool's declared OUTPUTS is a row naming
that tool and each row naming a tool is in its OUTPUTS (a tool that writes a file the index does not list
fails here); each generated file opens with a line naming its generator and what to edit instead; and the
CLI's recipes follow params.yaml without a hand step (a stale recipes.yaml is rewritten here, then fails)."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs/generated.md"
COMMENTED = (".yaml", ".yml", ".md", ".txt")  # formats with a comment: their first line names the generator


def _index() -> dict[str, str]:
    """file (or file#block) → generator, from the index table."""
    rows = {}
    for line in INDEX.read_text().split("## The index", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = line.split("|")
        if not line.startswith("| `") or len(cells) < 6:
            continue
        generator = re.findall(r"`([^`]+)`", cells[2])
        for f in re.findall(r"`([^`]+)`", cells[1]):
            rows[f] = generator[0] if generator else cells[2].strip()
    return rows


def _declared(tool: Path) -> tuple[str, ...] | None:
    """A tool's OUTPUTS (``# OUTPUTS: a, b`` in a shell script); None if it declares none."""
    if tool.suffix == ".sh":
        m = re.search(r"^# OUTPUTS: ([^(\n]+)", tool.read_text(), flags=re.M)
        return tuple(s.strip() for s in m.group(1).split(",")) if m else None
    for node in ast.parse(tool.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "OUTPUTS" for t in node.targets):
            try:
                return tuple(ast.literal_eval(node.value))
            except ValueError:  # computed (sync_readme's blocks): import the tool
                spec = importlib.util.spec_from_file_location(f"tool_{tool.stem}", tool)
                module = importlib.util.module_from_spec(spec)
                sys.path.insert(0, str(tool.parent))
                try:
                    spec.loader.exec_module(module)
                finally:
                    sys.path.remove(str(tool.parent))
                return tuple(module.OUTPUTS)
    return None


TOOLS = sorted(p for p in (ROOT / "tools").iterdir() if p.suffix in (".py", ".sh"))


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_every_file_a_tool_writes_is_indexed_under_that_tool(tool):
    outputs = _declared(tool)
    assert outputs is not None, f"{tool.name} declares no OUTPUTS (() if it writes nothing committed)"
    index = _index()
    rel = f"tools/{tool.name}"
    missing = [o for o in outputs if index.get(o) != rel]
    assert not missing, f"{rel} writes {missing}, which docs/generated.md does not list under {rel}"
    stray = [f for f, g in index.items() if g == rel and f not in outputs]
    assert not stray, f"docs/generated.md lists {stray} under {rel}, whose OUTPUTS does not declare them"


def test_the_index_check_fails_on_a_file_no_row_lists(tmp_path):
    tool = tmp_path / "sync_new.py"
    tool.write_text('OUTPUTS = ("docs/new_table.md",)\n')
    assert _declared(tool) == ("docs/new_table.md",)
    assert "docs/new_table.md" not in _index()
    with pytest.raises(AssertionError, match=r"writes \['docs/new_table.md'\], which docs/generated.md does not list"):
        test_every_file_a_tool_writes_is_indexed_under_that_tool(tool)


def test_every_generator_in_the_index_exists():
    for f, gen in _index().items():
        assert gen == "dvc repro" or (ROOT / gen).is_file(), f"{f}: generator {gen} not found"


def _opening(f: str) -> str:
    if "#" in f:
        doc, block = f.split("#")
        text = (ROOT / doc).read_text()
        assert f"<!-- {block}:start -->" in text, f"{doc} has no {block} block"
        return text.split(f"<!-- {block}:start -->\n", 1)[1].splitlines()[0]
    lines = (ROOT / f).read_text().splitlines()
    head = [line for line in lines[:8] if line.startswith("#")] if f.endswith((".yaml", ".txt")) else lines[:1]
    return " ".join(head)


@pytest.mark.parametrize("f,gen", [(f, g) for f, g in _index().items() if g != "dvc repro"
                                   and ("#" in f or f.endswith(COMMENTED))])
def test_each_generated_file_opens_naming_its_generator_and_what_to_edit_instead(f, gen):
    if "#" not in f and not (ROOT / f).is_file():
        pytest.skip(f"{f} not generated yet")
    head = _opening(f)
    assert gen in head and "instead" in head, f"{f} should open with a line naming {gen} and what to edit instead: {head!r}"


def test_the_clis_recipes_follow_params_without_a_hand_step():
    """The CLI ships src/actmatch/recipes.yaml; params.yaml is its one home. A stale copy (a new loss term's
    weight, a changed recipe) is rewritten here and the test fails once, asking to commit the new file."""
    spec = importlib.util.spec_from_file_location("sync_recipes", ROOT / "tools/sync_recipes.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    text = sync.render()
    if sync.OUT.read_text() != text:
        sync.OUT.write_text(text)
        pytest.fail("src/actmatch/recipes.yaml was stale and has been rewritten from params.yaml "
                    "(`python tools/sync_recipes.py`): commit it")
