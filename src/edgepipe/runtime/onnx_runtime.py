"""ONNX Runtime sessions, with explicit session options (threads, optimisation level)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.runtime.base import Session, default_threads
from edgepipe.tensors import TensorSpec

_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8",
    "tensor(uint8)": "uint8", "tensor(bool)": "bool", "tensor(int16)": "int16",
}


class OnnxRuntimeSession(Session):
    """An ``.onnx`` file on ONNX Runtime's CPU provider."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None,
                 extra_outputs: list[str] | None = None, spin: bool = True) -> None:
        import onnxruntime as ort

        self.version = ort.__version__
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: warnings would go to stderr unasked
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model: str | bytes = str(path)
        if extra_outputs:
            model = _with_outputs(Path(path), extra_outputs)
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        inputs = [_spec(v) for v in self._session.get_inputs()]
        outputs = [_spec(v) for v in self._session.get_outputs()]
        super().__init__(Path(path), inputs, outputs, {
            "intra_op_num_threads": options.intra_op_num_threads,
            "inter_op_num_threads": options.inter_op_num_threads,
            "execution_mode": "sequential",
            "graph_optimization_level": "all",
            "allow_spinning": spin,
            "providers": self._session.get_providers(),
        })

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        feed = {spec.name: array for spec, array in zip(self.inputs, arrays, strict=True)}
        return [np.asarray(a) for a in self._session.run(None, feed)]


def open_session(path: Path, threads: int | None = None, *, spin: bool = True,
                 trust_pickle: bool = False) -> OnnxRuntimeSession:
    """The opener :mod:`edgepipe.formats` names for .onnx files."""
    return OnnxRuntimeSession(path, threads, spin=spin)


def _spec(value: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else (d or f"dim{i}")
                  for i, d in enumerate(value.shape))
    return TensorSpec(value.name, shape, _ORT_DTYPES.get(value.type, "float32"))


def _with_outputs(path: Path, names: list[str]) -> bytes:
    """The model with intermediate tensors added as graph outputs (for per-layer diffs)."""
    import onnx

    proto = onnx.load(str(path))
    existing = {o.name for o in proto.graph.output}
    for name in names:
        if name not in existing:
            proto.graph.output.append(onnx.ValueInfoProto(name=name))
    return proto.SerializeToString()
