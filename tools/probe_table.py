"""The photo probes' summary (issue 19), one row per probe, from the rows of measurements/photo_probes.jsonl
(written by tools/photo_probes.py), so the numbers docs/results.md shows about the probes are never typed:

    python tools/probe_table.py          # writes measurements/photo_probes.md
    python tools/sync_readme.py          # copies it into docs/results.md ("How the photo recipe was chosen")

Per probe: the photos and seeds it ran, its runs (photo × seed), how many kept the label, the median hard
area and median p_ratio = p_e(y) / p_x(y) over its runs, and how many runs are "at the bar" of issue 19
(label kept, hard area ≤ 10 %, p_ratio ≥ 0.25). A run's row is a probe's one result; nothing here selects.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE, TARGET = ROOT / "measurements/photo_probes.jsonl", ROOT / "measurements/photo_probes.md"
BAR_AREA, BAR_P_RATIO = 0.10, 0.25  # issue 19's done-when: area ≤ 10 %, p_ratio ≥ 0.25, label kept


def summarize(rows: list[dict]) -> pd.DataFrame:
    """One row per probe (in the order the probes first appear)."""
    df = pd.DataFrame(rows)
    df["at_bar"] = (df["kept"] == 1) & (df["area"] <= BAR_AREA) & (df["p_ratio"] >= BAR_P_RATIO)
    out = []
    for cfg, g in df.groupby("cfg", sort=False):
        out.append({"probe": cfg, "photos": g["photo"].nunique(),
                    "seeds": ",".join(str(s) for s in sorted(g["seed"].unique())), "runs": len(g),
                    "kept": f"{int(g['kept'].sum())}/{len(g)}", "median area": round(float(g["area"].median()), 3),
                    "median p_ratio": round(float(g["p_ratio"].median()), 3),
                    "at the bar": f"{int(g['at_bar'].sum())}/{len(g)}"})
    return pd.DataFrame(out)


def render(rows: list[dict]) -> str:
    table = summarize(rows).to_markdown(index=False)
    return (f"{table}\n\n*at the bar*: label kept, hard area ≤ {BAR_AREA:.0%}, p_ratio ≥ {BAR_P_RATIO} "
            f"(issue 19's bar for one run). From `measurements/photo_probes.jsonl` by `tools/probe_table.py`.\n")


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    rows = [json.loads(line) for line in SOURCE.read_text().splitlines() if line.strip()]
    TARGET.write_text(render(rows))
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
