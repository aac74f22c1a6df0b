"""Copy the generated blocks into the README, so the numbers it shows are never typed:

- between `<!-- headline:start/end -->`: paper_figures/headline.md (written by the report stage);
- between `<!-- times:start/end -->`: measurements/stage_times.md (written by tools/stage_times.py from the
  wall times every stage logs during `dvc repro`);
- in docs/results.md, between `<!-- probes:start/end -->`: measurements/photo_probes.md (written by
  tools/probe_table.py from the photo probes' rows);
- in docs/pipeline.md, between `<!-- rerun:start/end -->`: measurements/rerun_table.md (written by
  tools/rerun_table.py: what an edit reruns, from `dvc status` on a scratch copy);
- in docs/results.md, between `<!-- batched:start/end -->`: measurements/batched_check.md (written by
  tools/batched_check.py: the batched rows against one image at a time).

Each block opens with a comment naming its source. Adding a block is one line in BLOCKS (and its row in
docs/generated.md, which tests/test_generated.py holds to OUTPUTS).

    python tools/sync_readme.py          # after `dvc repro` and `python tools/stage_times.py`
    python tools/sync_readme.py --check  # exit 1 if a README copy differs (tests/test_docs.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = [("README.md", "headline", "paper_figures/headline.md"), ("README.md", "times", "measurements/stage_times.md"),
          ("docs/results.md", "probes", "measurements/photo_probes.md"),
          ("docs/pipeline.md", "rerun", "measurements/rerun_table.md"),
          ("docs/results.md", "batched", "measurements/batched_check.md")]  # (document, block, generated source)
OUTPUTS = tuple(f"{doc}#{name}" for doc, name, _ in BLOCKS)  # what this tool writes (docs/generated.md)


def render(readme: str, name: str, body: str, doc: str = "README.md", source: str | None = None) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in readme or end not in readme:
        raise SystemExit(f"{doc} has no {start} ... {end} block")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    note = (f"<!-- copied from {source} by tools/sync_readme.py: edit that file's generator instead "
            "(docs/generated.md) -->\n") if source else ""
    return f"{head}{start}\n{note}{body.strip()}\n{end}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    docs = {doc: (ROOT / doc).read_text() for doc, _, _ in BLOCKS}
    text = dict(docs)
    for doc, name, rel in BLOCKS:
        source = ROOT / rel
        if not source.is_file():
            print(f"{rel} not found: run `dvc repro` (and `python tools/stage_times.py`, `python tools/probe_table.py`, "
                  "`python tools/rerun_table.py`) first")
            return 1
        text[doc] = render(text[doc], name, source.read_text(), doc, rel)
    stale = [doc for doc in docs if text[doc] != docs[doc]]
    if args.check:
        print(f"{', '.join(stale)} differ: run tools/sync_readme.py" if stale else "generated blocks are up to date")
        return 1 if stale else 0
    for doc in stale:
        (ROOT / doc).write_text(text[doc])
    return 0


if __name__ == "__main__":
    sys.exit(main())
