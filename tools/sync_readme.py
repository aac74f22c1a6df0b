"""Copy paper_figures/headline.md (written by the report stage) between the README's headline markers,
so the one table the README shows is generated, never typed:

    python tools/sync_readme.py          # after `dvc repro`
    python tools/sync_readme.py --check  # exit 1 if the README's copy differs (tests/test_docs.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def render(readme: str, headline: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{headline.strip()}\n{END}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true")
    readme, source = ROOT / "README.md", ROOT / "paper_figures/headline.md"
    if not source.is_file():
        print(f"{source} not found: run the report stage (dvc repro) first")
        return 1
    text = render(readme.read_text(), source.read_text())
    if ap.parse_args().check:
        same = readme.read_text() == text
        print("README headline is up to date" if same else "README headline differs: run tools/sync_readme.py")
        return 0 if same else 1
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
