"""Patch-based inference plans (MCUNetV2): peak activation memory and the MACs they cost.

A CNN's first stages hold its largest activation maps. Running them patch by patch (see
:mod:`edgepipe.analysis.patch_exec`) keeps only one patch's tiles alive, plus the stage's
full output buffer, which the rest of the network then reads layer by layer. The halos
overlap, so the patches recompute some pixels: the extra MACs.

Memory model (the same for the plan and the baseline, bytes per element given: 1 for int8
as an MCU runs it): a convolution or pooling holds its input and output; batch norm and
activations run in place (fused); a residual block also holds its input until the add.
The baseline runs the whole body layer by layer. In the patch stage the input image is
streamed patch by patch from the sensor or flash; ``peak_with_input_bytes`` also holds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from edgepipe.analysis.patch_exec import (
    ELEMENTWISE,
    Region,
    _children,
    _window,
    clip,
    need,
    out_size,
    patches,
    run_patches,
    run_tile,
    supported,
)


def _area(region: Region) -> int:
    return (region[0][1] - region[0][0]) * (region[1][1] - region[1][0])


def _channels(module: nn.Module, channels: int) -> int:
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if _window(module) is not None or isinstance(module, ELEMENTWISE):
        return channels
    for child in _children(module):
        channels = _channels(child, channels)
    return channels


def tile_peak(module: nn.Module, have: Region, want: Region, size: tuple[int, int],
              channels: int) -> int:
    """Most elements alive at once while ``run_tile`` computes ``want`` from ``have``."""
    if _window(module) is not None:
        return _area(have) * channels + _area(want) * _channels(module, channels)
    if isinstance(module, ELEMENTWISE):
        return _area(have) * channels
    children = _children(module)
    wants = [want]
    for child in reversed(children[1:]):
        wants.insert(0, need(child, wants[0]))
    held = _area(have) * channels if getattr(module, "use_res_connect", False) else 0
    peak, current_have, current_size, current_channels = 0, have, size, channels
    for index, (child, child_want) in enumerate(zip(children, wants, strict=True)):
        target = clip(child_want, out_size(child, current_size))
        peak = max(peak, tile_peak(child, current_have, target, current_size, current_channels)
                   + (held if index else 0))
        current_have, current_size = target, out_size(child, current_size)
        current_channels = _channels(child, current_channels)
    return peak


def layerwise_peak(module: nn.Module, size: tuple[int, int], channels: int) -> int:
    """Most elements alive at once running the module on the whole map, layer by layer."""
    full = ((0, size[0]), (0, size[1]))
    return tile_peak(module, full, ((0, out_size(module, size)[0]),
                                    (0, out_size(module, size)[1])), size, channels)


@dataclass(frozen=True)
class PatchPlan:
    """One plan: the first ``split`` blocks run in a ``grid`` x ``grid`` of patches."""

    split: int
    grid: int
    peak_bytes: int
    peak_with_input_bytes: int
    baseline_peak_bytes: int
    patch_stage_bytes: int
    rest_bytes: int
    stage_macs: int
    patch_macs: int
    bytes_per_element: int

    @property
    def reduction(self) -> float:
        return self.baseline_peak_bytes / self.peak_bytes

    @property
    def extra_macs_fraction(self) -> float:
        return self.patch_macs / self.stage_macs - 1 if self.stage_macs else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reduction": self.reduction,
                "extra_macs_fraction": self.extra_macs_fraction}


def body_of(model: nn.Module) -> nn.Sequential:
    """The sequence of blocks patch plans cut: ``model.features`` or the model itself."""
    body = getattr(model, "features", model)
    if not isinstance(body, nn.Sequential):
        raise ValueError("patch plans need a model whose body is an nn.Sequential of blocks "
                         "(model.features, as in torchvision's MobileNets)")
    return body


def plan(model: nn.Module, shape: tuple[int, int, int], split: int, grid: int,
         bytes_per_element: int = 1) -> PatchPlan:
    """The plan running ``body[:split]`` in ``grid`` x ``grid`` patches, for input C x H x W."""
    body = body_of(model)
    stage, rest = body[:split], body[split:]
    channels, size = shape[0], (shape[1], shape[2])
    stage_size, stage_channels = out_size(stage, size), _channels(stage, channels)
    tiles = 0
    for region in patches(stage_size, grid):
        tile = clip(need(stage, region), size)
        tiles = max(tiles, tile_peak(stage, tile, region, size, channels))
    buffer = stage_size[0] * stage_size[1] * stage_channels
    rest_peak = layerwise_peak(rest, stage_size, stage_channels) if len(rest) else buffer
    with torch.no_grad():
        x = torch.zeros(1, *shape)
        full_macs: list[int] = []
        full = ((0, size[0]), (0, size[1]))
        run_tile(stage, x, full, ((0, stage_size[0]), (0, stage_size[1])), size, full_macs)
        patch_macs: list[int] = []
        for region in patches(stage_size, grid):
            tile = clip(need(stage, region), size)
            run_tile(stage, x[..., tile[0][0]:tile[0][1], tile[1][0]:tile[1][1]], tile,
                     region, size, patch_macs)
    e = bytes_per_element
    stage_peak = tiles + buffer
    return PatchPlan(
        split=split, grid=grid, peak_bytes=e * max(stage_peak, rest_peak),
        peak_with_input_bytes=e * max(stage_peak + channels * size[0] * size[1], rest_peak),
        baseline_peak_bytes=e * layerwise_peak(body, size, channels),
        patch_stage_bytes=e * stage_peak, rest_bytes=e * rest_peak,
        stage_macs=sum(full_macs), patch_macs=sum(patch_macs), bytes_per_element=e)


def search(model: nn.Module, shape: tuple[int, int, int], grids: tuple[int, ...] = (2, 3, 4),
           bytes_per_element: int = 1) -> list[PatchPlan]:
    """Every plan over split points (up to the first block that cannot run in patches)
    and grids, best first (lowest peak, then fewest extra MACs)."""
    body = body_of(model)
    last = next((i for i, block in enumerate(body) if not supported(block)), len(body))
    size = (shape[1], shape[2])
    plans = [plan(model, shape, split, grid, bytes_per_element)
             for split in range(1, last) for grid in grids
             if min(out_size(body[:split], size)) >= grid]  # no empty patches
    return sorted(plans, key=lambda p: (p.peak_bytes, p.patch_macs))


def check(model: nn.Module, shape: tuple[int, int, int], split: int, grid: int,
          seed: int = 0) -> tuple[float, float]:
    """(max |difference|, max |output|) between the model and the same model with its first
    ``split`` blocks run patch by patch, on a seeded random input."""
    body = body_of(model)
    stage = body[:split]

    class Patched(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return body[split:](run_patches(stage, x, grid))

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, *shape, generator=generator)
    model = model.eval()
    with torch.no_grad():
        reference = model(x)
        if body is model:
            patched = Patched()(x)
        else:
            original = model.features
            model.features = Patched()
            try:
                patched = model(x)
            finally:
                model.features = original
    return float((patched - reference).abs().max()), float(reference.abs().max())


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random batch-norm statistics and affine terms, so that a randomly initialised
    network's activations are of order 1 (with torchvision's init its logits are ~1e-8,
    which would make any numerical comparison pass)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) * 2 - 1)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) * 2 - 1)
    return model
