"""Rewrite the library deps and the preset params of every stage in dvc.yaml from the code and params.yaml.

    python tools/sync_deps.py          # rewrite dvc.yaml (comments and order kept)
    python tools/sync_deps.py --check  # exit 1 and list the stages whose deps differ

Each stage keeps its non-library deps (its script, data/, results/) and gets exactly the files under
src/actmatch/ that its script imports, transitively (tools/imports.py), so editing one module reruns
only the stages that use it.

A stage that reads loss presets (a params entry under ``explainer.presets``) depends on the presets
it reads, not on the whole map, so editing the photo preset leaves every MNIST stage up to date. DVC
cannot put a list into ``params:`` (nor follow a preset's ``base:`` chain), so the entries are generated
here from params.yaml: a ``foreach`` stage over runs with a ``preset`` gets ``explainer.presets.${item.preset}``
(its own) plus, listed by name, every preset the ``base:`` chains of the stage's runs pass through; the
ablation's ``matrix`` stages get, by name, the presets of the ablated runs, of the variants that swap
the preset (``preset:``), and their chains. tests/test_pipeline_consistency.py runs the check.
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
PRESETS = "explainer.presets"
OWN_PRESET = PRESETS + ".${item.preset}"


def wanted(script: str) -> list[str]:
    return sorted(f.relative_to(ROOT).as_posix() for f in imported_files(ROOT / script))


def chain(presets: dict, name: str) -> list[str]:
    """``name`` and the presets its ``base:`` overlays pass through, nearest first."""
    out: list[str] = []
    while name and name not in out:
        if name not in presets:
            raise KeyError(f"explainer.presets has no {name!r}; known: {sorted(presets)}")
        out.append(name)
        name = (presets[name] or {}).get("base")
    return out


def _lookup(params: dict, ref: str) -> object:
    """The params value ``${a.b.c}`` (or ``a.b.c``) names."""
    node: object = params
    for part in ref.strip("${}").split("."):
        node = node[part]  # type: ignore[index]
    return node


def preset_params(stage: dict, params: dict) -> list[str]:
    """The ``explainer.presets`` params entries a stage reading presets should declare (see the module doc)."""
    presets = params["explainer"]["presets"]
    if "foreach" in stage:
        runs = _lookup(params, stage["foreach"])
        bases = {b for run in runs.values() for b in chain(presets, run["preset"])[1:]}
        return [OWN_PRESET] + [f"{PRESETS}.{b}" for b in sorted(bases)]
    matrix, ex, ab = stage["matrix"], params["explainer"], params["ablation"]
    used = {ex["amortized_runs"][c]["preset"] for c in _lookup(params, matrix["classifier"])}
    used |= {(ab["variants"][v] or {}).get("preset") for v in _lookup(params, matrix["variant"])} - {None}
    return [f"{PRESETS}.{p}" for p in sorted({b for u in used for b in chain(presets, u)})]


def sync(check: bool) -> list[str]:
    yaml = YAML()
    yaml.width = 120
    yaml.preserve_quotes = True
    path = ROOT / "dvc.yaml"
    doc = yaml.load(path.read_text())
    params = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    changed = []
    for name, stage in doc["stages"].items():
        body = stage.get("do", stage)
        declared = body.get("params") or []
        if any(str(p).startswith(PRESETS) for p in declared):
            want = preset_params(stage, params)
            have = [str(p) for p in declared if str(p).startswith(PRESETS)]
            if have != want:
                changed.append(f"{name} (preset params)")
                at = next(i for i, p in enumerate(declared) if str(p).startswith(PRESETS))
                notes = {str(p): declared.ca.items.get(i) for i, p in enumerate(declared)}  # end-of-line comments
                keep = [p for p in declared if not str(p).startswith(PRESETS)]
                declared.clear()
                declared.ca.items.clear()
                declared.extend(keep[:at] + want + keep[at:])
                for i, p in enumerate(declared):
                    if notes.get(str(p)) is not None:
                        declared.ca.items[i] = notes[str(p)]
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
        what = ("preset params", "params.yaml's presets") if name.endswith("(preset params)") else \
            ("library deps", "its imports")
        print(f"{name.split(' ')[0]}: {what[0]} {'differ from' if '--check' in sys.argv else 'rewritten from'} {what[1]}")
    return 1 if changed and "--check" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
