"""Reading users' image files into the uint8 arrays every classifier's preprocessing takes, and
writing mask / explanation / overlay PNGs.

Any JPEG or PNG Pillow reads is accepted: grayscale, RGB, alpha (dropped after compositing on
black, the value a removed pixel has in an MNIST explanation), palette, 1-bit, CMYK, 16-bit
(scaled to 8 bits by its own range). A missing, empty, truncated or non-image file raises an
error that names the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from actmatch.core.io import atomic_path

__all__ = ["read_image", "save_png", "explanation_images", "crop_region"]


def read_image(path: str | Path) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 3)`` from an image file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not an image")
    try:
        with Image.open(path) as im:
            im.load()
            return _to_uint8(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image Pillow can read (JPEG, PNG, ...)") from None
    except (OSError, SyntaxError) as err:  # truncated or corrupt data
        raise ValueError(f"{path} is a damaged image: {err}") from None


def _to_uint8(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        return np.round(255.0 * (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.uint8)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        bg = Image.new(im.mode, im.size, (0,) * len(im.mode))
        im = Image.alpha_composite(bg.convert("RGBA"), im.convert("RGBA")).convert("RGB" if im.mode != "LA" else "L")
    if im.mode == "1":
        im = im.convert("L")
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def explanation_images(image: np.ndarray, mask: np.ndarray,
                       region: tuple[float, float, float, float] | None = None) -> dict[str, np.ndarray]:
    """From the original uint8 image and a hard mask at any size: the mask, the explanation
    (kept pixels, the rest black) and an overlay (the removed part dimmed and tinted), all at
    the image's own resolution (mask resized with nearest neighbour). ``region`` ``(x0, y0, x1, y1)``:
    the part of the image the mask covers (what a centre-cropping classifier saw); outside it nothing
    was shown to the classifier, so nothing is kept."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (0, 0, w, h) if region is None else (int(round(v)) for v in region)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))
    inner = np.asarray(Image.fromarray((mask > 0.5).astype(np.uint8) * 255).resize((x1 - x0, y1 - y0),
                                                                                  Image.NEAREST)) > 127
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = inner
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    expl = np.where(m[..., None], rgb, 0).astype(np.uint8)
    tint = np.array([40, 40, 120], dtype=np.float64)
    over = np.where(m[..., None], rgb, 0.35 * rgb + 0.65 * tint).astype(np.uint8)
    return {"mask": (m * 255).astype(np.uint8), "explanation": expl if image.ndim == 3 else expl[..., 0],
            "overlay": over}


def crop_region(image: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    """The part ``(x0, y0, x1, y1)`` of ``image`` (what a centre-cropping classifier sees), so that a mask
    made at the classifier's input lines up with it; the whole image for the full region."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))
    return image[y0:y1, x0:x1]
