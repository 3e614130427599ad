"""Tiny models for the export tests (beside ``tiny_models``, which other work extends)."""

from __future__ import annotations

import torch
from torch import nn


class FeaturesAndLogits(nn.Module):
    """Two outputs: a 4-D feature map (layout matters for NHWC) and 2-D logits."""

    def __init__(self, channels: int = 4, classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.conv(x))
        return features, self.fc(features.mean(dim=(2, 3)))


class DataDependentBranch(nn.Module):
    """A branch on a tensor's value: torch.export (dynamo) refuses it, tracing takes one path."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > -1e9:  # always true here, but only known at run time
            return self.fc(x)
        return -self.fc(x)


class RaisingModel(nn.Module):
    """A model whose forward raises, as buggy user code does."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("forward is not implemented for this checkpoint")


def features_and_logits() -> nn.Module:
    return FeaturesAndLogits()


def data_dependent_branch() -> nn.Module:
    return DataDependentBranch()


def raising_model() -> nn.Module:
    return RaisingModel()


class BagOfWords(nn.Module):
    """``nn.EmbeddingBag``: ONNX and OpenVINO convert it; litert-torch has no lowering for
    ``aten._embedding_bag`` (the conversion fails with "Lowering not found")."""

    def __init__(self, vocab: int = 20, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.fc = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bag(tokens))


class CumulativeProduct(nn.Module):
    """``torch.cumprod`` inside a layer: no ONNX translation (dynamo or TorchScript), no
    LiteRT lowering and no OpenVINO conversion rule."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 4)
        self.gate = Cumprod()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(torch.tanh(self.fc(x)))


class Cumprod(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumprod(x, dim=-1)


def bag_of_words() -> nn.Module:
    return BagOfWords()


def cumulative_product() -> nn.Module:
    return CumulativeProduct()
