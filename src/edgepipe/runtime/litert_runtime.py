"""``.tflite`` files on ai-edge-litert's Interpreter (the successor of tflite-runtime)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.native_logs import native_stderr
from edgepipe.runtime.base import Session, default_threads
from edgepipe.tensors import Dim, TensorSpec


class LiteRTSession(Session):
    """A TFLite model on the LiteRT Interpreter, inputs and outputs in signature order.

    litert-torch names a model's inputs ``args_0, args_1, ...`` and outputs ``output_0, ...``
    in its ``serving_default`` signature; they are ordered by that number, not by tensor
    index. ``delegate=False`` runs the builtin kernels without XNNPACK, and
    ``preserve_all_tensors`` keeps intermediates readable (per-layer comparison).
    """

    name = "litert"

    def __init__(self, path: Path, threads: int | None = None, *, delegate: bool = True,
                 preserve_all_tensors: bool = False) -> None:
        import ai_edge_litert
        from ai_edge_litert import interpreter as litert

        self.version = getattr(ai_edge_litert, "__version__", "") or _dist_version()
        resolver = (litert.OpResolverType.AUTO if delegate
                    else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        with native_stderr("LiteRT"):  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = litert.Interpreter(
                model_path=str(path), num_threads=threads or default_threads(),
                experimental_op_resolver_type=resolver,
                experimental_preserve_all_tensors=preserve_all_tensors)
            self.interpreter.allocate_tensors()
        details = {d["index"]: d for d in self.interpreter.get_input_details()}
        details.update({d["index"]: d for d in self.interpreter.get_output_details()})
        signatures = self.interpreter._get_full_signature_list()
        if signatures:
            signature = next(iter(signatures.values()))
            self.input_indices = [i for _, i in sorted(signature["inputs"].items(), key=_order)]
            self.output_indices = [i for _, i in sorted(signature["outputs"].items(), key=_order)]
            in_names = [n for n, _ in sorted(signature["inputs"].items(), key=_order)]
            out_names = [n for n, _ in sorted(signature["outputs"].items(), key=_order)]
        else:
            self.input_indices = [d["index"] for d in self.interpreter.get_input_details()]
            self.output_indices = [d["index"] for d in self.interpreter.get_output_details()]
            in_names = [details[i]["name"] for i in self.input_indices]
            out_names = [details[i]["name"] for i in self.output_indices]
        inputs = [_spec(details[i], n) for i, n in zip(self.input_indices, in_names, strict=True)]
        outputs = [_spec(details[i], n) for i, n in zip(self.output_indices, out_names, strict=True)]
        # Fully-int8 models take and give int8 tensors; callers work in float. The session
        # shows the float view (inputs/outputs as float32) and converts at the edges with the
        # model's own scale and zero point; the options record the int8 types.
        self.input_quant = [_quantization(details[i]) for i in self.input_indices]
        self.output_quant = [_quantization(details[i]) for i in self.output_indices]
        quantized = {spec.name: {"dtype": spec.dtype, "scale": q[0], "zero_point": q[1]}
                     for spec, q in zip([*inputs, *outputs], [*self.input_quant,
                                                              *self.output_quant], strict=True)
                     if q is not None}
        inputs = [_float_view(s, q) for s, q in zip(inputs, self.input_quant, strict=True)]
        outputs = [_float_view(s, q) for s, q in zip(outputs, self.output_quant, strict=True)]
        super().__init__(Path(path), inputs, outputs, {
            "num_threads": threads or default_threads(),
            "delegate": "xnnpack (default)" if delegate else "none (builtin kernels)",
            "preserve_all_tensors": preserve_all_tensors,
            **({"quantized_io": quantized} if quantized else {}),
        })
        self._raw_dtypes = {name: q["dtype"] for name, q in quantized.items()}

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run on arrays of the (float) input specs; int8 inputs are quantized and int8
        outputs dequantized to float32 with the model's own parameters."""
        prepared = self.prepare(arrays)
        raw = [_quantize(a, self._raw_dtypes[spec.name], q) if q is not None else a
               for a, spec, q in zip(prepared, self.inputs, self.input_quant, strict=True)]
        outputs = self._run(raw)
        return [(o.astype(np.float32) - q[1]) * np.float32(q[0]) if q is not None else o
                for o, q in zip(outputs, self.output_quant, strict=True)]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        current = {d["index"]: tuple(d["shape"]) for d in self.interpreter.get_input_details()}
        resized = False
        for index, array in zip(self.input_indices, arrays, strict=True):
            if current[index] != array.shape:
                self.interpreter.resize_tensor_input(index, list(array.shape), strict=False)
                resized = True
        if resized:
            self.interpreter.allocate_tensors()
        for index, array in zip(self.input_indices, arrays, strict=True):
            self.interpreter.set_tensor(index, array)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_tensor(i)) for i in self.output_indices]

    def ops(self) -> list[str]:
        """Operator names in execution order (the model's own ops, before any delegate)."""
        return [op["op_name"] for op in self.interpreter._get_ops_details()
                if op["op_name"] != "DELEGATE"]

    def op_details(self) -> list[TfliteOp]:
        """Each op's name and its input and output tensor indices, in execution order."""
        return [TfliteOp(op["op_name"], tuple(int(i) for i in op["inputs"]),
                         tuple(int(o) for o in op["outputs"]))
                for op in self.interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]


@dataclass(frozen=True)
class TfliteOp:
    """One operator of a .tflite model: its name and its tensors' indices (-1: none)."""

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def open_session(path: Path, threads: int | None = None, *, spin: bool = True,
                 trust_pickle: bool = False) -> LiteRTSession:
    """The opener :mod:`edgepipe.formats` names for .tflite files."""
    return LiteRTSession(path, threads)


def _quantization(detail: dict[str, Any]) -> tuple[float, int] | None:
    """(scale, zero point) of an integer tensor with per-tensor quantization, else None."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return float(scale), int(zero_point)
    return None


def _float_view(spec: TensorSpec, quant: tuple[float, int] | None) -> TensorSpec:
    return TensorSpec(spec.name, spec.shape, "float32") if quant is not None else spec


def _quantize(array: np.ndarray, dtype: str, quant: tuple[float, int]) -> np.ndarray:
    """Float -> the tensor's integer type with its scale and zero point."""
    info = np.iinfo(np.dtype(dtype))
    scaled = np.round(array / quant[0]) + quant[1]
    return np.clip(scaled, info.min, info.max).astype(dtype)


def _order(item: tuple[str, int]) -> tuple[int, str]:
    match = re.search(r"(\d+)$", item[0])
    return (int(match.group(1)) if match else 0, item[0])


def _spec(detail: dict[str, Any], name: str) -> TensorSpec:
    signature = detail.get("shape_signature")
    raw = signature if signature is not None and len(signature) else detail["shape"]
    shape: list[Dim] = [int(d) if d > 0 else f"dim{i}" for i, d in enumerate(raw)]
    return TensorSpec(name, tuple(shape), np.dtype(detail["dtype"]).name)


def _dist_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return ""
