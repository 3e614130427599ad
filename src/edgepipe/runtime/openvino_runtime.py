"""OpenVINO IR (``.xml`` + ``.bin``) on the CPU plugin, with explicit threads and precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.runtime.base import Session, default_threads
from edgepipe.tensors import Dim, TensorSpec

_OV_DTYPES = {"f32": "float32", "f16": "float16", "f64": "float64", "i64": "int64",
              "i32": "int32", "i8": "int8", "u8": "uint8", "boolean": "bool"}


class OpenVINOSession(Session):
    """An OpenVINO IR compiled for the CPU.

    ``precision`` is the CPU plugin's inference precision: ``f32`` by default, because on
    CPUs with bf16 or AMX support the plugin's own default is bf16, which would make a
    parity check measure a precision nobody asked for.
    """

    name = "openvino"

    def __init__(self, path: Path, threads: int | None = None, precision: str = "f32") -> None:
        ov = import_openvino()
        self.version = ov.get_version().split("-")[0]
        core = ov.Core()
        model = core.read_model(str(path))
        config = {"INFERENCE_NUM_THREADS": threads or default_threads(),
                  "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        inputs = [_spec(port, i, "input") for i, port in enumerate(self._compiled.inputs)]
        outputs = [_spec(port, i, "output") for i, port in enumerate(self._compiled.outputs)]
        super().__init__(Path(path), inputs, outputs, {
            "device": "CPU", "inference_num_threads": config["INFERENCE_NUM_THREADS"],
            "inference_precision_hint": precision, "performance_hint": "LATENCY",
        })

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        result = self._request.infer(arrays, share_inputs=False)
        return [np.array(result[port]) for port in self._compiled.outputs]


def open_session(path: Path, threads: int | None = None, *, spin: bool = True,
                 trust_pickle: bool = False) -> OpenVINOSession:
    """The opener :mod:`edgepipe.formats` names for .xml files."""
    return OpenVINOSession(path, threads)


def import_openvino() -> Any:
    """``import openvino``, with its usage telemetry declined for this process.

    OpenVINO's telemetry is opt-out: importing the package and each ``convert_model`` post
    events to Google Analytics from a forked process, unless the user ran its opt-out tool.
    edgepipe sends nothing anywhere; and a fork after litert-torch has started JAX's
    threads can deadlock. The consent check is answered "declined" before OpenVINO asks
    it; nothing is written to the user's files.
    """
    import sys

    if "openvino" not in sys.modules:
        try:
            from openvino_telemetry.utils import opt_in_checker
        except ImportError:  # telemetry not installed: nothing to decline
            pass
        else:
            declined = opt_in_checker.ConsentCheckResult.DECLINED
            opt_in_checker.OptInChecker.check = lambda self, *a, **k: declined
    import openvino

    return openvino


def _spec(port: Any, index: int, kind: str) -> TensorSpec:
    names = sorted(port.get_names())
    name = names[0] if names else f"{kind}_{index}"
    shape: list[Dim] = []
    for i, dim in enumerate(port.get_partial_shape()):
        shape.append(dim.get_length() if dim.is_static else f"dim{i}")
    dtype = _OV_DTYPES.get(port.get_element_type().get_type_name(), "float32")
    return TensorSpec(name, tuple(shape), dtype)
