"""Tiny models for the compression tests (beside ``tiny_models``, which other work extends)."""

from __future__ import annotations

import torch
from torch import nn


class GruClassifier(nn.Module):
    """A GRU over a short sequence, then a Linear head: the GRU is a layer ONNX Runtime's
    static int8 quantizer leaves in float."""

    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.gru(x)
        return self.fc(sequence[:, -1])


def gru_classifier() -> nn.Module:
    return GruClassifier()
