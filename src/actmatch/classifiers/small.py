"""The small classifiers the pipeline trains for the MNIST-like sets (method.md §7).

``MnistCNN`` is the companion paper's 3-layer CNN (arXiv 2509.25686): conv 1→64 k4 s2, BN,
LeakyReLU; conv 64→128 k4 s2, BN, LeakyReLU; conv 128→256 k3; linear →128→10. With padding 1
on the two strided convs a 28 px input gives 256×5×5 = 6400 features, the paper's 6400→128.
For other input sizes the linear layer's width follows the input (64 px: 256×14×14).

``LeNet`` is the LeNet-5-style net of SyCE/CyCE's binary MNIST task (method.md §8.1): conv 5×5
1→6 (pad 2), ReLU, max-pool; conv 5×5 6→16, ReLU, max-pool; linear 400→120→84→K. With two
classes it has one output z and returns the logits (0, z): softmax over them is the authors'
sigmoid(z), and cross-entropy on them is their binary cross-entropy (ReLU rather than LeNet's
tanh, as in most re-implementations; theirs is not in method.md's summary).

``SmallResNet`` is our second architecture: three stages of torchvision's ``BasicBlock``
(16-32-64 channels, strides 1-2-2), global average pooling and a linear head. Inputs of 48 px
or more get a 2×2 max-pool after the stem (≈4× fewer FLOPs on 64 px cluttered canvases; max-pooling
keeps thin strokes that a strided convolution loses).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MnistCNN", "SmallResNet", "LeNet", "build_small", "SMALL_TAPS", "SMALL_ARCHS"]

# Default activation taps (block outputs, never a shared activation module: method.md §3).
SMALL_TAPS: dict[str, tuple[str, ...]] = {
    "mnist_cnn": ("block1", "block2", "block3"),
    "small_resnet": ("stem", "layer1", "layer2", "layer3"),
    "lenet": ("block1", "block2", "block3"),
}
SMALL_ARCHS: tuple[str, ...] = tuple(SMALL_TAPS)  # the architectures train_classifier runs may name


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


class MnistCNN(nn.Module):
    """Input ``(B, C, S, S)`` normalized floats; output logits ``(B, num_classes)``."""

    def __init__(self, in_channels: int = 1, input_size: int = 28, num_classes: int = 10) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2))
        self.block2 = nn.Sequential(nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2))
        self.block3 = nn.Sequential(nn.Conv2d(128, 256, 3, 1, 0), nn.LeakyReLU(0.2))
        side = _conv_out(_conv_out(_conv_out(input_size, 4, 2, 1), 4, 2, 1), 3, 1, 0)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(256 * side * side, 128), nn.LeakyReLU(0.2),
                                  nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block3(self.block2(self.block1(x))))


class LeNet(nn.Module):
    """Input ``(B, C, S, S)`` normalized floats (S ≥ 12); output logits ``(B, num_classes)``."""

    def __init__(self, in_channels: int = 1, input_size: int = 28, num_classes: int = 10) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, 6, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        side = (input_size // 2 - 4) // 2
        self.block3 = nn.Sequential(nn.Flatten(), nn.Linear(16 * side * side, 120), nn.ReLU(), nn.Linear(120, 84),
                                    nn.ReLU())
        self.binary = num_classes == 2
        self.head = nn.Linear(84, 1 if self.binary else num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.block3(self.block2(self.block1(x))))
        return torch.cat([torch.zeros_like(out), out], 1) if self.binary else out


def _stage(cin: int, cout: int, stride: int, blocks: int = 2) -> nn.Sequential:
    from torchvision.models.resnet import BasicBlock  # here: the params check imports this module's names

    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    layers = [BasicBlock(cin, cout, stride, down)] + [BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class SmallResNet(nn.Module):
    """Input ``(B, C, S, S)`` normalized floats, any S ≥ 8; output logits ``(B, num_classes)``."""

    def __init__(self, in_channels: int = 1, input_size: int = 28, num_classes: int = 10) -> None:
        super().__init__()
        pool = [nn.MaxPool2d(2)] if input_size >= 48 else []  # global pooling: any size works
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  *pool)
        self.layer1 = _stage(16, 16, 1)
        self.layer2 = _stage(16, 32, 2)
        self.layer3 = _stage(32, 64, 2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def build_small(arch: str, in_channels: int, input_size: int, num_classes: int) -> nn.Module:
    """Build an untrained small classifier by name (``mnist_cnn``, ``small_resnet`` or ``lenet``)."""
    archs = {"mnist_cnn": MnistCNN, "small_resnet": SmallResNet, "lenet": LeNet}
    if arch not in archs:
        raise ValueError(f"unknown small architecture {arch!r}; known: {sorted(archs)}")
    return archs[arch](in_channels=in_channels, input_size=input_size, num_classes=num_classes)
