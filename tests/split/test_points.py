"""Cut points: single-tensor cuts found by graph analysis, and the cut itself."""

from __future__ import annotations

import pytest
import torch
import torchvision

from edgepipe.errors import InputError
from edgepipe.split.points import cut_points, find_cut, split_graph, trace
from edgepipe.zoo.digits_cnn import DigitsCNN


def test_sequential_model_cuts_everywhere_and_splits_exactly():
    model = DigitsCNN().eval()
    traced = trace(model, torch.randn(1, 3, 32, 32))
    labels = [p.label for p in cut_points(traced)]
    assert labels[:4] == ["conv1", "bn1", "relu1", "pool1"] and "pool2" in labels
    point = find_cut(traced, "pool2")
    assert point.shape == (1, 32, 8, 8) and point.bytes == 32 * 8 * 8 * 4
    head, tail = split_graph(traced, point.index)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(tail(head(x)), model(x))


def test_resnet_cuts_only_between_blocks():
    model = torchvision.models.resnet18(weights=None).eval()
    traced = trace(model, torch.randn(1, 3, 64, 64))
    points = cut_points(traced)
    inside = [p for p in points if p.module and ".conv" in p.module]
    assert inside == []  # inside a residual block two tensors cross
    assert find_cut(traced, "layer2").shape == (1, 128, 8, 8)
    with pytest.raises(InputError) as multi:
        find_cut(traced, "layer2.0.conv2")
    assert multi.value.reference == "multi-tensor-cut"
    assert "nearest single-tensor cut" in multi.value.hint
    with pytest.raises(InputError) as unknown:
        find_cut(traced, "layer9")
    assert unknown.value.reference == "unknown-cut"


def test_mobilenet_has_cuts_between_blocks():
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    traced = trace(model, torch.randn(1, 3, 64, 64))
    assert find_cut(traced, "features.3").shape[1] == 24
