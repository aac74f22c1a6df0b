"""What every stage script shares: logging set-up and turning known errors into one clear
line and a non-zero exit (style.md: a message that names the problem, no traceback noise)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from actmatch.config import ParamsError
from actmatch.data.fetch import ChecksumError, DownloadError
from actmatch.plugins import load_plugins

__all__ = ["run_stage"]

_KNOWN = (ParamsError, ChecksumError, DownloadError, FileNotFoundError, KeyError, ValueError)


def run_stage(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run a stage's ``main``; known errors print ``error: ...`` on stderr and return 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    try:
        load_plugins()  # ACTMATCH_PLUGINS: extra registry entries / mirrors (tests, labs)
        main(argv)
    except _KNOWN as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0
