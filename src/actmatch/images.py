"""Reading users' image files into the uint8 arrays every classifier's preprocessing takes, writing
mask / explanation / overlay PNGs, and the gallery page of an ``actmatch explain`` run.

Any JPEG or PNG Pillow reads is accepted: grayscale, RGB, alpha (dropped after compositing on
black, the value a removed pixel has in an MNIST explanation), palette, 1-bit, CMYK, 16-bit
(scaled to 8 bits by its own range). A missing, empty, truncated or non-image file raises an
error that names the file and the problem.

The gallery (issue 29): one self-contained ``index.html`` (every picture inlined as a base64 PNG/JPEG, the
style inline, no script and no web reference) with, per photo, the photo, the overlay and the mask, the label
and class name, p_x, p_e, p_ratio, area, and the ladder of target areas tried (the chosen rung marked).
Photos without an explanation come first, then trivial keeps, then the rest in the order given; a photo
without an explanation shows the photo and the measured reason, never a mask.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from actmatch.core.io import atomic_path, write_text

__all__ = ["read_image", "save_png", "explanation_images", "crop_region", "IMAGE_SUFFIXES", "GalleryItem",
           "render_gallery", "write_gallery"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # a folder's images


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


THUMB = 320  # longest side of an inlined picture, in pixels


@dataclass(frozen=True)
class GalleryItem:
    """One photo: ``record`` its JSON fields (label_kept, trivial, class_name, p_x, …, ladder), ``photo``
    the uint8 image, ``pictures`` (name → uint8 array: overlay, mask) when it has an explanation."""

    name: str
    record: dict[str, Any]
    photo: np.ndarray
    pictures: dict[str, np.ndarray]


def _inline(arr: np.ndarray, fmt: str) -> str:
    im = Image.fromarray(arr)
    im.thumbnail((THUMB, THUMB), Image.NEAREST if arr.ndim == 2 else Image.BILINEAR)
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.convert("RGB").save(buf, format="JPEG", quality=85)
    else:
        im.save(buf, format="PNG", optimize=True)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _order(item: GalleryItem) -> int:
    return 0 if not item.record["label_kept"] else 1 if item.record.get("trivial") else 2


def _ladder(rec: dict[str, Any]) -> str:
    rows = []
    for r in rec.get("ladder", []):
        target = "recipe" if r["area_target"] is None else f"{r['area_target']:.0%}"
        cls = ' class="chosen"' if r["chosen"] else ""
        rows.append(f"<tr{cls}><td>{target}</td><td>{r['area']:.3f}</td><td>{'yes' if r['kept'] else 'no'}</td>"
                    f"<td>{r['p_ratio']:.2f}</td><td>{html.escape(r['class_name_e'])}</td>"
                    f"<td>{'&#10003; chosen' if r['chosen'] else ''}</td></tr>")
    if not rows:
        return ""
    return ("<table class=\"ladder\"><tr><th>target</th><th>area</th><th>kept</th><th>p_ratio</th>"
            "<th>top-1 on e</th><th></th></tr>" + "".join(rows) + "</table>")


def _card(item: GalleryItem) -> str:
    rec = item.record
    status = ("no explanation" if not rec["label_kept"] else "trivial keep" if rec.get("trivial") else "label kept")
    kind = "fail" if not rec["label_kept"] else "trivial" if rec.get("trivial") else "ok"
    pics = [("photo", _inline(item.photo, "JPEG"))] + [(k, _inline(v, "PNG" if k == "mask" else "JPEG"))
                                                       for k, v in item.pictures.items()]
    figs = "".join(f'<figure><img src="{src}" alt="{html.escape(item.name)} {k}"><figcaption>{k}</figcaption></figure>'
                   for k, src in pics)
    facts = (f"<b>{html.escape(rec['class_name'])}</b> (class {rec['label']}) &middot; p_x {rec['p_x']:.3f} &middot; "
             + ("" if rec["label_kept"] else "last rung tried: ")
             + f"p_e {rec['p_e']:.3f} &middot; p_ratio {rec['p_ratio']:.2f} &middot; area {rec['area']:.3f}")
    reason = f'<p class="reason">{html.escape(rec["reason"])}</p>' if rec.get("reason") else ""
    return (f'<section class="card {kind}"><h2>{html.escape(item.name)} <span class="status">{status}</span></h2>'
            f'<div class="pics">{figs}</div><p>{facts}</p>{reason}{_ladder(rec)}</section>')


STYLE = """body{font-family:sans-serif;margin:1.5em;background:#fafafa;color:#222}
.card{background:#fff;border:1px solid #ccc;border-left:8px solid #4a4;margin:0 0 1.2em;padding:.6em 1em}
.card.fail{border-left-color:#c33}.card.trivial{border-left-color:#d90}
.status{font-size:.7em;padding:.1em .5em;border-radius:.3em;background:#4a4;color:#fff}
.fail .status{background:#c33}.trivial .status{background:#d90}
.pics{display:flex;gap:.6em;flex-wrap:wrap}figure{margin:0}figure img{max-width:320px;max-height:320px;display:block;border:1px solid #888}
figcaption{font-size:.8em;color:#555}.reason{color:#a22}
table.ladder{border-collapse:collapse;font-size:.85em}
table.ladder td,table.ladder th{border:1px solid #ddd;padding:.15em .5em}
tr.chosen{background:#dfd;font-weight:bold}"""


def render_gallery(items: Sequence[GalleryItem], title: str) -> str:
    """The page as a string (see the module docstring)."""
    ordered = sorted(items, key=_order)  # stable: the given order within each group
    n_fail = sum(not i.record["label_kept"] for i in items)
    head = (f"<p>{len(items)} image(s); {n_fail} without an explanation (listed first). p_ratio = p_e(y) / p_x(y); "
            "area: share of the pixels the classifier sees that the mask keeps.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html.escape(title) +
            "</title><style>" + STYLE + "</style></head><body><h1>" + html.escape(title) + "</h1>" + head +
            "".join(_card(i) for i in ordered) + "</body></html>\n")


def write_gallery(path: str | Path, items: Sequence[GalleryItem], title: str) -> None:
    write_text(path, render_gallery(items, title))
