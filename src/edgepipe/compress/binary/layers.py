"""The layers of a binarized network: Brevitas binary blocks for training, plain ones to deploy.

A binary block replaces one Conv1d / Conv2d / Linear (groups 1) and the BatchNorm that
follows it in a Sequential::

    x -> [sign(x - shift), straight-through] -> binary conv -> BatchNorm -> (+ shortcut(x))

Weights are binarized by Brevitas' ``BinaryQuant`` with a per-output-channel scale from the
mean |w| of the channel (XNOR-Net). With binary activations the block's input goes through
a sign with a learnable per-channel threshold ``shift`` (ReActNet's RSign: the blocks of a
ReLU network see non-negative inputs, whose plain sign is always +1) and Brevitas' clamped
straight-through estimator (gradient 1 inside [-1, 1], 0 outside); a real-valued shortcut
carries the block's input around it (Bi-Real Net), parameter-free:

- same shape: the identity;
- output channels a multiple k of the input's: the input repeated k times along channels;
- input channels a multiple k of the output's: the mean of each group of k channels;
- a smaller output grid by an integer factor (a strided conv): average pooling by it.

A block whose shapes fit none of these (a conv that changes the grid by padding, say) gets
no shortcut, and the record says so. To deploy, BatchNorm is folded into the binary layer:
its weight stays ``sign * scale`` (the BatchNorm's per-channel factor joins the scale, its
sign the weight's), with a bias; the scales, biases and thresholds are rounded to float16,
which is what the packed file stores and the exported graph computes with.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

COMPUTE = (nn.Conv1d, nn.Conv2d, nn.Linear)


@functools.cache
def quantizers() -> tuple[Any, Any]:
    """(weight, activation) Brevitas quantizers: per-channel mean-|w| binary; clamped sign."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brevitas.core.quant import BinaryQuant
        from brevitas.inject.enum import ScalingImplType, ScalingPerOutputType, StatsOp
        from brevitas.quant.base import SignedBinaryClampedConst
        from brevitas.quant.binary import SignedBinaryActPerTensorConst
        from brevitas.quant.solver import WeightQuantSolver

    class BinaryWeightPerChannelMeanAbs(SignedBinaryClampedConst, WeightQuantSolver):
        tensor_quant = BinaryQuant  # not clamped: the float weights keep training freely
        scaling_impl_type = ScalingImplType.STATS
        scaling_stats_op = StatsOp.AVE  # mean |w|
        scaling_per_output_type = ScalingPerOutputType.CHANNEL

    return BinaryWeightPerChannelMeanAbs, SignedBinaryActPerTensorConst


class Shortcut(nn.Module):
    """Parameter-free real-valued path around a binary block (see the module docstring)."""

    def __init__(self, channel_mode: str, factor: int, pool: int, channel_dim: int) -> None:
        super().__init__()
        self.channel_mode, self.factor, self.pool, self.channel_dim = (
            channel_mode, factor, pool, channel_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool > 1:
            pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool1d
            x = pool(x, self.pool, self.pool)
        if self.channel_mode == "repeat":
            x = torch.cat([x] * self.factor, dim=self.channel_dim)
        elif self.channel_mode == "average":
            dim = self.channel_dim % x.dim()
            shape = (*x.shape[:dim], x.shape[dim] // self.factor, self.factor, *x.shape[dim + 1:])
            x = x.reshape(shape).mean(dim=dim + 1)
        return x

    def describe(self) -> str:
        parts = [] if self.pool <= 1 else [f"average pool {self.pool}"]
        if self.channel_mode != "identity":
            parts.append(f"channels {self.channel_mode.removesuffix('e')}ed x{self.factor}")
        return ", ".join(parts) or "identity"


def plan_shortcut(in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                  linear: bool) -> tuple[Shortcut | None, str]:
    """The shortcut from a block's input shape to its output shape, or None and why not."""
    channel_dim = -1 if linear else 1
    cin, cout = in_shape[channel_dim], out_shape[channel_dim]
    grid_in = in_shape[2:] if not linear else in_shape[1:-1]
    grid_out = out_shape[2:] if not linear else out_shape[1:-1]
    pool = 1
    if grid_in != grid_out:
        ratios = {i // o for i, o in zip(grid_in, grid_out, strict=True) if o and i % o == 0}
        if (len(ratios) != 1 or len(grid_in) not in (1, 2) or linear
                or any(i != o * next(iter(ratios)) for i, o in zip(grid_in, grid_out,
                                                                    strict=True))):
            return None, f"the grid changes from {grid_in} to {grid_out} by no integer factor"
        pool = ratios.pop()
    if cin == cout:
        return Shortcut("identity", 1, pool, channel_dim), ""
    if cout % cin == 0:
        return Shortcut("repeat", cout // cin, pool, channel_dim), ""
    if cin % cout == 0:
        return Shortcut("average", cin // cout, pool, channel_dim), ""
    return None, f"{cin} input and {cout} output channels are not multiples of each other"


GEOMETRY = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size",
            "stride", "padding", "dilation", "groups")


def copy_geometry(layer: nn.Module, block: nn.Module) -> None:
    """Give ``block`` the replaced ``layer``'s geometry (stride, channels...), for a model's
    forward that reads it: Whisper's encoder reads ``conv1.stride`` to check its input."""
    for name in GEOMETRY:
        if hasattr(layer, name):
            setattr(block, name, getattr(layer, name))


class BinaryBlock(nn.Module):
    """Training form: [sign(x - shift)] -> Brevitas binary layer -> norm -> + shortcut(x)."""

    def __init__(self, layer: nn.Module, norm: nn.Module | None, shortcut: Shortcut | None,
                 binary_input: bool) -> None:
        super().__init__()
        import brevitas.nn as qnn

        weight_quant, act_quant = quantizers()
        common = {"bias": layer.bias is not None, "weight_quant": weight_quant,
                  "return_quant_tensor": False}
        if isinstance(layer, nn.Linear):
            self.layer = qnn.QuantLinear(layer.in_features, layer.out_features, **common)
            channels = layer.in_features
        else:
            kind = qnn.QuantConv2d if isinstance(layer, nn.Conv2d) else qnn.QuantConv1d
            self.layer = kind(layer.in_channels, layer.out_channels, layer.kernel_size,
                              layer.stride, layer.padding, layer.dilation, layer.groups,
                              padding_mode=layer.padding_mode, **common)
            channels = layer.in_channels
        self.layer.weight.data.copy_(layer.weight.data)
        if layer.bias is not None:
            self.layer.bias.data.copy_(layer.bias.data)
        copy_geometry(layer, self)
        self.norm = norm if norm is not None else nn.Identity()
        self.shortcut = shortcut
        self.linear = isinstance(layer, nn.Linear)
        self.sign = qnn.QuantIdentity(act_quant=act_quant, return_quant_tensor=False) \
            if binary_input else None
        self.shift = nn.Parameter(torch.zeros(channels)) if binary_input else None
        self.calibrating = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.sign is not None:
            assert self.shift is not None
            if self.calibrating:  # the threshold starts at each channel's mean input
                dims = [d for d in range(x.dim()) if d != channel_axis(x, self.linear)]
                self.shift.data.copy_(x.detach().mean(dim=dims))
            y = self.sign(x - view_channels(self.shift, x, self.linear))
        y = self.norm(self.layer(y))
        return y if self.shortcut is None else y + self.shortcut(x)


class DeployBlock(nn.Module):
    """Deployed form: [where(x - shift >= 0, 1, -1)] -> plain layer with +-scale weights."""

    def __init__(self, layer: nn.Module, shift: torch.Tensor | None,
                 shortcut: Shortcut | None, linear: bool) -> None:
        super().__init__()
        self.layer, self.shortcut, self.linear = layer, shortcut, linear
        self.register_buffer("shift", shift)
        copy_geometry(layer, self)


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.shift is not None:  # Brevitas' sign: 0 -> +1
            y = torch.where(x - view_channels(self.shift, x, self.linear) >= 0, 1.0, -1.0)
        y = self.layer(y)
        return y if self.shortcut is None else y + self.shortcut(x)


def channel_axis(x: torch.Tensor, linear: bool) -> int:
    return x.dim() - 1 if linear else 1


def view_channels(values: torch.Tensor, x: torch.Tensor, linear: bool) -> torch.Tensor:
    """``values`` (one per channel) shaped to broadcast against ``x``."""
    if linear:
        return values
    return values.view(1, -1, *([1] * (x.dim() - 2)))


def to_deploy(block: BinaryBlock) -> tuple[DeployBlock, dict[str, torch.Tensor]]:
    """The deployed block and its packed tensors (int8 signs, float16 scale / bias / shift).

    BatchNorm y = g (z - m) / s + b folds into z = scale * sign(w) * x + c as weight signs
    sign(w) * sign(g), scale * |g / s|, bias g (c - m) / s + b.
    """
    with torch.no_grad():
        quant = block.layer.quant_weight()
        signs = torch.where(quant.value >= 0, 1.0, -1.0)
        scale = quant.scale.reshape(-1).clone()
        out_channels = signs.shape[0]
        bias = block.layer.bias.detach().clone() if block.layer.bias is not None \
            else torch.zeros(out_channels)
        norm = block.norm
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            factor = (norm.weight if norm.affine else torch.ones(out_channels)) / torch.sqrt(
                norm.running_var + norm.eps)
            shift_b = norm.bias if norm.affine else torch.zeros(out_channels)
            bias = (bias - norm.running_mean) * factor + shift_b
            signs = signs * torch.where(factor < 0, -1.0, 1.0).view(-1, *[1] * (signs.dim() - 1))
            scale = scale * factor.abs()
        scale, bias = _half(scale), _half(bias)
        shift = None if block.shift is None else _half(block.shift.detach())
        source = block.layer
        plain: nn.Module
        if isinstance(source, nn.Linear):
            plain = nn.Linear(source.in_features, source.out_features, bias=True)
        else:
            kind = nn.Conv2d if signs.dim() == 4 else nn.Conv1d
            plain = kind(source.in_channels, source.out_channels, source.kernel_size,
                         source.stride, source.padding, source.dilation, source.groups,
                         bias=True, padding_mode=source.padding_mode)
        plain.weight.copy_(signs * scale.view(-1, *[1] * (signs.dim() - 1)))
        plain.bias.copy_(bias)
    packed = {"signs": signs.to(torch.int8), "scale": scale.half(), "bias": bias.half()}
    if shift is not None:
        packed["shift"] = shift.half()
    return DeployBlock(plain.eval(), shift, block.shortcut, block.linear), packed


def _half(values: torch.Tensor) -> torch.Tensor:
    """Rounded to float16 and back: the values the packed file holds."""
    return values.detach().to(torch.float16).to(torch.float32)


def weight_macs(layer: nn.Module, out_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one sample through ``layer`` (computed from its output shape)."""
    per_output = layer.weight[0].numel()
    outputs = math.prod(out_shape[1:])
    return int(outputs * per_output)
