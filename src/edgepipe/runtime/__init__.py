"""Runtimes behind one shape: ``open_artifact(path) -> Session`` (``.run``, ``.inputs``...).

One module per runtime, imported only when an artifact of its kind is opened:
ONNX Runtime (``.onnx``), OpenVINO (``.xml``), LiteRT (``.tflite``), torch (``.pt2``).
"""

from __future__ import annotations

from pathlib import Path

from edgepipe.errors import InputError, UnsupportedError
from edgepipe.runtime.base import Session, default_threads

RUNTIMES = {".onnx": "onnxruntime", ".xml": "openvino", ".tflite": "litert", ".pt2": "torch"}


def open_artifact(path: str | Path, threads: int | None = None, *, spin: bool = True) -> Session:
    """Open an artifact in the runtime it is deployed with; ``threads`` None = all usable cores.

    ``spin=False`` stops ONNX Runtime's worker threads from spinning after each run (they
    otherwise hold the cores for a while, which is fastest for back-to-back runs and slows
    whatever else shares the cores: a network client or server in the same box)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RUNTIMES:
        raise UnsupportedError(
            f"edgepipe has no runtime for '{path.name}' ({suffix or 'no suffix'}).",
            hint="artifacts are .onnx (ONNX Runtime), .xml (OpenVINO IR), .tflite (LiteRT) "
            "or .pt2 (torch).",
            reference="unknown-artifact",
        )
    if not path.is_file():
        raise InputError(f"No artifact at '{path}'.", hint="check the path.",
                         reference="artifact-not-found")
    if suffix == ".onnx":
        from edgepipe.runtime.onnx_runtime import OnnxRuntimeSession

        return OnnxRuntimeSession(path, threads, spin=spin)
    if suffix == ".xml":
        from edgepipe.runtime.openvino_runtime import OpenVINOSession

        return OpenVINOSession(path, threads)
    if suffix == ".tflite":
        from edgepipe.runtime.litert_runtime import LiteRTSession

        return LiteRTSession(path, threads)
    from edgepipe.runtime.torch_runtime import open_pt2

    return open_pt2(path, threads)


__all__ = ["RUNTIMES", "Session", "default_threads", "open_artifact"]
