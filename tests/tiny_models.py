"""Tiny models built in tests: fast, deterministic, covering the shapes edgepipe must handle."""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_features: int = 64, hidden: int = 32, classes: int = 10) -> nn.Module:
    """Two Linear layers with a ReLU: the smallest classifier."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class ResidualCNN(nn.Module):
    """Conv-BN-ReLU, a residual block (so a tensor lives across layers), pooling and a head."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                  nn.ReLU())
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.conv2(self.relu(self.conv1(x)))
        x = self.relu(x + y)
        return self.fc(torch.flatten(self.pool(x), 1))


class TwoInputModel(nn.Module):
    """Token ids (int64) and a float mask: a model with several, non-float inputs."""

    def __init__(self, vocab: int = 50, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids) * mask.unsqueeze(-1)
        return self.fc(h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1))


def residual_cnn() -> nn.Module:
    return ResidualCNN()


def two_input_model() -> nn.Module:
    return TwoInputModel()


def broken_factory() -> nn.Module:
    """A factory that raises, as user code sometimes does."""
    raise ValueError("width must be positive")


def not_a_module() -> dict:
    return {"not": "a module"}


class ConvZoo(nn.Module):
    """Plain, depthwise and transposed convolutions, a residual add and a Linear; no
    BatchNorm, so an ONNX export keeps exactly the torch weights."""

    def __init__(self, channels: int = 4, classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.up = nn.ConvTranspose2d(channels, 2, 2, stride=2)
        self.fc = nn.Linear(2 * 16 * 16, classes)  # for a 1x3x16x16 input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        x = x + self.depthwise(x)
        return self.fc(torch.flatten(self.up(x), 1))


class DataDependentModel(nn.Module):
    """Branches on tensor data (``if x.sum() > 0``), which torch.fx cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.positive = nn.Linear(8, 4)
        self.negative = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.positive(x)
        return self.negative(x)


def conv_zoo() -> nn.Module:
    return ConvZoo()


def data_dependent_model() -> nn.Module:
    return DataDependentModel()


class SharedLinear(nn.Module):
    """One Linear applied twice: its weights must be counted once."""

    def __init__(self, features: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.fc(x)))


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` (a tuple-returning leaf module) over a sequence."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]


def many_layers(count: int = 50) -> nn.Module:
    """A long chain of cheap layers, to exercise tables that cap their rows."""
    return nn.Sequential(*[nn.Tanh() for _ in range(count)])


def wide_mlp() -> nn.Module:
    """An MLP with 0.6 M parameters: 2.4 MB in float32, more than a 1 MB microcontroller flash."""
    return mlp(in_features=64, hidden=1024, classes=512)


class _ConcatMany(nn.Module):
    """A 1x1 conv whose output is concatenated with itself ``count`` times (one CONCATENATION
    op with ``count`` inputs in TFLite)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.cat([y * (i + 1) for i in range(self.count)], dim=1).mean((2, 3))


def concat_many(count: int = 11) -> nn.Module:
    return _ConcatMany(count)


class StridedProjectionCNN(nn.Module):
    """A ResNet basic block (convolutions and BatchNorms as attributes, as torchvision writes
    them) whose shortcut is a strided 1x1 projection with its own BatchNorm, for 1x3x8x8.
    The 2x2 stem leaves an odd 7x7 grid, which the strided layers take to 4x4."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, channels, 2, bias=False)
        self.bn0 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(2 * channels)
        self.conv2 = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * channels)
        self.project = nn.Conv2d(channels, 2 * channels, 1, stride=2, bias=False)
        self.project_bn = nn.BatchNorm2d(2 * channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.stem(x)))
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        x = torch.relu(y + self.project_bn(self.project(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class TwoOutputCNN(nn.Module):
    """Class logits and a box (4 numbers) from one trunk: a tuple output, for 1x3x8x8."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classes = nn.Linear(2 * channels, classes)
        self.box = nn.Linear(2 * channels, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.relu3(self.conv3(self.relu2(self.conv2(x))))
        features = torch.flatten(self.pool(x), 1)
        return self.classes(features), self.box(features)


class TinyViT(nn.Module):
    """Patch embedding (a strided conv), ``nn.TransformerEncoder`` (MultiheadAttention and
    its fused fast path), a mean over tokens and a Linear head, for 1x3x8x8 inputs."""

    def __init__(self, dim: int = 16, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, dim, 2, stride=2)
        self.position = nn.Parameter(torch.randn(1, 16, dim) * 0.1)  # 4x4 patches
        layer = nn.TransformerEncoderLayer(dim, 2, dim_feedforward=32, dropout=0.0,
                                           norm_first=True, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.mix = nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2) + self.position
        return self.fc(torch.relu(self.mix(self.enc(tokens).mean(1))))


class AuxBranchCNN(nn.Module):
    """An auxiliary classifier that runs only in training mode (as GoogLeNet's aux1 / aux2):
    training returns (logits, aux logits), inference the logits alone. For 1x3x8x8."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1),
                                   nn.BatchNorm2d(channels), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                   nn.BatchNorm2d(channels), nn.ReLU())
        self.aux1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(channels, classes))
        self.conv3 = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                   nn.BatchNorm2d(channels), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(self.conv1(x))
        aux = self.aux1(x) if self.training else None
        logits = self.fc(torch.flatten(self.pool(self.conv3(x)), 1))
        return (logits, aux) if self.training else logits


def strided_projection_cnn() -> nn.Module:
    return StridedProjectionCNN()


def two_output_cnn() -> nn.Module:
    return TwoOutputCNN()


def tiny_vit() -> nn.Module:
    return TinyViT()


def aux_branch_cnn() -> nn.Module:
    return AuxBranchCNN()


class TinySegmenter(nn.Module):
    """Per-pixel class scores in a dict (as torchvision's segmentation models give them):
    ``{"out": (N, 3, H, W)}``; labels of image classes do not fit it. For 1x3x8x8."""

    def __init__(self, channels: int = 8, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.head = nn.Conv2d(channels, classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return {"out": self.head(torch.relu(self.conv3(x)))}


def tiny_segmenter() -> nn.Module:
    return TinySegmenter()
