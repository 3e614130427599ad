"""Per-layer comparison names the layer whose weights were corrupted."""

from __future__ import annotations

import numpy as np
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


@pytest.mark.parametrize("nhwc", [False, True], ids=["nchw", "nhwc"])
def test_tflite_per_layer_names_the_corrupted_conv(tmp_path, monkeypatch, nhwc):
    """conv2's weights are changed inside the .tflite file itself (LiteRT keeps conv
    weights as float32 OHWI); the comparison must point at conv2, not at a later layer."""
    from edgepipe.export import tflite as tflite_export

    real_export = tflite_export.export

    def corrupt_conv2(job):
        exported = real_export(job)
        weight = job.source.module.conv2.weight.detach().numpy()
        stored = np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).tobytes()
        data = exported.path.read_bytes()
        assert data.count(stored) == 1  # found exactly once: we change conv2 and nothing else
        corrupted = np.frombuffer(stored, np.float32) + np.float32(0.3)
        exported.path.write_bytes(data.replace(stored, corrupted.tobytes()))
        return exported

    monkeypatch.setattr(tflite_export, "export", corrupt_conv2)
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    with pytest.raises(ToleranceError) as info:
        export_model(loaded, tmp_path, formats=("tflite",), nhwc=nhwc)
    layers = info.value.details["failed"][0]["layers"]
    assert layers["available"] and layers["first_divergent"] == "conv2"
    rows = {row["layer"]: row for row in layers["layers"]}
    assert rows["stem.2"]["passed"] is True  # the fused stem before it still agrees
    assert rows["conv2"]["passed"] is False and rows["conv2"]["matched_by"] == "name"
    assert rows["conv2"]["layout"] == "NHWC"  # LiteRT's inner tensors are channel-last
    assert rows["fc"]["matched_by"] == "shape"  # the output tensor carries no module name
    # conv1 is fused with the ReLU after it: no tensor of its own, and said so
    assert "conv1" in layers["matching"]["not_exposed"]
    assert "first layer over the tolerance: conv2" in info.value.message
    assert (tmp_path / "residual_cnn.tflite.failed").is_file()


def test_tflite_tensor_names_resolve_to_module_paths():
    from edgepipe.export.layers_tflite import module_path

    paths = {"stem", "stem.0", "conv_a", "block", "block.conv_a"}
    assert module_path("m.Net/torch.nn.modules.container.Sequential_stem/"
                       "torch.nn.modules.conv.Conv2d_0;;m.Net/x", paths) == "stem.0"
    assert module_path("m.Net/m.My_Block_block/torch.nn.modules.conv.Conv2d_conv_a;2",
                       paths) == "block.conv_a"  # underscores in class and attribute names
    assert module_path("w.ChannelLastIOWrapper/m.Net_wrapped/torch.nn.Conv2d_conv_a",
                       paths) == "conv_a"  # the wrapper's own attribute is dropped
    assert module_path("serving_default_output_0_output", paths) is None
