"""A split of the bundled digits CNN, trained, exported and measured end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepipe.errors import InputError, UnsupportedError
from edgepipe.split.api import (
    SplitConfig,
    SplitResult,
    build_split,
    split_model,
    wire_bytes,
)
from edgepipe.split.train import SplitTraining

QUICK = SplitTraining(distill_epochs=10, finetune_epochs=8, patience=3)


@pytest.fixture(scope="module")
def digits_split(tmp_path_factory, digits_cnn):
    loaded, splits = digits_cnn
    out = tmp_path_factory.mktemp("split")
    result = split_model(loaded, SplitConfig(at="pool1", bottleneck=2, training=QUICK),
                         splits, out)
    return out, result


def test_accuracy_and_bytes_floors(digits_split):
    _, result = digits_split
    accuracy, wire = result.accuracy, result.bytes_per_sample
    assert accuracy["original"] > 0.97
    assert accuracy["split_torch"] >= accuracy["original"] - 0.02
    assert accuracy["split_onnxruntime"] >= accuracy["original"] - 0.02
    assert wire["packed_bytes"] == 2 * 16 * 16  # 2 channels x 16 x 16 codes, 8 bits each
    assert wire["vs_raw_float"] <= 0.05 and wire["packed_bytes"] < wire["input_uint8"]
    assert 0 < wire["zlib_bytes_mean"] <= wire["packed_bytes"] + 32


def test_exported_head_and_tail_agree_with_torch(digits_split):
    out, result = digits_split
    assert (out / "head.onnx").is_file() and (out / "tail.onnx").is_file()
    assert result.failed == []
    assert result.end_to_end["onnx"]["prediction_agreement_with_torch"] >= 0.99
    import onnx

    head = onnx.load(str(out / "head.onnx"))
    assert head.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT8
    records = {r["path"] for r in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert {"head.onnx", "tail.onnx"} <= records


def test_training_stages_recorded(digits_split):
    record = digits_split[1].training
    assert record["head_distillation"]["best_epoch"] >= 1
    assert "task + distillation" in record["fine_tuning"]["loss"]


def test_the_verb_records_its_step_once(digits_split):
    out, result = digits_split
    steps = [s for s in json.loads((out / "manifest.json").read_text())["steps"]
             if s["step"] == "split"]
    assert len(steps) == 1
    config = steps[0]["config"]
    assert config["at"] == "pool1" and config["bottleneck"] == 2 and config["bits"] == 8
    assert config["data"] == "builtin:digits" and config["seed"] == 0
    assert config["training"]["distill_epochs"] == QUICK.distill_epochs
    assert steps[0]["result"] == json.loads(json.dumps(result.record()))
    assert "artifacts" not in steps[0]["result"] and result.artifacts


def test_result_and_config_round_trip(digits_split):
    _, result = digits_split
    document = json.loads(json.dumps(result.to_dict()))
    assert SplitResult.from_dict(document).to_dict() == document
    assert list(document) == ["cut", "config", "training", "accuracy", "wire",
                              "bytes_per_sample", "end_to_end", "artifacts", "failed",
                              "entropy"]
    assert document["entropy"] is None  # split without --entropy
    config = SplitConfig(at="pool1", bottleneck=2, formats=("onnx", "tflite"), training=QUICK)
    assert SplitConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_split_needs_data(digits_cnn, tmp_path):
    with pytest.raises(InputError) as raised:
        split_model(digits_cnn[0], SplitConfig(at="pool1", bottleneck=2), None, tmp_path)
    assert raised.value.reference == "split-needs-data"


def test_wire_bytes_pack_low_bit_codes():
    codes = np.zeros((3, 4, 8, 8), dtype=np.uint8)
    assert wire_bytes(codes, 4).packed_bytes == 4 * 8 * 8 // 2
    assert wire_bytes(codes, 8).zlib_bytes_mean < 256


def test_bad_splits(digits_cnn):
    loaded, _ = digits_cnn
    with pytest.raises(InputError) as large:
        build_split(loaded, SplitConfig(at="pool1", bottleneck=16))
    assert large.value.reference == "bottleneck-too-large"
    with pytest.raises(UnsupportedError):
        build_split(loaded, SplitConfig(at="flatten", bottleneck=4))
    with pytest.raises(InputError):
        SplitConfig(at="pool1", bottleneck=2, bits=12)


def test_without_labels_fine_tuning_distills(digits_cnn, tmp_path):
    from dataclasses import replace

    from edgepipe.data import Dataset

    loaded, splits = digits_cnn
    unlabelled = replace(splits, train=Dataset(inputs=splits.train.inputs, source="unlabelled"),
                         eval=Dataset(inputs=splits.eval.inputs, source="unlabelled"))
    quick = SplitTraining(distill_epochs=2, finetune_epochs=2)
    result = split_model(loaded, SplitConfig(at="pool2", bottleneck=4, training=quick),
                         unlabelled, tmp_path)
    assert result.training["fine_tuning"]["loss"] == "distillation only (no labels)"
    assert result.accuracy["original"] is None
    assert result.accuracy["agreement_with_original"] > 0.5


def test_head_and_tail_in_every_format(digits_cnn, tmp_path):
    loaded, splits = digits_cnn
    quick = SplitTraining(distill_epochs=2, finetune_epochs=2)
    result = split_model(loaded, SplitConfig(at="pool2", bottleneck=4, training=quick,
                                             formats=("tflite", "openvino"), int8_head=True),
                         splits, tmp_path)
    assert set(result.end_to_end) == {"tflite", "openvino", "int8-head"}
    for check in result.end_to_end.values():
        assert check["prediction_agreement_with_torch"] >= 0.99
    assert result.accuracy["split_litert"] == pytest.approx(
        result.accuracy["split_openvino"], abs=0.01)

    # The int8 head runs in TFLite Micro and fits an STM32F746 (its codes are int8: TFLM's
    # CAST has no uint8 output).
    from edgepipe.devices.fit import check_fit

    fit = check_fit(tmp_path / "head.int8.tflite", "stm32f746")
    assert fit.fits and fit.arena["runs"] and fit.precision == "int8"
