"""The area ladder's rows for the report (issue 29): per photo and seed, the area of the rung that kept the
label (explainer/ladder.py writes one ``ladder.json`` per seed folder of a per-image run with a ladder)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["read_ladders", "ladder_summary", "small_on_every_seed"]


def read_ladders(regime_dir: Path) -> pd.DataFrame:
    """Every ``seed<k>/ladder.json`` under a regime's folder as rows (seed, id, label_kept, area, area_target,
    p_ratio, trivial); empty when the regime ran without a ladder."""
    rows = []
    for f in sorted(Path(regime_dir).glob("seed*/ladder.json")):
        seed = int(f.parent.name.removeprefix("seed"))
        for i, rec in json.loads(f.read_text())["images"].items():
            rows.append({"seed": seed, "id": i, **{k: rec[k] for k in ("label_kept", "area", "area_target",
                                                                       "p_ratio", "trivial")}})
    return pd.DataFrame(rows, columns=["seed", "id", "label_kept", "area", "area_target", "p_ratio", "trivial"])


def ladder_summary(rows: pd.DataFrame, small: float = 0.1) -> tuple[pd.DataFrame, int]:
    """From :func:`read_ladders` rows: per image (first-seen order) the chosen area and its p_ratio per seed
    ("none" where no rung kept the label, a ``*`` on a trivial keep), as two strings joined over the seeds in
    seed order; and how many images keep their label at an area <= ``small`` on every seed."""
    out = []
    for i, g in rows.groupby("id", sort=False):
        g = g.sort_values("seed")
        out.append({"id": i, "area": " / ".join(f"{a:.3f}" + ("*" if t else "") if k else "none"
                                                for a, k, t in zip(g["area"], g["label_kept"], g["trivial"])),
                    "p_ratio": " / ".join(f"{r:.2f}" if k else "–" for r, k in zip(g["p_ratio"], g["label_kept"]))})
    return pd.DataFrame(out, columns=["id", "area", "p_ratio"]), len(small_on_every_seed(rows, small))


def small_on_every_seed(rows: pd.DataFrame, small: float = 0.1) -> dict[str, bool]:
    """The images that keep their label at an area <= ``small`` on every seed, each with whether it is
    trivial (the fill alone keeps its label, so the keep says nothing)."""
    return {i: bool(g["trivial"].any()) for i, g in rows.groupby("id", sort=False)
            if bool((g["label_kept"] & (g["area"] <= small)).all())}
