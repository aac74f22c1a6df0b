"""Localization (method.md §5), where the ground truth is a box (e.g. the digit's ink box on a
cluttered canvas):

* pointing game: 1 when the top-ranked pixel of the soft map (ties broken by the seeded order of
  :func:`actmatch.metrics.curves.pixel_ranks`) lies inside the box;
* IoU of the hard mask with the box.

Boxes are ``(B, 4)`` ``(x0, y0, x1, y1)`` in pixels with x1, y1 exclusive, in the mask's frame.
"""

from __future__ import annotations

import torch

__all__ = ["box_masks", "pointing_game", "iou_with_boxes"]


def box_masks(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Boolean ``(B, 1, H, W)``: True inside each box."""
    ys = torch.arange(h, device=boxes.device).view(1, h, 1)
    xs = torch.arange(w, device=boxes.device).view(1, 1, w)
    b = boxes.view(-1, 4, 1, 1)
    inside = (xs >= b[:, 0]) & (xs < b[:, 2]) & (ys >= b[:, 1]) & (ys < b[:, 3])
    return inside[:, None]


def pointing_game(ranks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """1.0 ``(B,)`` when the rank-0 pixel is inside the box."""
    inside = box_masks(boxes, *ranks.shape[-2:])
    return (inside & (ranks == 0)).flatten(1).any(1).float()


def iou_with_boxes(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Intersection over union ``(B,)`` of the hard masks and the boxes (0 when both are empty)."""
    inside = box_masks(boxes, *masks.shape[-2:])
    m = masks > 0.5
    inter = (m & inside).flatten(1).sum(1).float()
    union = (m | inside).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1.0), torch.zeros_like(union))
