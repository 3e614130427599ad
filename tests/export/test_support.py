"""The operator check: refuses before converting, names op, layer and format; lets
supported models through unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.errors import UnsupportedError
from edgepipe.export import export_model
from edgepipe.export.support import check_support
from edgepipe.model import load_model

FORMATS = ("onnx", "tflite", "openvino")


def _tokens() -> list[np.ndarray]:
    return [np.random.default_rng(0).integers(0, 20, (2, 5))]


def _bag_of_words():
    return load_model("export_models:bag_of_words", inputs=_specs("tokens:2x5:int64"))


def test_litert_really_cannot_convert_embedding_bag():
    """The premise of the tests below, checked on the converter itself."""
    import litert_torch
    import torch

    model = _bag_of_words().module
    with pytest.raises(Exception, match="Lowering not found: aten._embedding_bag"):
        litert_torch.convert(model.eval(), (torch.from_numpy(_tokens()[0]),))


def test_a_refused_format_is_not_converted_and_does_not_sink_the_others(tmp_path, monkeypatch):
    """TFLite lacks an op: it is refused before its converter runs, with the op, layer and
    format named; ONNX and OpenVINO are still made and checked (exit status 3)."""
    from edgepipe.errors import PARTIAL_EXIT, EdgepipeError
    from edgepipe.export import tflite as tflite_export

    def must_not_run(job):
        raise AssertionError("the TFLite converter ran although TFLite was refused up front")

    monkeypatch.setattr(tflite_export, "export", must_not_run)
    with pytest.raises(EdgepipeError) as info:
        export_model(_bag_of_words(), tmp_path, formats=FORMATS, inputs=_tokens())
    error = info.value
    assert error.exit_code == PARTIAL_EXIT and error.reference == "export-failed"
    assert "aten._embedding_bag.default (from aten.embedding_bag.padding_idx) used by bag " \
           "(EmbeddingBag)" in error.message
    result = error.result
    assert [a["format"] for a in result.artifacts] == ["onnx", "openvino"]
    [failure] = result.failed
    assert failure["format"] == "tflite" and failure["error"]["reference"] == \
        "unsupported-operators"
    assert "export onnx and openvino without tflite" in failure["error"]["hint"]
    formats = result.support["formats"]
    assert formats["tflite"]["status"] == "unsupported"
    assert formats["onnx"]["status"] == formats["openvino"]["status"] == "supported"
    assert not list(tmp_path.glob("*.tflite*"))


def test_export_refuses_before_converting_when_every_format_lacks_an_op(tmp_path, monkeypatch):
    from edgepipe.export import tflite as tflite_export

    def must_not_run(job):
        raise AssertionError("the TFLite converter ran although it was refused up front")

    monkeypatch.setattr(tflite_export, "export", must_not_run)
    with pytest.raises(UnsupportedError) as info:
        export_model(_bag_of_words(), tmp_path, formats=("tflite",), inputs=_tokens())
    assert info.value.reference == "unsupported-operators"
    assert "tflite (litert-torch" in info.value.message
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".onnx", ".xml", ".tflite")]


def test_supported_formats_pass_through_and_are_recorded(tmp_path):
    result = export_model(_bag_of_words(), tmp_path, formats=("onnx", "openvino"),
                          inputs=_tokens())
    assert [a["format"] for a in result.artifacts] == ["onnx", "openvino"]
    assert all(a["parity"]["passed"] for a in result.artifacts)
    support = result.support["formats"]
    assert support["onnx"]["status"] == "supported" and support["onnx"]["ops"] >= 3
    # OpenVINO's FX list lacks the op the screen sees; the TorchScript trial clears it.
    assert support["openvino"]["status"] == "supported"
    assert any("exact path handles it" in note for note in support["openvino"]["notes"])


def test_an_op_no_format_supports_is_named_for_each():
    loaded = load_model("export_models:cumulative_product", input_shape=(1, 8))
    report = check_support(loaded, FORMATS)
    assert [f.status for f in report.formats] == ["unsupported"] * 3
    for verdict in report.formats:
        assert [op.layers for op in verdict.unsupported] == [["gate"]], verdict
        assert "cumprod" in " ".join([op.op for op in verdict.unsupported]
                                     + [v for op in verdict.unsupported for v in op.via])
    openvino = report.formats[2].unsupported[0]
    assert openvino.op == "aten::cumprod"  # the TorchScript op the frontend left unconverted
    with pytest.raises(UnsupportedError, match="onnx .*\n.*\ntflite .*\n.*\nopenvino"):
        report.raise_if_unsupported()


def test_a_plain_cnn_is_supported_everywhere_and_says_on_what_basis():
    loaded = load_model("tiny_models:residual_cnn", input_shape=(1, 3, 16, 16))
    report = check_support(loaded, FORMATS)
    assert all(f.status == "supported" and not f.unsupported for f in report.formats)
    assert report.graph == "torch.export"
    basis = {f.format: f.basis for f in report.formats}
    assert "ONNXRegistry" in basis["onnx"] and "lowering registry" in basis["tflite"]
    assert "exposes no op list" in basis["openvino"]
    assert report.formats[1].tool.name == "litert-torch"


def test_onnx_source_is_reported_not_checked(tmp_path):
    import torch

    import tiny_models

    path = tmp_path / "mlp.onnx"
    torch.onnx.export(tiny_models.mlp().eval(), (torch.randn(1, 64),), str(path), dynamo=False)
    report = check_support(load_model(str(path)), ("openvino",))
    assert report.formats[0].status == "not-checked" and report.formats[0].supported is None
    report.raise_if_unsupported()  # not checked is never a refusal


def _specs(*texts: str):
    from edgepipe.tensors import parse_input_option

    return [parse_input_option(t) for t in texts]
