"""Per-stage wall times of the last `dvc repro`, from the log every stage appends to under DVC
(actmatch.core.stage.TIMINGS, data/state/stage_times.jsonl): written to measurements/stage_times.json, and
as a Markdown table of the stage groups (instances, minutes, share of the total) to measurements/stage_times.md,
which tools/sync_readme.py copies into the README.

    rm -f data/state/stage_times.jsonl && python tools/machine_score.py && dvc repro && python tools/stage_times.py

Times from two machines compare as ratios: both files record the machine (CPU model, cores, torch
threads) and the machine score of tools/machine_score.py (a fixed ~10 s torch workload, iterations per
second), read here from measurements/machine_score.json (--score; --run-score measures it now instead).
Minutes on a machine with score s2, predicted from minutes t1 measured at score s1: t1 * s1 / s2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def _where(score: dict | None, rows: list[dict]) -> str:
    """The caption's machine: CPU, cores, torch threads and the score, from the score file or the log."""
    m = (score or {}).get("machine") or {}
    cpu = m.get("cpu") or next((r["cpu"] for r in rows if r.get("cpu")), None)
    cores = m.get("cores") or next((r["cores"] for r in rows if r.get("cores")), None)
    threads = sorted({r.get("threads") for r in rows if r.get("threads")})
    text = f"{', '.join(map(str, threads)) or '?'} torch threads"
    if cpu:
        text = f"{cpu}, {cores or '?'} cores, " + text
    if score:
        text += (f"; machine score {score['score']:.2f} it/s (`tools/machine_score.py`): on a machine scoring s, "
                 f"expect about minutes × {score['score']:.2f} / s")
    return text


def markdown(out: dict, counts: dict[str, int], rows: list[dict]) -> str:
    """The stage-group table for the README: one line per group, slowest first, then the total."""
    total = out["total_seconds"]
    lines = [f"Measured by `python tools/stage_times.py` after `dvc repro` ({_where(out.get('machine_score'), rows)}; "
             "a stage's time runs from its process start, imports included):", "",
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
    ap.add_argument("--score", default=str(ROOT / "measurements/machine_score.json"),
                    help="the machine score file to record beside the times (tools/machine_score.py)")
    ap.add_argument("--run-score", action="store_true", help="measure the machine score now (about 10 s) first")
    args = ap.parse_args()
    if args.run_score:
        import machine_score

        if machine_score.main(["--out", args.score]) != 0:
            return 2
    score = json.loads(Path(args.score).read_text()) if Path(args.score).is_file() else None
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
           "note": "wall seconds per stage from process start (imports included), one stage at a time",
           "machine": {"cpu": next((r["cpu"] for r in rows if r.get("cpu")), None),
                       "cores": next((r["cores"] for r in rows if r.get("cores")), None),
                       "torch_threads": sorted({r.get("threads") for r in rows if r.get("threads")})},
           "machine_score": score and {k: score.get(k) for k in ("score", "unit", "machine", "load_average",
                                                                 "measured_at")}}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(out, counts, rows))
    width = max(len(k) for k in groups)
    for k, v in out["groups"].items():
        print(f"{k:{width}s} {v / 60:6.1f} min  {100 * v / total:5.1f} %")
    print(f"{'total':{width}s} {total / 60:6.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
