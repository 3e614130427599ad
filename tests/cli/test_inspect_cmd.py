"""``edgepipe inspect`` through the real CLI."""

from __future__ import annotations

from pathlib import Path


def test_resnet18_json_end_to_end(cli) -> None:
    result = cli("inspect", "torchvision:resnet18", "--input-shape", "1x3x224x224", "--json")
    assert result.code == 0, result
    document = result.json()  # exactly one JSON document on stdout
    assert document["ok"] is True and document["command"] == "inspect"
    summary = document["result"]
    assert summary["total_params"] == 11_689_512
    assert 1.80e9 < summary["total_macs"] < 1.84e9
    assert summary["method"] == "torch.fx"
    assert summary["peak_activation_bytes"] > 0
    assert summary["layers"][summary["peak_layer_index"]]["name"] == summary["peak_layer"]
    assert max(layer["live_bytes"] for layer in summary["layers"]) == (
        summary["peak_activation_bytes"])


def test_human_output_has_table_and_summary(cli) -> None:
    result = cli("inspect", "tiny_models:residual_cnn", "--input-shape", "1x3x16x16")
    assert result.code == 0, result
    assert result.stdout.strip()  # the result goes to stdout (> file keeps it)
    # The first relu (#4) is the first op with three 8 KiB maps live: skip, conv1, relu.
    for text in ("stem.0", "Conv2d", "parameters:", "1,498", "MACs:", "peak activations:",
                 "24 KiB at relu (#4)"):
        assert text in result.stdout, text


def test_rows_are_capped_unless_all(cli) -> None:
    capped = cli("inspect", "tiny_models:many_layers", "--input-shape", "1x4")
    full = cli("inspect", "tiny_models:many_layers", "--input-shape", "1x4", "--all")
    assert capped.code == full.code == 0, (capped, full)
    assert "+10 more" in capped.stdout and "--all shows every one" in capped.stdout
    assert "│ 49 " in full.stdout and "more" not in full.stdout


def test_several_inputs_from_the_command_line(cli) -> None:
    result = cli("inspect", "tiny_models:two_input_model", "--input", "input_ids:1x7:int64",
                 "--input", "mask:1x7:float32", "--json")
    assert result.code == 0, result
    summary = result.json()["result"]
    assert [i["dtype"] for i in summary["inputs"]] == ["int64", "float32"]
    assert summary["total_params"] == 50 * 16 + 16 * 3 + 3


def test_empty_onnx_file_is_an_expected_error(cli, tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    result = cli("inspect", path)
    assert result.code == 1, result
    assert "error: onnx-invalid" in result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_onnx_file_is_an_expected_error(cli, tmp_path: Path) -> None:
    import onnx
    import torch

    import tiny_models

    whole = tmp_path / "whole.onnx"
    torch.onnx.export(tiny_models.mlp().eval(), (torch.randn(1, 64),), str(whole), dynamo=True,
                      external_data=False, verbose=False)
    onnx.checker.check_model(str(whole))  # the untruncated file is valid
    data = whole.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    result = cli("inspect", path, "--json")
    assert result.code == 1, result
    assert "error: onnx-invalid" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.json()["error"]["reference"] == "onnx-invalid"


def test_format_check_lists_unsupported_ops_per_format(cli) -> None:
    result = cli("inspect", "export_models:bag_of_words", "--input", "tokens:2x5:int64",
                 "--format", "onnx", "-f", "tflite", "-f", "openvino", "--json")
    assert result.code == 0, result
    support = result.json()["result"]["support"]
    assert list(support["formats"]) == ["onnx", "tflite", "openvino"]
    assert support["all_supported"] is False
    tflite = support["formats"]["tflite"]
    assert tflite["status"] == "unsupported" and tflite["supported"] is False
    assert [(op["op"], op["layers"], op["modules"]) for op in tflite["unsupported"]] == [
        ("aten._embedding_bag.default", ["bag"], ["EmbeddingBag"])]
    assert support["formats"]["onnx"]["status"] == "supported"
    assert support["formats"]["openvino"]["status"] == "supported"


def test_format_check_human_output_and_plain_inspect_unchanged(cli) -> None:
    checked = cli("inspect", "export_models:cumulative_product", "--input-shape", "1x8",
                  "-f", "tflite")
    assert checked.code == 0, checked
    assert "tflite:" in checked.stdout and "1 unsupported op(s)" in checked.stdout
    assert "aten.cumprod.default used by gate (Cumprod)" in checked.stdout
    plain = cli("inspect", "export_models:cumulative_product", "--input-shape", "1x8", "--json")
    assert plain.code == 0, plain
    assert "support" not in plain.json()["result"]
    assert "formats" in plain.json()["config"] and plain.json()["config"]["formats"] == []


def test_unknown_format_is_a_usage_error(cli) -> None:
    result = cli("inspect", "tiny_models:mlp", "--input-shape", "1x64", "-f", "coreml")
    assert result.code == 2, result
    assert "coreml" in result.stderr and "onnx" in result.stderr


def test_patch_plan(cli):
    result = cli("inspect", "torchvision:mobilenet_v2", "--input-shape", "1x3x64x64",
                 "--patch-plan", "--json")
    assert result.code == 0, result
    info = result.json()["result"]["patch_plan"]
    best = info["plans"][0]
    assert best["reduction"] > 2 and best["peak_bytes"] < best["baseline_peak_bytes"]
    assert info["check"]["max_abs_diff"] <= 1e-4 * max(1.0, info["check"]["output_scale"])
    refused = cli("inspect", "builtin:digits-mlp", "--patch-plan")
    assert refused.code == 1 and "patch-plan-unsupported" in refused.stderr
