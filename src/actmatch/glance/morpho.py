"""Context features of a digit image, after Morpho-MNIST's definitions (Castro et al., JMLR 2019; method.md §8.2).

Written here from the published definitions (Morpho-MNIST is not a pip package). Per image:
the grey image (uint8 or float, any range) is upsampled ``scale``× (bicubic) and binarized at
half its range, ``I ≥ min + ½(max − min)``; then, in original-pixel units,

- ``area``: foreground pixels / scale²;
- ``length``: length of the medial-axis skeleton as an 8-connected graph (each horizontal or
  vertical pair of neighbouring skeleton pixels 1, each diagonal pair √2) / scale;
- ``thickness``: 2 × the mean distance-to-background on the skeleton / scale;
- ``slant``: arctan(−μ₁₁ / μ₀₂) from the central moments of the upsampled grey image
  (x right, y down: a stroke whose top leans right has a positive slant);
- ``width`` / ``height``: the sides of the slant-sheared bounding parallelogram holding all but
  ``bound_frac`` of the grey mass (half cut on each side), width measured along x after
  removing the shear x − (μ₁₁/μ₀₂)(y − ȳ), height along y; / scale;
- ``intensity``: the median grey value of the foreground (the image's own range).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FEATURES", "measure", "measure_batch"]

FEATURES = ("area", "length", "thickness", "slant", "width", "height", "intensity")


def _skeleton_length(skel: np.ndarray) -> float:
    """Σ over neighbouring skeleton pixel pairs (each pair once): 1 for 4-neighbours, √2 for diagonals."""
    s = skel.astype(bool)
    straight = (s[:, :-1] & s[:, 1:]).sum() + (s[:-1, :] & s[1:, :]).sum()
    diagonal = (s[:-1, :-1] & s[1:, 1:]).sum() + (s[:-1, 1:] & s[1:, :-1]).sum()
    return float(straight + np.sqrt(2.0) * diagonal)


def _weighted_quantiles(v: np.ndarray, w: np.ndarray, qs: tuple[float, float]) -> np.ndarray:
    order = np.argsort(v)
    cdf = np.cumsum(w[order]) / w.sum()
    return np.interp(qs, cdf, v[order])


def measure(image: np.ndarray, scale: int = 4, bound_frac: float = 0.02) -> dict[str, float]:
    """The features of one ``(H, W)`` grey image (uint8 or float, brighter = ink)."""
    from skimage import morphology, transform  # here: the params check imports FEATURES from this module

    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {img.shape}")
    lo, hi = img.min(), img.max()
    if hi <= lo:
        raise ValueError("the image is blank (constant): no stroke to measure")
    up = transform.resize(img, (img.shape[0] * scale, img.shape[1] * scale), order=3, mode="edge",
                          anti_aliasing=False, preserve_range=True)
    ink = up >= lo + 0.5 * (hi - lo)
    skel, dist = morphology.medial_axis(ink, return_distance=True, rng=0)  # seeded tie-breaking: deterministic
    mass = np.clip(up - lo, 0.0, None)
    y, x = np.mgrid[: up.shape[0], : up.shape[1]].astype(np.float64)
    m = mass.sum()
    xm, ym = (x * mass).sum() / m, (y * mass).sum() / m
    u11 = ((x - xm) * (y - ym) * mass).sum() / m
    u02 = ((y - ym) ** 2 * mass).sum() / m
    shear = u11 / u02
    w = mass.ravel()
    half = bound_frac / 2
    left, right = _weighted_quantiles((x - shear * (y - ym)).ravel(), w, (half, 1 - half))
    top, bottom = _weighted_quantiles(y.ravel(), w, (half, 1 - half))
    return {"area": float(ink.sum()) / scale ** 2,
            "length": _skeleton_length(skel) / scale,
            "thickness": 2.0 * float(dist[skel].mean()) / scale if skel.any() else 0.0,
            "slant": float(np.arctan(-shear)),
            "width": float(right - left) / scale,
            "height": float(bottom - top) / scale,
            "intensity": float(np.median(up[ink]))}


def _measure_chunk(args: tuple[np.ndarray, int, float]) -> list[dict[str, float]]:
    arr, scale, bound_frac = args
    return [measure(im, scale, bound_frac) for im in arr]


def measure_batch(images: np.ndarray, scale: int = 4, bound_frac: float = 0.02, workers: int = 1,
                  progress: bool = False) -> pd.DataFrame:
    """One row per image of ``images`` (N, H, W) or (N, H, W, 1), columns ``FEATURES``; ``workers``
    processes give the same table as one."""
    from actmatch.glance.perturb import _map
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    chunks = [(arr[a:a + 200], scale, bound_frac) for a in range(0, len(arr), 200)]
    rows = [r for part in _map(_measure_chunk, chunks, workers, progress, "morpho features") for r in part]
    return pd.DataFrame(rows, columns=list(FEATURES))
