"""A small MLP for the digits as 64 features (1x64): two hidden ReLU layers, one output.

A plain chain of named torch.nn modules, like the CNN, so every compression method and the
splitter can treat it layer by layer.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

INPUT_SHAPE = (1, 64)


class DigitsMLP(nn.Sequential):
    """fc1 (64 -> 128) - relu1 - fc2 (128 -> 64) - relu2 - fc3 (64 -> classes)."""

    def __init__(self, num_classes: int = 10, hidden: tuple[int, int] = (128, 64)) -> None:
        h1, h2 = hidden
        super().__init__(OrderedDict([
            ("fc1", nn.Linear(64, h1)),
            ("relu1", nn.ReLU()),
            ("fc2", nn.Linear(h1, h2)),
            ("relu2", nn.ReLU()),
            ("fc3", nn.Linear(h2, num_classes)),
        ]))
