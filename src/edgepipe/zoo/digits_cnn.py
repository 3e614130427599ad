"""A small CNN for the digits at 1x3x32x32: three conv-BN-ReLU stages, pooling, one Linear.

A plain chain of torch.nn modules (an ``nn.Sequential`` with named layers, no control
flow), so quantizers, binarizers, factorizers and the splitter can walk it layer by layer
and a cut point is just a layer name (``pool2``, say).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from edgepipe.zoo.layers import conv_stage

INPUT_SHAPE = (1, 3, 32, 32)


class DigitsCNN(nn.Sequential):
    """conv1-bn1-relu1-pool1 (16x16), conv2-... (8x8), conv3-bn3-relu3, avgpool, fc."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        c1, c2, c3 = widths
        super().__init__(OrderedDict([
            *conv_stage(1, 3, c1),
            *conv_stage(2, c1, c2),
            *conv_stage(3, c2, c3, pool=False),
            ("avgpool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(c3, num_classes)),
        ]))
