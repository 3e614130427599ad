"""int4-weight: 4-bit weight-only compression with each runtime's own tool (ONNX Runtime's
MatMulNBitsQuantizer, NNCF compress_weights, ai-edge-quantizer, torchao for ExecuTorch),
through the real CLI.

The models have random weights and the data is random: the floors below are what 4-bit
weights keep of such a model's outputs (measured: SQNR 17.4-20.5 dB on the MLP in the four
formats, 19-23 dB on the transformer in ONNX and TFLite), with a margin of about 3 dB."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepipe.compress.config import make_config
from edgepipe.errors import InputError

MLP = ("compress_models:int4_mlp", "--input-shape", "1,128")
TRANSFORMER = ("compress_models:int4_transformer", "--input-shape", "1,16,64")
SQNR_FLOOR_DB = 14.0
COSINE_FLOOR = 0.97


@pytest.fixture(scope="module")
def mlp_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("int4") / "mlp.npz"
    np.savez(path, x=np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32))
    return path


def _artifacts(result) -> dict[str, dict]:
    assert result.code == 0, result
    return {a["format"]: a for a in result.json()["result"]["artifacts"]}


def _floats(result) -> dict[str, int]:
    document = result.json()["result"]
    return {a["format"]: a["size_bytes"] for a in document["float_artifacts"]}


def _assert_close(artifact: dict) -> None:
    output = artifact["metrics"]["eval"]["outputs"][0]
    assert output["sqnr_db"] >= SQNR_FLOOR_DB, (artifact["name"], output)
    assert output["cosine_mean"] >= COSINE_FLOOR, (artifact["name"], output)


def test_mlp_in_four_formats_is_small_close_and_really_4_bit(cli, tmp_path, mlp_data):
    import onnx
    import openvino as ov

    out = tmp_path / "out"
    result = cli("compress", *MLP, "--method", "int4-weight", "-f", "onnx", "-f", "openvino",
                 "-f", "tflite", "-f", "executorch", "--data", mlp_data, "-o", out, "--json")
    artifacts, floats = _artifacts(result), _floats(result)
    assert set(artifacts) == {"onnx", "openvino", "tflite", "executorch"}
    for fmt, artifact in artifacts.items():
        assert artifact["precision"] == "int4"
        # weights are most of the MLP: 4-bit blocks and their scales (measured 15-20%)
        assert artifact["size_bytes"] <= 0.40 * floats[fmt], (fmt, artifact["size_bytes"])
        _assert_close(artifact)
        rows = artifact["tool"]["weight_layers"]
        assert [r["in_features"] for r in rows] == [128, 256, 128]
        assert [r["out_features"] for r in rows] == [256, 128, 10]
    # the defaults: group 128 for ONNX and OpenVINO, 32 for tflite; NNCF keeps the last
    # layer in 8 bits by default, the other two tools do not
    onnx_rows = artifacts["onnx"]["tool"]["weight_layers"]
    assert [(r["bits"], r["group_size"]) for r in onnx_rows] == [(4, 128)] * 3
    assert [r.get("bits") for r in artifacts["tflite"]["tool"]["weight_layers"]] == [4] * 3
    assert artifacts["tflite"]["tool"]["group_size"] == 32
    executorch = artifacts["executorch"]["tool"]
    assert executorch["group_size"] == 32 and executorch["delegation"]["portable_ops"] == 0
    assert [r.get("bits") for r in executorch["weight_layers"]] == [4] * 3
    assert artifacts["openvino"]["tool"]["layer_counts"] == {"int4": 2, "int8": 1,
                                                             "kept_float": 0}
    graph = onnx.load(str(out / artifacts["onnx"]["path"])).graph
    assert sum(n.op_type == "MatMulNBits" for n in graph.node) == 3
    assert not [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    model = ov.Core().read_model(str(out / artifacts["openvino"]["path"]))
    types = {op.get_element_type().get_type_name() for op in model.get_ordered_ops()
             if op.get_type_name() == "Constant"}
    assert types & {"i4", "u4"}, types
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = {a["name"]: a for a in manifest["artifacts"]}
    assert recorded[artifacts["onnx"]["name"]]["tool"]["weight_layers"] == onnx_rows


def test_text_output_has_a_summary_line_per_artifact(cli, tmp_path, mlp_data):
    result = cli("compress", *MLP, "--method", "int4-weight", "--data", mlp_data,
                 "-o", tmp_path / "out", "--asymmetric")
    assert result.code == 0, result
    line = next(x for x in result.stdout.splitlines() if x.startswith("int4_mlp.int4-weight"))
    assert line == "int4_mlp.int4-weight.onnx: 3 layer(s) int4 (group 128), 0 int8, 0 float"
    assert len(line) <= 80


def test_a_group_size_that_does_not_divide_keeps_the_layer_in_float(cli, tmp_path, mlp_data):
    result = cli("compress", *MLP, "--method", "int4-weight", "-f", "onnx", "-f", "openvino",
                 "-f", "tflite", "--group-size", "256", "--data", mlp_data,
                 "-o", tmp_path / "out", "--json")
    for fmt, artifact in _artifacts(result).items():
        rows = {r["in_features"]: r for r in artifact["tool"]["weight_layers"]}
        assert rows[256]["bits"] == 4 and rows[256]["group_size"] == 256, fmt
        kept = [r for r in artifact["tool"]["weight_layers"] if r["in_features"] == 128]
        assert len(kept) == 2 and all(r["kept"] == "float" for r in kept), (fmt, kept)
        assert all("not a multiple of the group size 256" in r["reason"] for r in kept)
        assert len(artifact["tool"]["left_in_float"]) == 2
        assert artifact["tool"]["layer_counts"]["kept_float"] == 2


def test_transformer_data_aware_with_8_bit_head(cli, tmp_path):
    data = tmp_path / "tokens.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((64, 16, 64)).astype(np.float32))
    result = cli("compress", *TRANSFORMER, "--method", "int4-weight", "-f", "onnx",
                 "-f", "tflite", "-f", "openvino", "--group-size", "32", "--data-aware",
                 "--keep-8bit", "--data", data, "-o", tmp_path / "out", "--json")
    artifacts = _artifacts(result)
    assert set(artifacts) == {"onnx", "tflite", "openvino"}
    for fmt, artifact in artifacts.items():
        _assert_close(artifact)
        rows = artifact["tool"]["weight_layers"]
        assert len(rows) >= 9  # 2 layers x (q/k/v, out, two feed-forward) and the head
        assert artifact["tool"]["calibration_samples"] > 0
        if fmt == "openvino":  # NNCF: AWQ + scale estimation; its own 8-bit choice
            assert artifact["tool"]["algorithm"] == "AWQ + scale estimation"
            assert artifact["tool"]["layer_counts"]["int4"] >= 8, rows
            continue
        assert rows[-1]["bits"] == 8 and rows[-1]["out_features"] == 10, (fmt, rows[-1])
        assert all(r["bits"] == 4 for r in rows[:-1]), (fmt, rows)
        assert artifact["tool"]["algorithm"] == "GPTQ"
    step = json.loads((tmp_path / "out" / "manifest.json").read_text())["steps"][-1]
    assert step["result"]["calibration"]["method"] == "data-aware int4"
    assert step["config"]["data_aware"] is True and step["config"]["group_size"] == 32


@pytest.mark.parametrize("size", ["0", "3", "-1", "96"])
def test_a_bad_group_size_is_refused(cli, tmp_path, size):
    result = cli("compress", *MLP, "--method", "int4-weight", "--group-size", size,
                 "-o", tmp_path / "out")
    assert result.code == 1, result
    assert "bad-group-size" in result.stderr and f"--group-size {size}" in result.stderr
    assert "power of two" in result.stderr and "hint" in result.stderr


def test_tflite_takes_only_the_quantizer_s_block_sizes(cli, tmp_path):
    result = cli("compress", *MLP, "--method", "int4-weight", "-f", "tflite",
                 "--group-size", "512", "-o", tmp_path / "out")
    assert result.code == 1 and "bad-group-size" in result.stderr, result
    assert "32, 64, 128, 256" in result.stderr


def test_data_aware_needs_data(cli, tmp_path):
    result = cli("compress", *MLP, "--method", "int4-weight", "--data-aware",
                 "-o", tmp_path / "out")
    assert result.code == 1 and "calibration-data-missing" in result.stderr, result
    assert not (tmp_path / "out").exists()


def test_executorch_refuses_asymmetric_weights(cli, tmp_path):
    result = cli("compress", *MLP, "--method", "int4-weight", "-f", "executorch",
                 "--asymmetric", "-o", tmp_path / "out")
    assert result.code == 1 and "bad-config" in result.stderr, result
    assert "--asymmetric is not available for executorch" in result.stderr


def test_executorch_has_no_data_aware_algorithm(cli, tmp_path, mlp_data):
    result = cli("compress", *MLP, "--method", "int4-weight", "-f", "onnx", "-f", "executorch",
                 "--data-aware", "--data", mlp_data, "-o", tmp_path / "out")
    assert result.code == 1 and "bad-config" in result.stderr, result
    assert "--data-aware is not available for executorch" in result.stderr


def test_config_round_trips_and_names_its_defaults():
    config = make_config("int4-weight", formats=["onnx", "tflite"], group_size=64,
                         symmetric=False, keep_8bit=True)
    document = config.to_dict()
    assert document["method"] == "int4-weight" and document["group_size"] == 64
    options = {k: v for k, v in document.items() if k != "method"}
    assert make_config("int4-weight", **options).to_dict() == document
    default = make_config("int4-weight", formats=["onnx", "openvino", "tflite"])
    assert [default.group_for(f) for f in ("onnx", "openvino", "tflite")] == [128, 128, 32]
    with pytest.raises(InputError) as info:
        make_config("int4-weight", group_size=True)
    assert info.value.reference == "bad-group-size"


def test_a_recipe_variant_takes_the_options_and_refuses_a_bad_group_size():
    from pydantic import ValidationError

    from edgepipe.pipeline.recipe import Variant

    variant = Variant(name="q4", method="int4-weight", formats=["onnx", "tflite"],
                      options={"group_size": 32, "keep_8bit": True, "data_aware": False})
    assert variant.options["group_size"] == 32
    with pytest.raises(ValidationError, match="--group-size 3 is not a power of two"):
        Variant(name="q4", method="int4-weight", formats=["onnx"], options={"group_size": 3})
