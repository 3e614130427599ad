"""Tiny models for the compression tests (beside ``tiny_models``, which other work extends)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
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


def box_target(x: torch.Tensor) -> torch.Tensor:
    """A box-like regression target per sample: the mean of each half of the image."""
    image = x[:, 0]
    return torch.stack([image[:, :, :4].mean((1, 2)), image[:, :, 4:].mean((1, 2)),
                        image[:, :4].mean((1, 2)), image[:, 4:].mean((1, 2))], 1)


def trained(factory: str, epochs: int = 12):
    """``tiny_models:<factory>`` trained on the digits train split, and the splits."""
    from edgepipe.data import load_data_for_model, make_splits
    from edgepipe.model import load_model

    loaded = load_model(f"tiny_models:{factory}", input_shape=(1, 3, 8, 8))
    splits = make_splits(load_data_for_model("builtin:digits", loaded.inputs), seed=0, calib_size=128)
    module = loaded.module
    torch.manual_seed(0)
    x = torch.from_numpy(splits.train.x)
    y = torch.from_numpy(splits.train.labels.astype(np.int64))
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    with torch.random.fork_rng():
        for _ in range(epochs):
            module.train()
            for index in torch.randperm(len(x)).split(64):
                outputs = module(x[index])
                outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
                loss = F.cross_entropy(outputs[0], y[index])
                if type(module).__name__ == "TwoOutputCNN":
                    loss = loss + F.mse_loss(outputs[1], box_target(x[index]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    module.eval()
    return dataclasses.replace(loaded, module=module), splits


class Int4Mlp(nn.Module):
    """An MLP whose weights are most of its size (in_features 128 and 256), for 4-bit
    weight-only compression: 128 -> 256 -> 128 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.head = nn.Linear(128, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


def int4_mlp() -> nn.Module:
    return Int4Mlp()


class Int4Transformer(nn.Module):
    """Two encoder layers (d_model 64, 4 heads, feed-forward 128) over 16 tokens of 64
    features, then a Linear head on the mean token: the MatMuls 4-bit weight-only
    compression rewrites."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128,
                                           batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(1))


def int4_transformer() -> nn.Module:
    return Int4Transformer()
