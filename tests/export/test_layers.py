"""Per-layer comparison names the layer whose weights were corrupted."""

from __future__ import annotations

import pytest

from edgepipe.errors import ToleranceError
from edgepipe.export import export_model
from edgepipe.model import load_model


def test_failed_parity_names_the_first_divergent_layer(tmp_path, monkeypatch):
    import onnx
    from onnx import numpy_helper

    from edgepipe.export import onnx as onnx_export

    real_export = onnx_export.export

    def corrupt_conv2(job):
        exported = real_export(job)
        proto = onnx.load(str(exported.path))
        weight = next(t for t in proto.graph.initializer if t.name == "conv2.weight")
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 0.3, weight.name))
        onnx.save(proto, str(exported.path))
        return exported

    monkeypatch.setattr(onnx_export, "export", corrupt_conv2)
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    with pytest.raises(ToleranceError) as info:
        export_model(loaded, tmp_path, formats=("onnx",))
    layers = info.value.details["failed"][0]["layers"]
    assert layers["available"] and layers["first_divergent"] == "conv2"
    passed = {row["layer"]: row["passed"] for row in layers["layers"]}
    assert passed["conv1"] is True and passed["conv2"] is False  # layers before it still agree
    assert "first layer over the tolerance: conv2" in info.value.message
    assert (tmp_path / "residual_cnn.onnx.failed").is_file()
