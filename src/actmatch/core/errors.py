"""The error base class. Every error a user can cause (a bad params file, a failed download, a
missing input) derives from :class:`ActmatchError` and carries a message that names the problem;
the stage runner prints that one line instead of a traceback."""

from __future__ import annotations

__all__ = ["ActmatchError", "ParamsError", "InputError"]


class ActmatchError(Exception):
    """Base of the errors a user can cause; the message names the problem and the fix."""


class ParamsError(ActmatchError, ValueError):
    """params.yaml is missing, unreadable, or fails validation. The message names the key path."""


class InputError(ActmatchError, ValueError):
    """An input file or folder is missing or not what a stage expects."""
