"""Every command the docs give is run, so a documented command cannot rot: each `dvc exp run -S …`
override is applied with DVC's own code (Hydra) to a copy of params.yaml and the result passes the
whole-file check; every `dvc exp show …` runs in a scratch repository; every `actmatch profile …` runs
on a scratch copy of params.yaml and profiles/."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _commands(prefix: str) -> list[tuple[str, str]]:
    """(doc, command) for every line of a ```bash block that starts with ``prefix`` (comments dropped,
    backslash continuations joined)."""
    found = []
    for doc in DOCS:
        inside, lang = False, ""
        for line in doc.read_text().replace("\\\n", " ").splitlines():
            if line.lstrip().startswith("```"):
                inside, lang = not inside, line.strip()[3:]
                continue
            line = line.split(" #")[0].strip()
            if inside and lang in ("bash", "sh", "console", "") and line.startswith(prefix):
                found.append((doc.relative_to(ROOT).as_posix(), line))
    return found


EXP_RUN = _commands("dvc exp run")
EXP_SHOW = _commands("dvc exp show")
PROFILE = _commands("actmatch profile")


def test_the_docs_give_commands_to_check():
    assert EXP_RUN and EXP_SHOW and PROFILE


@pytest.mark.parametrize("doc,command", EXP_RUN, ids=[c for _, c in EXP_RUN])
def test_documented_exp_run_overrides_apply_and_pass_the_check(doc, command, tmp_path):
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    from actmatch.check import check_file

    argv = shlex.split(command)
    sets = [argv[i + 1] for i, a in enumerate(argv) if a in ("-S", "--set-param")]
    assert sets, f"{doc}: {command} sets no parameter"
    for sweep in get_hydra_sweeps({"params.yaml": sets}):  # a,b,c values: one experiment each
        params = tmp_path / "params.yaml"
        shutil.copy(ROOT / "params.yaml", params)
        apply_overrides(params, sweep["params.yaml"])   # raises for a key that does not exist (needs '+')
        check_file(params)


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("docs_repo")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, work / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@e"], ["git", "config", "user.name", "t"],
                [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
    return work, env


@pytest.mark.parametrize("doc,command", EXP_SHOW, ids=[c for _, c in EXP_SHOW])
def test_documented_exp_show_flags_exist(doc, command, scratch_repo):
    work, env = scratch_repo
    res = subprocess.run([sys.executable, "-m", *shlex.split(command)], cwd=work, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, f"{doc}: `{command}` failed:\n{res.stderr[-2000:]}"


@pytest.mark.parametrize("doc,command", PROFILE, ids=[c for _, c in PROFILE])
def test_documented_profile_commands_run(doc, command, tmp_path):
    from actmatch.cli import main

    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for part in command.split("&&"):
            argv = shlex.split(part)
            if argv[:2] == ["actmatch", "profile"]:
                assert main(argv[1:]) == 0, f"{doc}: `{command}` failed"
    finally:
        os.chdir(cwd)
