"""An ACTMATCH_PLUGINS file for the paper-profile test: the paper profile's four torchvision
architectures, shrunk where the architecture allows (ResNet, EfficientNet and MobileNet take
64×64 inputs; the ViT is torchvision's VisionTransformer with ViT-B/16's 12 layers but a 32-px
input and width 16), registered under test names with random weights served from 127.0.0.1,
and Imagenette pointed at a tiny archive on the same server. The URLs and sha256 come from the
JSON file named by ``ACTMATCH_TEST_MANIFEST``; imported without it, only ``BUILDERS`` is defined."""

from __future__ import annotations

import json
import os

import torchvision.models as tvm

from actmatch.classifiers.registry import ClassifierSpec, WeightsSource, get_spec, imagenet_class_names, register
from actmatch.data import sources

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _vit():
    return tvm.VisionTransformer(image_size=32, patch_size=16, num_layers=12, num_heads=2, hidden_dim=16, mlp_dim=32)


# test name -> (the real entry whose taps it uses, builder, input size)
BUILDERS = {
    "test_resnet18": ("resnet18", lambda: tvm.resnet18(weights=None), 64),
    "test_efficientnet_b0": ("efficientnet_b0", lambda: tvm.efficientnet_b0(weights=None), 64),
    "test_mobilenet_v3_large": ("mobilenet_v3_large", lambda: tvm.mobilenet_v3_large(weights=None), 64),
    "test_vit_b_16": ("vit_b_16", _vit, 32),
}

if os.environ.get("ACTMATCH_TEST_MANIFEST"):
    with open(os.environ["ACTMATCH_TEST_MANIFEST"]) as f:
        manifest = json.load(f)
    for name, (real, build, size) in BUILDERS.items():
        url, sha = manifest[name]
        register(ClassifierSpec(name, build, size, 3, MEAN, STD, get_spec(real).taps, 1000, imagenet_class_names,
                                WeightsSource(sha, url=url), f"test: {real} architecture, random weights"))
    sources.IMAGENETTE_ARCHIVES.update({v: tuple(manifest["imagenette"]) for v in ("160", "320")})
