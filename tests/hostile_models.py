"""Models for the hardening tests: ones that some formats cannot take."""

from __future__ import annotations

import torch
from torch import nn


class TinyViT(nn.Module):
    """Patches + one torch.nn.TransformerEncoder layer: ONNX takes it, OpenVINO's converter
    cannot trace the fused encoder."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 8, 8)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.enc(tokens).mean(1))


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    return TinyViT().eval()
