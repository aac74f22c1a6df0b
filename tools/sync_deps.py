"""Rewrite the library deps of every stage in dvc.yaml from what its script imports.

    python tools/sync_deps.py          # rewrite dvc.yaml (comments and order kept)
    python tools/sync_deps.py --check  # exit 1 and list the stages whose deps differ

Each stage keeps its non-library deps (its script, data/, results/) and gets exactly the files under
src/actmatch/ that its script imports, transitively (tools/imports.py), so editing one module reruns
only the stages that use it. tests/test_pipeline_consistency.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imports import ROOT, imported_files  # noqa: E402

LIB = "src/actmatch/"
OUTPUTS = ("dvc.yaml",)  # its stages' library deps lists (docs/generated.md)


def wanted(script: str) -> list[str]:
    return sorted(f.relative_to(ROOT).as_posix() for f in imported_files(ROOT / script))


def sync(check: bool) -> list[str]:
    yaml = YAML()
    yaml.width = 120
    yaml.preserve_quotes = True
    path = ROOT / "dvc.yaml"
    doc = yaml.load(path.read_text())
    changed = []
    for name, stage in doc["stages"].items():
        body = stage.get("do", stage)
        deps = body["deps"]
        script = f"stages/{name}.py"
        lib = wanted(script)
        current = [d for d in deps if str(d).startswith(LIB)]
        if current != lib:
            changed.append(name)
            keep = [d for d in deps if not str(d).startswith(LIB)]
            at = keep.index(script) + 1
            deps.clear()
            deps.extend(keep[:at] + lib + keep[at:])
    if changed and not check:
        with path.open("w") as fh:
            yaml.dump(doc, fh)
    return changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report stages whose deps are out of date")
    changed = sync(ap.parse_args().check)
    for name in changed:
        print(f"{name}: library deps {'differ from' if '--check' in sys.argv else 'rewritten from'} its imports")
    return 1 if changed and "--check" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
