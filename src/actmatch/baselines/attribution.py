"""Gradient and perturbation attributions through the field's libraries:

* Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018) from the
  ``grad-cam`` package, on the layer named by ``layer``: the evaluation passes the classifier's last
  conv layer (the registry's ``cam_layer``, as in the paper), else its last tap with a spatial output;
  the package upsamples the map to the input size. A token sequence (ViT: class token + an s×s grid of
  patches) is laid out as its s×s grid first, as the package's ViT tutorial does.
* Integrated Gradients (Sundararajan et al. 2017) from ``captum``, from the removal baseline
  (the same fill our masks use) to x, summed over channels (signed: evidence for y).
* Occlusion (Zeiler & Fergus 2014) from ``captum``: a square patch set to the removal baseline
  slides over the image; attribution = drop of the logit of y.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from actmatch.baselines.base import Method, register

__all__ = ["GradCAM", "GradCAMPlusPlus", "IntegratedGradients", "Occlusion"]


def tokens_to_map(t: torch.Tensor) -> torch.Tensor:
    """``(B, N, C)`` tokens → ``(B, C, s, s)``: N = s² patches, or 1 + s² with a leading class token
    (dropped); conv maps pass through unchanged."""
    if t.dim() != 3:
        return t
    n = t.shape[1]
    s = math.isqrt(n) if math.isqrt(n) ** 2 == n else math.isqrt(n - 1)
    if s * s not in (n, n - 1):
        raise ValueError(f"cannot lay {n} tokens out as a square grid (with or without one class token)")
    return t[:, n - s * s:, :].reshape(t.shape[0], s, s, t.shape[2]).permute(0, 3, 1, 2)


class _CAM(Method):
    cam_class = ""

    def explain(self, model, x, y, baseline, areas, *, layer=None, ids=None):
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        if layer is None:
            raise ValueError(f"{self.name} needs the name of a feature layer")
        cam_cls = getattr(pytorch_grad_cam, self.cam_class)
        targets = [ClassifierOutputTarget(int(c)) for c in y]
        # The classifier is frozen (no parameter needs a gradient), so the input carries one:
        # otherwise the tapped activations would have no gradient for the CAM weights.
        xin = x.detach().clone().requires_grad_(True)
        with torch.enable_grad(), cam_cls(model=model, target_layers=[model.get_submodule(layer)],
                                             reshape_transform=tokens_to_map) as cam:
            maps = cam(input_tensor=xin, targets=targets)
        return torch.from_numpy(maps).to(x)[:, None]


@register
class GradCAM(_CAM):
    name = "gradcam"
    cam_class = "GradCAM"


@register
class GradCAMPlusPlus(_CAM):
    name = "gradcam_pp"
    cam_class = "GradCAMPlusPlus"


@register
class IntegratedGradients(Method):
    name = "integrated_gradients"
    defaults = {"steps": 32, "batch_size": 256}

    def explain(self, model, x, y, baseline, areas, *, layer=None, ids=None):
        from captum.attr import IntegratedGradients as IG

        steps = int(self.settings["steps"])
        with torch.enable_grad():
            attr = IG(model).attribute(x.detach().clone(), baselines=baseline, target=y, n_steps=steps,
                                       internal_batch_size=int(self.settings["batch_size"]))
        return attr.sum(1, keepdim=True).detach()


@register
class Occlusion(Method):
    name = "occlusion"
    defaults = {"window": 0.14, "stride": 0.5, "batch_size": 256}  # window: fraction of the side; stride: of the window

    def explain(self, model: nn.Module, x, y, baseline, areas, *, layer=None, ids=None):
        from captum.attr import Occlusion as Occ

        c, h = x.shape[1], x.shape[-1]
        w = max(2, round(float(self.settings["window"]) * h))
        s = max(1, round(float(self.settings["stride"]) * w))
        per_eval = max(1, int(self.settings["batch_size"]) // len(x))  # images per forward ≈ batch_size
        with torch.no_grad():
            attr = Occ(model).attribute(x, sliding_window_shapes=(c, w, w), strides=(c, s, s), baselines=baseline,
                                        target=y, perturbations_per_eval=per_eval)
        return attr.sum(1, keepdim=True)
