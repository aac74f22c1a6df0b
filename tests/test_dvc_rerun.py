"""Reruns stop where outputs don't change (issue 28), through `dvc repro` on the shrunk pipeline of
tests/test_dvc_repro.py: after a comment-only edit of one library module, DVC reruns exactly the stages
that import it, their outputs come out byte-identical (no wall time, temporary file name or training log
inside an output folder), so every stage downstream of them is skipped, except the report, which reads the
explain stages' timing files (our rows' milliseconds) and is cheap."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.test_dvc_repro import _make_repo

pytestmark = pytest.mark.slow


def _dvc(cwd: Path, *args: str) -> str:
    """dvc in ``cwd`` with the scratch copy's own library first on the path (its stages run its code)."""
    import subprocess

    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(cwd / "src"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=3600)  # the whole shrunk pipeline: minutes, more on a shared CPU
    assert res.returncode == 0, f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def _importers(repo: Path, module: str) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        return {s.addressing for s in r.index.stages if any(str(d.def_path) == module for d in s.deps)}


@pytest.mark.timeout(7200)  # two dvc repro runs of the shrunk pipeline; a shared 2-core CPU took over 25 min
def test_a_comment_edit_reruns_its_importers_and_stops_at_their_identical_outputs(tmp_path):
    repo = _make_repo(tmp_path / "repo")
    _dvc(repo, "repro")
    module = "src/actmatch/explainer/unet.py"
    importers = _importers(repo, module)
    assert {s.split("@")[0] for s in importers} == {"train_explainer", "explain_images", "ablate", "ablate_matched"}
    before = {p.relative_to(repo).as_posix(): p.read_bytes() for p in (repo / "results").rglob("*")
              if p.is_file() and "timing" not in p.parts}
    (repo / module).write_text((repo / module).read_text() + "\n# a comment: no output may change\n")
    out = _dvc(repo, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    # the importers, and the report (it reads their timing files); never evaluate, whose inputs are unchanged
    assert ran == importers | {"report"}, f"ran {sorted(ran - importers)} beyond the importers of {module}"
    skipped = {line.split("'")[1] for line in out.splitlines() if "didn't change, skipping" in line}
    assert {s for s in skipped if s.startswith("evaluate@")}, out
    after = {p.relative_to(repo).as_posix(): p.read_bytes() for p in (repo / "results").rglob("*")
             if p.is_file() and "timing" not in p.parts}
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"a rerun with the same inputs changed {changed[:10]}"
    assert json.loads(_dvc(repo, "status", "--json")) == {}
