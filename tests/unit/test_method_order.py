"""The tables' method order comes from the registries (report.tables.ordered): ours, the other frameworks,
the baselines in BASELINES order, the controls last; a newly registered baseline needs no list edit."""

from __future__ import annotations

from actmatch.baselines import BASELINES, Method
from actmatch.baselines.base import register
from actmatch.report import tables


def test_order_is_ours_then_frameworks_then_baselines_in_registry_order_then_controls():
    given = sorted(["centre", "cyce_10class", "extremal", "glance", "gradcam", "integrated_gradients",
                    "ours:amortized", "ours:finetune", "ours:finetune_last", "ours:per_image", "ours:per_image_last",
                    "ours:per_image_paper", "random", "rise", "syce_10class"])   # a metrics file's (sorted) keys
    assert list(BASELINES)[:6] == ["gradcam", "gradcam_pp", "integrated_gradients", "occlusion", "rise", "extremal"]
    assert tables.CONTROLS == ("random", "centre")
    assert tables.ordered(given) == [
        "ours:amortized", "ours:finetune", "ours:finetune_last", "ours:per_image", "ours:per_image_last",
        "ours:per_image_paper", "cyce_10class", "glance", "syce_10class",
        "gradcam", "integrated_gradients", "rise", "extremal", "random", "centre"]


def test_a_new_baseline_lands_among_the_baselines_by_registering_it():
    @register
    class Brightness(Method):
        name = "brightness"

    @register
    class Blank(Method):
        name = "blank"
        control = True

    try:
        out = tables.ordered(["blank", "brightness", "random", "gradcam", "ours:per_image_r2", "ours:amortized"])
    finally:
        del BASELINES["brightness"], BASELINES["blank"]
    assert out == ["ours:amortized", "ours:per_image_r2", "gradcam", "brightness", "random", "blank"]
