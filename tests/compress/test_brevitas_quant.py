"""Low-bit (wNaM) quantization with Brevitas on the digits models, exported as ONNX QCDQ.

Floors, not exact values: top-1 is measured by the api in ONNX Runtime on the 359-sample
eval split and compared with the float artifact of the same run.
"""

from __future__ import annotations

import json

import pytest
from torch import nn

from edgepipe.compress import LowBitConfig, compress, config_from_dict, make_config
from edgepipe.compress.lowbit.brevitas import (
    INTEGER_OPS,
    RUNTIME_COMPUTE_OPS,
    packed_bytes,
    quantize_module,
)
from edgepipe.data import Dataset, make_splits
from edgepipe.errors import InputError, UnsupportedError

W8_MAX_DROP = 0.010  # the issue: within 1 point of float
QAT_MAX_DROP = 0.020  # within about 2 points


def test_w8a8_post_training_stays_within_a_point(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    result = compress(loaded, LowBitConfig(weight_bits=8), tmp_path, splits)
    [artifact] = result.to_dict()["artifacts"]
    [float_artifact] = result.to_dict()["float_artifacts"]
    metrics = artifact["metrics"]
    assert metrics["metric"] == "top1" and metrics["samples"] == 359
    assert metrics["drop"] <= W8_MAX_DROP, metrics
    assert artifact["name"] == "digits-mlp.w8a8.onnx" and artifact["precision"] == "w8a8"
    tool = artifact["tool"]
    assert tool["format"] == "QCDQ" and tool["calibration"]["samples"] == 256
    assert [layer["weight_bits"] for layer in tool["layers"]] == [8, 8, 8]
    sizes = tool["sizes"]
    assert sizes["file_bytes"] == artifact["size_bytes"] < 0.4 * float_artifact["size_bytes"]
    # at 8 bits the int8 weights in the file are the layers' weight count
    assert sizes["int8_weight_bytes_in_file"] == sum(lay["weights"] for lay in tool["layers"])
    assert sizes["packed_bytes_computed"] == sizes["int8_bytes_computed"]
    typed = result.artifacts[0].tool.sizes
    assert typed.to_dict() == sizes and not typed.packing_would_help  # 8 bits: no gain
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    recorded = {a["name"]: a for a in manifest["artifacts"]}["digits-mlp.w8a8.onnx"]
    assert "QCDQ stores each quantized weight tensor as int8" in recorded["tool"]["notes"][0]
    # how ONNX Runtime runs it is measured and said: float kernels unless an integer op shows
    ops = set(tool["runtime_compute_ops"])
    assert ops and ops <= RUNTIME_COMPUTE_OPS
    float_note = any("float kernels" in note for note in tool["notes"])
    assert float_note == (not ops & INTEGER_OPS)


def test_w4a8_qat_stays_within_two_points_and_says_the_file_is_not_smaller(digits_mlp,
                                                                           tmp_path):
    """Every layer at 4 bits (first and last too), fine-tuned with distillation."""
    loaded, splits = digits_mlp
    config = LowBitConfig(weight_bits=4, first_last_bits=None, qat=True, epochs=2)
    [artifact] = compress(loaded, config, tmp_path, splits).to_dict()["artifacts"]
    metrics, tool = artifact["metrics"], artifact["tool"]
    assert metrics["drop"] <= QAT_MAX_DROP, metrics
    assert [layer["weight_bits"] for layer in tool["layers"]] == [4, 4, 4]
    qat = tool["qat"]
    assert qat["labelled"] and qat["loss"] == "distillation + cross-entropy"
    assert 1 <= qat["epochs_run"] <= 2 and qat["validation"]["source"] == "slice of the train split"
    assert qat["validation"]["samples"] + qat["train_samples"] == len(splits.train)
    sizes = tool["sizes"]
    weights = sum(layer["weights"] for layer in tool["layers"])
    # QCDQ keeps one int8 byte per 4-bit weight; packed, they would take half
    assert sizes["int8_weight_bytes_in_file"] == weights
    assert sizes["int8_bytes_computed"] - sizes["packed_bytes_computed"] == weights // 2


@pytest.mark.slow
def test_qat_recovers_what_two_bit_post_training_loses(digits_cnn, tmp_path):
    """The digits CNN at w2a8: post-training collapses (measured ~21% top-1), distillation
    fine-tuning brings it back within about 2 points (measured 96.4%, float 98.3%)."""
    loaded, splits = digits_cnn
    ptq = compress(loaded, LowBitConfig(weight_bits=2), tmp_path / "ptq", splits)
    qat = compress(loaded, LowBitConfig(weight_bits=2, qat=True), tmp_path / "qat", splits)
    ptq_drop, qat_drop = ptq.to_dict()["artifacts"][0]["metrics"]["drop"], qat.to_dict()["artifacts"][0]["metrics"]["drop"]
    assert ptq_drop > 0.2 and qat_drop <= 0.025, (ptq_drop, qat_drop)


def test_unlabelled_training_data_distills_only(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    unlabelled = Dataset(dict(splits.train.inputs), source="digits without labels")
    data = make_splits(unlabelled, seed=0, calib_size=64)
    config = LowBitConfig(weight_bits=4, qat=True, epochs=1, calib_size=64)
    [artifact] = compress(loaded, config, tmp_path, data).to_dict()["artifacts"]
    qat = artifact["tool"]["qat"]
    assert not qat["labelled"] and qat["loss"] == "distillation only"
    assert qat["validation"]["metric"] == "-distillation loss"
    assert any("no labels" in note for note in artifact["tool"]["notes"])
    assert artifact["metrics"]["metric"] == "sqnr_db" and artifact["metrics"]["value"] > 10


def test_packed_size_by_hand():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 4), nn.ReLU(),
                          nn.Linear(4, 1, bias=False))
    student, layers, left = quantize_module(model, LowBitConfig(weight_bits=2))
    assert [layer["weight_bits"] for layer in layers] == [8, 2, 8] and left == []
    # per layer: ceil(bits * weights / 8) + 4 B x (channel scales + biases + 1 act scale)
    first = 6 * 8 // 8 + 4 * (2 + 2 + 1)  # 26
    middle = 8 * 2 // 8 + 4 * (4 + 4 + 1)  # 38
    last = 4 * 8 // 8 + 4 * (1 + 0 + 1)  # 12
    assert packed_bytes(student) == (first + middle + last, 6 + 8 + 4 + 20 + 36 + 8)


def test_batchnorm_is_folded_and_unsupported_layers_are_listed():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.ConvTranspose2d(2, 2, 2), nn.Flatten(), nn.Linear(32, 3)).eval()
    student, layers, left = quantize_module(model, LowBitConfig())
    assert [layer["layer"] for layer in layers] == ["0", "5"]
    assert isinstance(student[1], nn.Identity)
    assert [(item["layer"], item["op"]) for item in left] == [("3", "ConvTranspose2d")]


def test_wnam_names_set_the_bits_and_round_trip():
    config = make_config("w2a8", qat=True)
    assert (config.weight_bits, config.act_bits, config.method) == (2, 8, "w2a8")
    assert make_config("w4a8", weight_bits=3).method == "w3a8"
    document = json.loads(json.dumps(config.to_dict()))
    assert document["method"] == "w2a8" and config_from_dict(document) == config


@pytest.mark.parametrize("bits", [0, 1, 9, 16])
def test_bit_widths_brevitas_cannot_export_are_refused(bits):
    with pytest.raises(InputError) as caught:
        LowBitConfig(weight_bits=bits)
    assert caught.value.reference == "bad-bit-width" and "between 2 and 8" in caught.value.hint
    assert ("1-bit" if bits < 2 else "int32 QuantizeLinear") in str(caught.value)


def test_formats_other_than_onnx_are_refused(digits_mlp, tmp_path):
    loaded, splits = digits_mlp
    with pytest.raises(UnsupportedError) as caught:
        compress(loaded, LowBitConfig(formats=("tflite",)), tmp_path, splits)
    assert "w4a8" in str(caught.value) and "onnx" in caught.value.hint


def test_no_data_is_refused(digits_mlp, tmp_path):
    loaded, _ = digits_mlp
    with pytest.raises(InputError) as caught:
        compress(loaded, LowBitConfig(), tmp_path / "out", None)
    assert caught.value.reference == "calibration-data-missing"
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_onnx_source_is_refused(digits_mlp, tmp_path):
    from edgepipe.export import ExportConfig, export_model
    from edgepipe.model import load_model

    loaded, splits = digits_mlp
    export_model(loaded, tmp_path / "float", ExportConfig(formats=("onnx",)))
    onnx_source = load_model(str(tmp_path / "float" / "digits-mlp.onnx"))
    with pytest.raises(UnsupportedError) as caught:
        compress(onnx_source, LowBitConfig(), tmp_path / "out", splits)
    assert caught.value.reference == "method-needs-torch" and "int8" in caught.value.hint
