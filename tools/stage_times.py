"""Per-stage wall times of the last `dvc repro`, from the log every stage appends to under DVC
(actmatch.core.stage.TIMINGS, data/state/stage_times.jsonl): written to results/stage_times.json and
printed as a table, with the total and the share of each stage group.

    rm -f data/state/stage_times.jsonl && dvc repro && python tools/stage_times.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", default=str(ROOT / "data/state/stage_times.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "results/stage_times.json"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.log).read_text().splitlines() if line.strip()]
    last = {}
    for r in rows:  # a stage rerun keeps its latest time
        last[r["stage"]] = r
    total = sum(r["seconds"] for r in last.values())
    groups: dict[str, float] = {}
    for name, r in last.items():
        groups[name.split("@")[0]] = groups.get(name.split("@")[0], 0.0) + r["seconds"]
    out = {"total_seconds": round(total, 1), "stages": {k: v["seconds"] for k, v in sorted(last.items())},
           "groups": {k: round(v, 1) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
           "note": "wall seconds per stage from process start (imports included), one stage at a time"}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    width = max(len(k) for k in groups)
    for k, v in out["groups"].items():
        print(f"{k:{width}s} {v / 60:6.1f} min  {100 * v / total:5.1f} %")
    print(f"{'total':{width}s} {total / 60:6.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
