"""Run the first stages of a CNN patch by patch (MCUNetV2-style), exactly.

A patch of the stage's output needs a window of its input (the receptive field, with a
halo shared with the neighbours). Zero padding is the subtle part: a convolution pads
*its own* input map, so padding only the image would be wrong for every later layer. Here
each convolution and pooling runs with ``padding=0`` on a tile that already holds the
halo, and explicit zeros (``-inf`` for max pooling) are added only on the sides where the
window reaches past that layer's map. So every layer sees exactly the values the full-map
run sees, and the stitched result equals it up to float rounding.

Supported modules: ``Conv2d``, ``MaxPool2d``, ``AvgPool2d`` (no ceil mode or divisor
override; with or without the padding counted), batch norm and
element-wise activations, ``Sequential`` (and subclasses), and blocks with a ``conv``
chain and ``use_res_connect`` (torchvision's MobileNetV2 ``InvertedResidual``).
A region is ``((h0, h1), (w0, w1))`` in the coordinates of the map it belongs to.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ELEMENTWISE = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.Identity,
               nn.Dropout, nn.Hardsigmoid, nn.Sigmoid, nn.LeakyReLU)
Region = tuple[tuple[int, int], tuple[int, int]]


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _window(module: nn.Module) -> tuple[tuple[int, int], ...] | None:
    """(kernel, stride, padding, dilation) pairs of a sliding-window module, else None."""
    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        dilation = getattr(module, "dilation", 1)
        if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
            return None
        if getattr(module, "ceil_mode", False) or isinstance(module.padding, str) or \
                getattr(module, "divisor_override", None):
            return None
        return (_pair(module.kernel_size), _pair(module.stride), _pair(module.padding),
                _pair(dilation))
    return None


def supported(module: nn.Module) -> bool:
    """Whether the module can run patch by patch here."""
    if _window(module) is not None or isinstance(module, ELEMENTWISE):
        return True
    if isinstance(module, nn.Sequential):
        return all(supported(child) for child in module)
    if hasattr(module, "use_res_connect") and isinstance(getattr(module, "conv", None),
                                                         nn.Sequential):
        return supported(module.conv)
    return False


def _children(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return list(module)
    return list(module.conv)  # a residual block


def out_size(module: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    """The spatial size of the module's output for an input of ``size``."""
    window = _window(module)
    if window is not None:
        (k, s, p, d) = window
        return tuple(math.floor((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) / s[i]) + 1
                     for i in range(2))  # type: ignore[return-value]
    if isinstance(module, ELEMENTWISE):
        return size
    for child in _children(module):
        size = out_size(child, size)
    return size


def need(module: nn.Module, region: Region) -> Region:
    """The input region (unclipped: it may reach past the map) ``region`` of the output
    depends on."""
    window = _window(module)
    if window is not None:
        (k, s, p, d) = window
        return tuple((lo * s[i] - p[i], (hi - 1) * s[i] - p[i] + d[i] * (k[i] - 1) + 1)
                     for i, (lo, hi) in enumerate(region))  # type: ignore[return-value]
    if isinstance(module, ELEMENTWISE):
        return region
    for child in reversed(_children(module)):
        region = need(child, region)
    return region  # a residual's identity needs ``region`` itself, inside this one


def clip(region: Region, size: tuple[int, int]) -> Region:
    return tuple((max(0, lo), min(size[i], hi)) for i, (lo, hi) in enumerate(region))  # type: ignore[return-value]


def crop(x: torch.Tensor, have: Region, want: Region) -> torch.Tensor:
    """The part ``want`` of a tile that covers ``have`` (both in map coordinates)."""
    (h0, h1), (w0, w1) = want
    return x[..., h0 - have[0][0]:h1 - have[0][0], w0 - have[1][0]:w1 - have[1][0]]


def run_tile(module: nn.Module, x: torch.Tensor, have: Region, want: Region,
             size: tuple[int, int], macs: list[int] | None = None) -> torch.Tensor:
    """The module's output over ``want`` from a tile ``x`` covering ``have`` of its input
    map of ``size`` (``have`` must contain the clipped need of ``want``). Conv MACs are
    added to ``macs``."""
    window = _window(module)
    if window is not None:
        wanted = need(module, want)
        inside = clip(wanted, size)
        tile = crop(x, have, inside)
        pads = [inside[1][0] - wanted[1][0], wanted[1][1] - inside[1][1],
                inside[0][0] - wanted[0][0], wanted[0][1] - inside[0][1]]
        if isinstance(module, nn.MaxPool2d):
            tile = F.pad(tile, pads, value=float("-inf"))
            return F.max_pool2d(tile, module.kernel_size, module.stride, 0, module.dilation)
        tile = F.pad(tile, pads)
        if isinstance(module, nn.AvgPool2d):
            pooled = F.avg_pool2d(tile, module.kernel_size, module.stride, 0)
            if module.count_include_pad or not any(pads):
                return pooled
            # Average over the real pixels only: divide by the share of the window that is
            # inside the map (the same pooling over a mask of ones, zero in the padding).
            ones = F.pad(torch.ones_like(crop(x, have, inside)[:, :1]), pads)
            return pooled / F.avg_pool2d(ones, module.kernel_size, module.stride, 0)
        out = F.conv2d(tile, module.weight, module.bias, module.stride, 0, module.dilation,
                       module.groups)
        if macs is not None:
            macs.append(out.numel() // out.shape[0] * module.weight[0].numel())
        return out
    if isinstance(module, ELEMENTWISE):
        return module(crop(x, have, want))
    children = _children(module)
    wants = [want]
    for child in reversed(children[1:]):
        wants.insert(0, need(child, wants[0]))
    current, current_have, current_size = x, have, size
    for child, child_want in zip(children, wants, strict=True):
        target = clip(child_want, out_size(child, current_size))
        current = run_tile(child, current, current_have, target, current_size, macs)
        current_have, current_size = target, out_size(child, current_size)
    if getattr(module, "use_res_connect", False):
        current = current + crop(x, have, want)
    return current


def patches(size: tuple[int, int], grid: int) -> list[Region]:
    """``grid`` x ``grid`` near-equal regions covering a map of ``size``."""
    cuts = [[round(i * size[d] / grid) for i in range(grid + 1)] for d in range(2)]
    return [((cuts[0][i], cuts[0][i + 1]), (cuts[1][j], cuts[1][j + 1]))
            for i in range(grid) for j in range(grid)]


def run_patches(stage: nn.Module, x: torch.Tensor, grid: int) -> torch.Tensor:
    """The stage's output computed patch by patch from ``x`` (N, C, H, W), stitched."""
    size = (x.shape[-2], x.shape[-1])
    full = ((0, size[0]), (0, size[1]))
    rows = []
    outs = patches(out_size(stage, size), grid)
    for i in range(grid):
        row = []
        for region in outs[i * grid:(i + 1) * grid]:
            tile_region = clip(need(stage, region), size)
            tile = crop(x, full, tile_region)
            row.append(run_tile(stage, tile, tile_region, region, size))
        rows.append(torch.cat(row, dim=-1))
    return torch.cat(rows, dim=-2)
