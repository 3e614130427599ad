"""Building blocks the bundled CNNs share, as named layers for an ``nn.Sequential``."""

from __future__ import annotations

from torch import nn


def conv_stage(index: int, cin: int, cout: int, pool: bool = True) -> list[tuple[str, nn.Module]]:
    """``conv<index>`` (3x3, same padding, no bias), ``bn<index>``, ``relu<index>`` and, with
    ``pool``, ``pool<index>`` (2x2 max pooling)."""
    layers: list[tuple[str, nn.Module]] = [
        (f"conv{index}", nn.Conv2d(cin, cout, 3, padding=1, bias=False)),
        (f"bn{index}", nn.BatchNorm2d(cout)),
        (f"relu{index}", nn.ReLU()),
    ]
    if pool:
        layers.append((f"pool{index}", nn.MaxPool2d(2)))
    return layers
