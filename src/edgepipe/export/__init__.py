"""Export to ONNX, TFLite (LiteRT) and OpenVINO IR, each parity-checked in its own runtime.

One module per format (``onnx``, ``tflite``, ``openvino``) with one ``export(job)``
function; :func:`export_model` runs them and checks and records every artifact.
"""

from edgepipe.export.api import ExportResult, export_model
from edgepipe.export.config import DEFAULT_ATOL, FORMATS, ExportConfig
from edgepipe.export.validate import ParityReport, compare_outputs

__all__ = ["DEFAULT_ATOL", "FORMATS", "ExportConfig", "ExportResult", "ParityReport",
           "compare_outputs", "export_model"]


