"""A small residual CNN for Fashion-MNIST at 1x1x28x28 (gray, 0..1), 10 classes.

An ``nn.Sequential`` of named stages, like the digits CNN, so quantizers, binarizers,
factorizers and the splitter walk it stage by stage and a cut point is a stage name
(``pool2``, say); the residual block is a module of its own (conv-BN-ReLU-conv-BN plus the
identity, then ReLU), which exports as a plain Add node.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from edgepipe.zoo.layers import conv_stage

INPUT_SHAPE = (1, 1, 28, 28)


class Residual(nn.Module):
    """``relu(x + bn2(conv2(relu(bn1(conv1(x))))))`` at a constant width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(x + self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))


class FashionCNN(nn.Sequential):
    """conv1 (28x28) - pool1 (14x14) - conv2 - pool2 (7x7) - res2 - conv3 - pool3 (3x3) - fc.

    About 2.8 M multiply-adds per image and 48 k parameters (under 200 KB as float32).
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        c1, c2, c3 = widths
        super().__init__(OrderedDict([
            *conv_stage(1, 1, c1),
            *conv_stage(2, c1, c2),
            ("res2", Residual(c2)),
            *conv_stage(3, c2, c3),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(c3 * 3 * 3, num_classes)),
        ]))
