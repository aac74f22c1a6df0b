"""Morpho-MNIST context features (method.md §8.2) on synthetic strokes of known size and slant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actmatch.glance.morpho import FEATURES, measure, measure_batch


def _bar(width: int, top: int = 6, bottom: int = 22, left: int = 12, value: float = 255.0) -> np.ndarray:
    img = np.zeros((28, 28))
    img[top:bottom, left:left + width] = value
    return img


def _sheared(s: float) -> np.ndarray:
    """A 3-px stroke whose column moves by −s px per row down (s > 0: the top leans right)."""
    y, x = np.mgrid[:28, :28]
    img = 255 * np.clip(1.5 - np.abs(x - (13 - s * (y - 14))), 0, 1)
    img[:6], img[22:] = 0, 0
    return img


def test_a_vertical_bar_measures_its_size():
    f = measure(_bar(3))
    assert f["area"] == pytest.approx(48, abs=1)          # 3 × 16 px
    assert f["thickness"] == pytest.approx(3, abs=0.15)
    assert f["height"] == pytest.approx(16, abs=0.5)
    assert f["width"] == pytest.approx(3, abs=1)
    assert f["length"] == pytest.approx(16, abs=2)        # the medial axis adds short corner branches
    assert f["slant"] == pytest.approx(0, abs=1e-9)
    assert f["intensity"] == pytest.approx(255)


def test_thickness_and_area_grow_with_the_stroke_and_intensity_follows_the_ink():
    thin, thick = measure(_bar(3)), measure(_bar(5))
    assert thick["thickness"] == pytest.approx(5, abs=0.5) and thick["thickness"] > thin["thickness"] + 1.5
    assert thick["area"] == pytest.approx(80, abs=1.5)
    assert measure(_bar(3, value=120.0))["intensity"] == pytest.approx(120)


@pytest.mark.parametrize("s", [0.3, -0.2])
def test_slant_of_a_sheared_stroke_is_arctan_of_the_shear(s):
    assert measure(_sheared(s))["slant"] == pytest.approx(math.atan(s), abs=0.01)


def test_translation_changes_nothing_and_a_batch_matches_single_images():
    a, b = measure(_bar(3)), measure(_bar(3, top=3, bottom=19, left=5))
    assert measure(_bar(3)) == a  # the medial axis breaks ties with a fixed seed
    for k in FEATURES:
        assert b[k] == pytest.approx(a[k], abs=1e-6), k
    df = measure_batch(np.stack([_bar(3), _bar(5)])[..., None])
    assert list(df.columns) == list(FEATURES) and len(df) == 2
    assert df.loc[1, "thickness"] == pytest.approx(measure(_bar(5))["thickness"])


def test_bad_images_are_named():
    with pytest.raises(ValueError, match="blank"):
        measure(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="2-D grey image"):
        measure(np.zeros((28, 28, 3)))


def _stroke(s: float = 0.15) -> np.ndarray:
    return np.clip(_sheared(s), 0, 255).astype(np.uint8)


def test_set_thickness_slant_and_intensity_reach_their_targets():
    from actmatch.glance.perturb import set_intensity, set_slant, set_thickness

    base = measure(_stroke())
    thick, thin = measure(set_thickness(_stroke(), 5.0)), measure(set_thickness(_bar(5).astype(np.uint8), 2.5))
    assert thick["thickness"] == pytest.approx(5.0, abs=0.8) and thick["thickness"] > base["thickness"] + 1
    assert thin["thickness"] == pytest.approx(2.5, abs=0.8)
    assert measure(set_slant(_stroke(), -0.3))["slant"] == pytest.approx(-0.3, abs=0.02)
    assert measure(set_slant(_stroke(), 0.4))["slant"] == pytest.approx(0.4, abs=0.02)
    assert measure(set_intensity(_stroke(), 120))["intensity"] == pytest.approx(120, abs=1.5)
    assert set_thickness(_stroke(), 5.0).dtype == np.uint8


def test_controlled_digits_follow_the_recipe_and_are_seeded():
    from actmatch.glance.perturb import TRUE_EDGES, controlled_digits

    digits = np.stack([_stroke(s) for s in np.linspace(-0.2, 0.3, 12)])
    out, causes = controlled_digits(digits, seed=3)
    again, causes2 = controlled_digits(digits, seed=3)
    assert np.array_equal(out, again) and causes.equals(causes2) and out.shape == digits.shape
    meas = measure_batch(out)
    assert np.corrcoef(meas["slant"], causes["slant"])[0, 1] > 0.95
    assert np.corrcoef(meas["intensity"], causes["intensity"])[0, 1] > 0.95
    assert np.corrcoef(meas["thickness"], causes["thickness"])[0, 1] > 0.7
    # the edges: intensity is a deterministic increasing function of thickness
    assert np.all(np.diff(causes.sort_values("thickness")["intensity"].to_numpy()) > 0)
    assert TRUE_EDGES == (("thickness", "intensity"), ("thickness", "slant"))
