"""The learned bottleneck at a cut: an encoder, an integer quantizer and a decoder.

The encoder ends the head: a 3x3 convolution (optionally strided) down to a few channels,
batch norm and ReLU, then a uniform quantizer to ``bits``-bit unsigned codes with a learned
scale (LSQ: the rounding is passed straight through for the input's gradient, and the scale
gets its own gradient; it starts from the calibrated 99.9th percentile). What crosses the
link is that small integer tensor. The decoder starts the tail: it dequantizes with the
same scale, restores the channels (and the size, when the encoder was strided) and ends
with ReLU when the original tensor at the cut is non-negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class Quantizer(nn.Module):
    """x -> round(clamp(x / scale, 0, 2^bits - 1)), differentiable in x and in the scale."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.levels = float(2 ** bits - 1)
        self.log_scale = nn.Parameter(torch.zeros(()))

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def calibrate(self, x: torch.Tensor) -> None:
        """Start the scale at the 99.9th percentile of ``x`` over the levels."""
        top = torch.quantile(x.detach().flatten().float()[:1_000_000], 0.999).clamp_min(1e-6)
        self.log_scale.data = (top / self.levels).log()

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in code units, clamped to the codes' range, before rounding."""
        return torch.clamp(x / self.scale, 0.0, self.levels)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The integer codes (as floats), rounding passed straight through."""
        scaled = self.scaled(x)
        return scaled + (torch.round(scaled) - scaled).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.codes(x) * self.scale


class Encoder(nn.Module):
    def __init__(self, channels: int, bottleneck: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, bottleneck, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Decoder(nn.Module):
    def __init__(self, bottleneck: int, channels: int, stride: int = 1,
                 non_negative: bool = True) -> None:
        super().__init__()
        self.up = (nn.ConvTranspose2d(bottleneck, bottleneck, stride, stride=stride)
                   if stride > 1 else nn.Identity())
        self.conv1 = nn.Conv2d(bottleneck, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.non_negative = non_negative

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(self.up(x))))
        x = self.conv2(x)
        return F.relu(x) if self.non_negative else x


class Bottleneck(nn.Module):
    """Encoder, quantizer and decoder in training (the codes never leave the module), and
    with ``entropy`` the learned density of the codes the range coder will use
    (:mod:`edgepipe.split.entropy`)."""

    def __init__(self, channels: int, bottleneck: int, bits: int = 8, stride: int = 1,
                 non_negative: bool = True, entropy: bool = False) -> None:
        super().__init__()
        self.encoder = Encoder(channels, bottleneck, stride)
        self.quantizer = Quantizer(bits)
        self.decoder = Decoder(bottleneck, channels, stride, non_negative)
        self.density: nn.Module | None = None
        if entropy:
            from edgepipe.split.entropy import FactorizedDensity

            self.density = FactorizedDensity(bottleneck, 2 ** bits - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer(self.encoder(x)))


class DeviceHead(nn.Module):
    """What runs on the device: the head, the encoder, and the codes as int8 (code - 128:
    TFLite Micro's CAST has no uint8 output, and the bytes on the wire are the same)."""

    def __init__(self, head: nn.Module, bottleneck: Bottleneck) -> None:
        super().__init__()
        self.head = head
        self.encoder = bottleneck.encoder
        self.quantizer = bottleneck.quantizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = torch.clamp(self.encoder(self.head(x)) / self.quantizer.scale, 0.0,
                             self.quantizer.levels)
        return (torch.round(scaled) - 128.0).to(torch.int8)


class ServerTail(nn.Module):
    """What runs on the server: int8 codes in (code - 128), dequantized, decoded, the tail."""

    def __init__(self, bottleneck: Bottleneck, tail: nn.Module) -> None:
        super().__init__()
        self.quantizer = bottleneck.quantizer
        self.decoder = bottleneck.decoder
        self.tail = tail

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.tail(self.decoder((codes.to(torch.float32) + 128.0) * self.quantizer.scale))
