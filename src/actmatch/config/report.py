"""``report``: what the report stage draws (paper_figures/)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from actmatch.config.base import Strict, validate

__all__ = ["ReportParams", "report"]


class ReportParams(Strict):
    """Examples per Figure 1 panel, the evaluation image Figure 2 sweeps on, dpi, and a banner for smoke
    runs (the quick profile sets it, so nobody mistakes its tables for results)."""

    examples: int = Field(ge=1, le=24)
    sweep_image: int = Field(ge=0)
    dpi: int = Field(ge=50, le=600)
    smoke: bool = False


def report(data: dict[str, Any]) -> ReportParams:
    return validate(ReportParams, data, "report")
