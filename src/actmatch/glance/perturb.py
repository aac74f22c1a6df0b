"""Controlled digits with a known causal graph, after Morpho-MNIST's perturbations (method.md §8.2).

Morphological edits of one digit (each measured back by :mod:`actmatch.glance.morpho`):

- :func:`set_thickness`: upsample 4× (bicubic), binarize at half range, dilate (thicker) or
  erode (thinner) with a disk of radius scale·|Δ|/2 where Δ = target − measured thickness, and
  downsample with anti-aliasing (Morpho-MNIST's thickening/thinning, written here);
- :func:`set_slant`: shear about the image centre so that the measured slant becomes the target
  (x ↦ x − Δtan·(y − ȳ), bicubic, Δtan the difference of the slants' tangents);
- :func:`set_intensity`: scale the ink so that the foreground median becomes the target.

:func:`controlled_digits` applies the causal recipe — thickness → intensity, thickness → slant —
with constants of ours (stated, since method.md names only the edges): per digit
t ~ 1.5 + Γ(shape 10, scale 0.15) (mean 3.0 px, MNIST's range), intensity
i = 64 + 191·σ(2(t − 3)), slant s = 0.25·(t − 3) + N(0, 0.1²) radians. Area, length, width and
height are not set and follow the digit; the true graph is :data:`TRUE_EDGES`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage import morphology, transform

from actmatch.glance.morpho import measure

__all__ = ["set_thickness", "set_slant", "set_intensity", "draw_causes", "controlled_digits", "TRUE_EDGES"]

TRUE_EDGES = (("thickness", "intensity"), ("thickness", "slant"))


def set_thickness(image: np.ndarray, target: float, scale: int = 4) -> np.ndarray:
    """A uint8 copy of ``image`` (H, W) whose stroke is ``target`` px thick (as measured, ± a fraction of a px)."""
    img = np.asarray(image, dtype=np.float64)
    now = measure(img, scale)["thickness"]
    up = transform.resize(img, (img.shape[0] * scale, img.shape[1] * scale), order=3, mode="edge",
                          anti_aliasing=False, preserve_range=True)
    ink = up >= img.min() + 0.5 * (img.max() - img.min())
    radius = int(round(scale * abs(target - now) / 2))
    if radius:
        op = ndimage.binary_dilation if target > now else ndimage.binary_erosion
        thinned = op(ink, structure=morphology.disk(radius))
        ink = thinned if thinned.any() else ink  # never erase the digit
    down = transform.resize(ink.astype(np.float64) * img.max(), img.shape, order=1, anti_aliasing=True,
                            preserve_range=True)
    return np.clip(np.round(down), 0, 255).astype(np.uint8)


def set_slant(image: np.ndarray, target: float) -> np.ndarray:
    """A uint8 copy of ``image`` (H, W) sheared so that its measured slant becomes ``target`` radians."""
    img = np.asarray(image, dtype=np.float64)
    delta = np.tan(target) - np.tan(measure(img)["slant"])
    yc = (img.shape[0] - 1) / 2
    # output (x, y) samples input (x + Δ·(y − yc), y): the stroke's column moves by −Δ per row down,
    # which adds Δ to tan(slant) (slant = arctan(−μ11/μ02), y down)
    matrix = np.array([[1.0, delta, -delta * yc], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = transform.warp(img, transform.AffineTransform(matrix=matrix), order=3, mode="constant", cval=0.0,
                         preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def set_intensity(image: np.ndarray, target: float) -> np.ndarray:
    """A uint8 copy of ``image`` whose foreground median grey value is ``target`` (0-255)."""
    img = np.asarray(image, dtype=np.float64)
    return np.clip(np.round(img * target / measure(img)["intensity"]), 0, 255).astype(np.uint8)


def draw_causes(n: int, seed: int) -> pd.DataFrame:
    """The recipe's values for ``n`` digits: thickness, then intensity and slant from it."""
    rng = np.random.default_rng(seed)
    t = 1.5 + rng.gamma(10.0, 0.15, n)
    i = 64 + 191 / (1 + np.exp(-2 * (t - 3)))
    s = 0.25 * (t - 3) + rng.normal(0, 0.1, n)
    return pd.DataFrame({"thickness": t, "intensity": i, "slant": s})


def _apply(args: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    images, causes, scale = args
    out = np.empty_like(images)
    for k, (im, (t, i, s)) in enumerate(zip(images, causes)):
        out[k] = set_intensity(set_slant(set_thickness(im, t, scale), s), i)
    return out


def controlled_digits(images: np.ndarray, seed: int, scale: int = 4, workers: int = 1,
                      progress: bool = False) -> tuple[np.ndarray, pd.DataFrame]:
    """Apply the recipe to each uint8 digit (N, H, W): the new digits and the drawn causes per digit
    (columns ``thickness``, ``intensity``, ``slant``: the values set, before measurement). The causes are
    drawn first, so ``workers`` processes give the same digits as one."""
    images = np.asarray(images, dtype=np.uint8)
    causes = draw_causes(len(images), seed)
    vals = causes[["thickness", "intensity", "slant"]].to_numpy()
    chunks = [(images[a:a + 100], vals[a:a + 100], scale) for a in range(0, len(images), 100)]
    return np.concatenate(_map(_apply, chunks, workers, progress, "morpho recipe")), causes


def _map(fn, chunks: list, workers: int, progress: bool, desc: str) -> list:  # noqa: ANN001
    """``fn`` over ``chunks`` in order, in ``workers`` processes (1: in this one), with a progress bar."""
    from tqdm.auto import tqdm
    if workers <= 1 or len(chunks) <= 1:
        return [fn(c) for c in tqdm(chunks, desc=desc, disable=not progress)]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(fn, chunks), total=len(chunks), desc=desc, disable=not progress))
