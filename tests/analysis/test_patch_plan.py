"""Patch-based inference: exact against the full map, receptive fields, memory plans."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from edgepipe.analysis.patch_exec import need, out_size, run_patches
from edgepipe.analysis.patch_plan import check, layerwise_peak, plan, randomize_batchnorm


@pytest.fixture(scope="module")
def mobilenet():
    torch.manual_seed(0)
    return randomize_batchnorm(torchvision.models.mobilenet_v2(weights=None).eval())


def test_receptive_field_by_hand():
    stack = nn.Sequential(nn.Conv2d(1, 1, 3, stride=1, padding=1),
                          nn.Conv2d(1, 1, 3, stride=2, padding=1),
                          nn.MaxPool2d(2))
    assert out_size(stack, (16, 16)) == (4, 4)
    # output row 0 of the pool <- rows 0..1 of conv2 <- rows -1..3 of conv1 <- rows -2..4
    assert need(stack, ((0, 1), (0, 1))) == ((-2, 5), (-2, 5))
    assert need(stack, ((3, 4), (3, 4))) == ((10, 17), (10, 17))


@pytest.mark.parametrize("split, grid", [(2, 2), (5, 3), (8, 4), (12, 2)])
def test_patches_equal_the_full_map(mobilenet, split, grid):
    stage = mobilenet.features[:split]
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = stage(x)
        patched = run_patches(stage, x, grid)
    assert patched.shape == full.shape
    assert full.abs().max() > 0.5  # activations of order 1: the comparison means something
    assert (patched - full).abs().max() < 1e-4


def test_whole_model_output_matches(mobilenet):
    diff, scale = check(mobilenet, (3, 96, 96), split=5, grid=4)
    assert scale > 0.1 and diff < 1e-4


def test_plan_lowers_peak_memory_at_144(mobilenet):
    result = plan(mobilenet, (3, 144, 144), split=5, grid=3)
    assert result.baseline_peak_bytes == layerwise_peak(mobilenet.features, (144, 144), 3)
    assert result.reduction > 3
    assert 0 < result.extra_macs_fraction < 1
    assert result.peak_with_input_bytes >= result.peak_bytes
    assert plan(mobilenet, (3, 144, 144), split=5, grid=3, bytes_per_element=4).peak_bytes == \
        4 * result.peak_bytes


def test_layerwise_peak_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    # input 3x10x10 + output 8x10x10 alive together
    assert layerwise_peak(nn.Sequential(conv, nn.ReLU()), (10, 10), 3) == 300 + 800


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_average_pooling_at_borders(count_include_pad):
    stack = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                          nn.AvgPool2d(3, stride=1, padding=1,
                                       count_include_pad=count_include_pad),
                          nn.Conv2d(4, 2, 3, stride=2, padding=1)).eval()
    x = torch.randn(1, 3, 20, 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (run_patches(stack, x, 3) - stack(x)).abs().max() < 1e-5
