"""Copy the generated blocks into the README, so the numbers it shows are never typed:

- between `<!-- headline:start/end -->`: paper_figures/headline.md (written by the report stage);
- between `<!-- times:start/end -->`: results/stage_times.md (written by tools/stage_times.py from the
  wall times every stage logs during `dvc repro`).

    python tools/sync_readme.py          # after `dvc repro` and `python tools/stage_times.py`
    python tools/sync_readme.py --check  # exit 1 if a README copy differs (tests/test_docs.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = {"headline": "paper_figures/headline.md", "times": "results/stage_times.md"}


def render(readme: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md has no {start} ... {end} block")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    current = text = readme.read_text()
    for name, rel in BLOCKS.items():
        source = ROOT / rel
        if not source.is_file():
            print(f"{rel} not found: run `dvc repro` (and `python tools/stage_times.py`) first")
            return 1
        text = render(text, name, source.read_text())
    if args.check:
        same = current == text
        print("README's generated blocks are up to date" if same else "README differs: run tools/sync_readme.py")
        return 0 if same else 1
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
