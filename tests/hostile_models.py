"""Models for the hardening tests: ones that some formats cannot take."""

from __future__ import annotations

import torch
from torch import nn


class Branchy(nn.Module):
    """A Python branch on a tensor's value: tracing (ONNX, OpenVINO) records the branch taken,
    torch.export (LiteRT, ExecuTorch) refuses a data-dependent condition."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() >= 0:  # always true, but only a tracer can know that
            return self.body(x)
        return -self.body(x)


def branchy() -> nn.Module:
    torch.manual_seed(0)
    return Branchy().eval()
