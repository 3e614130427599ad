"""Static int8 for ExecuTorch (PT2E with the XNNPACK quantizer) on the bundled digits CNN:
the accuracy floor against the float .pte, the size, and every quantized op in XNNPACK."""

from __future__ import annotations

import pytest

pytest.importorskip("executorch", reason="the executorch extra is not installed")


def test_executorch_int8_keeps_accuracy_and_is_delegated(digits_cnn, tmp_path):
    from edgepipe.compress import Int8StaticConfig, compress
    from edgepipe.runtime import open_artifact

    loaded, splits = digits_cnn
    result = compress(loaded, Int8StaticConfig(formats=("executorch",)), tmp_path, splits)
    (artifact,) = result.to_dict()["artifacts"]
    assert artifact["name"] == "digits-cnn.int8.pte" and artifact["precision"] == "int8"
    metrics = artifact["metrics"]
    assert metrics["metric"] == "top1" and metrics["value"] >= 0.97, metrics
    assert metrics["drop"] <= 0.01, metrics  # a fraction: 1 point of top-1 (measured 0.28)
    assert artifact["size_bytes"] * 2.5 < (tmp_path / "digits-cnn.pte").stat().st_size
    delegation = artifact["tool"]["delegation"]
    assert delegation["portable_ops"] == 0, delegation
    assert delegation["delegated"]["quantized_decomposed.quantize_per_tensor.default"] > 0
    assert artifact["tool"]["left_in_float"] == []
    session = open_artifact(tmp_path / artifact["path"], threads=1)
    assert [s.dtype for s in session.inputs] == ["float32"]  # q/dq are in the program
