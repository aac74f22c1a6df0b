"""Per-stage wall times of the last `dvc repro`, from the log every stage appends to under DVC
(actmatch.core.stage.TIMINGS, data/state/stage_times.jsonl): written to measurements/stage_times.json, and
as a Markdown table of the stage groups (instances, minutes, share of the total) to measurements/stage_times.md,
which tools/sync_readme.py copies into the README.

    rm -f data/state/stage_times.jsonl && dvc repro && python tools/stage_times.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def markdown(out: dict, counts: dict[str, int], rows: list[dict]) -> str:
    """The stage-group table for the README: one line per group, slowest first, then the total."""
    total = out["total_seconds"]
    threads = sorted({r.get("threads") for r in rows if r.get("threads")})
    lines = [f"Measured by `python tools/stage_times.py` after `dvc repro` ({', '.join(map(str, threads)) or '?'} "
             "torch threads; a stage's time runs from its process start, imports included):", "",
             "| stage | instances | minutes | share |", "|---|---:|---:|---:|"]
    for k, v in out["groups"].items():
        lines.append(f"| `{k}` | {counts[k]} | {v / 60:.1f} | {100 * v / total:.1f} % |")
    lines.append(f"| **total** | {sum(counts.values())} | **{total / 60:.1f}** | 100 % |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", default=str(ROOT / "data/state/stage_times.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "measurements/stage_times.json"))
    ap.add_argument("--markdown", default=str(ROOT / "measurements/stage_times.md"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.log).read_text().splitlines() if line.strip()]
    last = {}
    for r in rows:  # a stage rerun keeps its latest time
        last[r["stage"]] = r
    total = sum(r["seconds"] for r in last.values())
    groups: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, r in last.items():
        groups[name.split("@")[0]] = groups.get(name.split("@")[0], 0.0) + r["seconds"]
        counts[name.split("@")[0]] = counts.get(name.split("@")[0], 0) + 1
    out = {"total_seconds": round(total, 1), "stages": {k: v["seconds"] for k, v in sorted(last.items())},
           "groups": {k: round(v, 1) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
           "note": "wall seconds per stage from process start (imports included), one stage at a time"}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(out, counts, rows))
    width = max(len(k) for k in groups)
    for k, v in out["groups"].items():
        print(f"{k:{width}s} {v / 60:6.1f} min  {100 * v / total:5.1f} %")
    print(f"{'total':{width}s} {total / 60:6.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
