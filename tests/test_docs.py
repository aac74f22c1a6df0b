"""The docs say what is true: the README's commands are what CI runs, its headline is the generated
one, every number in it comes from a generated file, and the links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readmes_test_command_verbatim():
    commands = re.findall(r"^python3 -m venv .*$", (ROOT / "README.md").read_text(), flags=re.M)
    assert len(commands) == 2 and "dvc repro" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci/run").read_text()
    assert all("-c constraints.txt" in c for c in commands)  # both install the lock file


def test_readme_is_short_and_its_headline_is_the_generated_one():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    if not (ROOT / "paper_figures/headline.md").is_file() or not (ROOT / "measurements/stage_times.md").is_file():
        pytest.skip("no generated headline or stage times yet (run dvc repro and tools/stage_times.py)")
    res = subprocess.run([sys.executable, str(ROOT / "tools/sync_readme.py"), "--check"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout


def test_readme_outside_the_headline_types_no_result_numbers():
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"<!-- (headline|times):start -->.*?<!-- \1:end -->", "", text, flags=re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    percents = re.findall(r"\d+(?:\.\d+)? ?%", prose)
    assert not percents, f"result-like numbers typed into the README: {percents}"


@pytest.mark.parametrize("doc", sorted(p.name for p in (ROOT / "docs").glob("*.md")) + ["../README.md"])
def test_relative_links_resolve(doc):
    path = (ROOT / "docs" / doc).resolve()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
        if target.startswith(("http", "mailto")) or "paper_figures/" in target:
            continue
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def test_method_md_gives_each_presets_weights_as_params_yaml_resolves_them(params_dict):
    """§3's preset list types weights ("`rob` 10", "area 1000"): each one it names is the preset's, resolved."""
    from actmatch.config.explainer import explainer

    ex = explainer(params_dict)
    text = (ROOT / "docs/method.md").read_text()
    checked = 0
    for name, line in re.findall(r"^  - `(\w+)` \[\w+\]: (.*(?:\n    .*)*)", text, flags=re.M):
        if name not in ex.presets:
            continue
        weights = ex.loss(name).weights.model_dump()
        for term, value in re.findall(r"(?<!from )`?\b(" + "|".join(weights) + r")\b`? (\d+(?:\.\d+)?)\b", line):
            assert float(value) == weights[term], f"method.md says {name} has {term} {value}; params: {weights[term]}"
            checked += 1
    assert checked >= 10
