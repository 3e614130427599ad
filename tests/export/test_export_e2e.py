"""End to end: torchvision resnet18 and mobilenet_v2 (random weights), all three formats."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_torchvision_model_to_every_format(cli, tmp_path, arch):
    out = tmp_path / arch
    result = cli("export", f"torchvision:{arch}", "--input-shape", "1x3x224x224",
                 "-f", "onnx", "-f", "tflite", "-f", "openvino", "--nhwc", "-o", out, "--json")
    assert result.code == 0, result
    artifacts = result.json()["result"]["artifacts"]
    assert [a["format"] for a in artifacts] == ["onnx", "tflite", "openvino"]
    for artifact in artifacts:
        for output in artifact["parity"]["outputs"]:
            assert output["identical"] or output["sqnr_db"] > 40.0, (artifact["name"], output)
            assert output["max_abs_diff"] <= output["limit"]
            assert output["top1_agreement"] == 1.0
    assert artifacts[1]["layout"]["args_0"] == "NHWC"
    assert artifacts[1]["tool"]["edge_transposes"] == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["artifacts"]) == 3
    assert all((out / f).is_file() for a in manifest["artifacts"] for f in a["files"])
