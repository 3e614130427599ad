"""The bundled digits CNN exported once to every format, shared by the profile tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_artifacts(tmp_path_factory):
    """OUT with digits-cnn.onnx / .xml / .tflite and manifest.json, as `edgepipe export` writes."""
    from edgepipe.export.api import export_model

    out = tmp_path_factory.mktemp("digits-export")
    export_model("builtin:digits-cnn", out, formats=("onnx", "openvino", "tflite"))
    return out
