"""Will a ``.tflite`` fit a microcontroller? TFLite Micro's own interpreter says, on the host.

The model runs in tflite-micro's Python interpreter (the same C++ runtime a board runs,
built for the host), which records every allocation: the arena it actually used is read
from ``print_allocations`` (a C++ report on file descriptor 2), then checked by allocating
exactly that size and running one inference. Each operator is looked up among the kernels
the runtime registers (its ``Register_<OP>`` symbols). Flash = the model + the runtime's
code (an assumption of the catalog file); SRAM = the arena + the runtime's own RAM (ditto).
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.errors import InputError, UnsupportedError

ARENA_LINE = re.compile(r"Arena allocation total (\d+) bytes")
REFUSED_HINT = ("TFLite Micro runs int8 (and float32) models; fp16 and dynamic-range models "
                "are refused. Make a full-int8 model with `edgepipe compress MODEL --method "
                "int8 --format tflite --data D`.")
MACS_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


@contextmanager
def captured_fd2():
    """Capture what C++ writes to file descriptor 2 (into ``lines``, after the block)."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def _runtime_module() -> Any:
    from tflite_micro.python.tflite_micro import runtime

    return runtime


@lru_cache(maxsize=1)
def tflm_kernels() -> frozenset[str]:
    """Builtin operator names TFLite Micro registers a kernel for (from its symbols)."""
    library = Path(_runtime_module().__file__).with_name("_runtime.so")
    data = library.read_bytes()
    names = re.findall(rb"_ZN6tflite(?:5micro)?\d+Register_([A-Z0-9_]+?)Ev", data)
    return frozenset(name.decode() for name in names)


def model_ops(data: bytes) -> list[dict[str, Any]]:
    """Every operator of the model's first subgraph: name, inputs and outputs shapes."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    subgraph = model.Subgraphs(0)
    ops = []
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = (code.CustomCode() or b"").decode() if builtin == schema.BuiltinOperator.CUSTOM \
            else names.get(builtin, str(builtin))

        def shapes(indices: np.ndarray) -> list[list[int]]:
            return [list(subgraph.Tensors(int(t)).ShapeAsNumpy()) if t >= 0 else []
                    for t in indices]

        ops.append({"op": name, "custom": builtin == schema.BuiltinOperator.CUSTOM,
                    "inputs": shapes(op.InputsAsNumpy()), "outputs": shapes(op.OutputsAsNumpy())})
    return ops


def op_macs(op: dict[str, Any]) -> int:
    """MACs of a convolution or fully connected op from its tensor shapes (NHWC, OHWI)."""
    if op["op"] not in MACS_OPS or len(op["inputs"]) < 2 or not op["outputs"]:
        return 0
    output, weights = op["outputs"][0], op["inputs"][1]
    if not output or not weights:
        return 0
    if op["op"] == "FULLY_CONNECTED":  # weights [out, in]
        return int(np.prod(output)) * int(weights[-1])
    if op["op"] == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, out channels]
        return int(np.prod(output)) * int(weights[1] * weights[2])
    if op["op"] == "TRANSPOSE_CONV":  # inputs: output shape, weights [o, kh, kw, i], input
        return int(np.prod(op["inputs"][2])) * int(np.prod(weights))
    return int(np.prod(output)) * int(np.prod(weights[1:]))  # [o, kh, kw, i]


def measure_arena(data: bytes) -> dict[str, Any]:
    """The arena TFLite Micro allocated for the model, verified by running it in that size."""
    runtime = _runtime_module()
    with captured_fd2() as log:
        try:
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=max(len(data) * 10,
                                                                              1 << 20))
            interpreter.print_allocations()
        except RuntimeError as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        detail = "; ".join(line.strip() for line in log if line.strip())[:400]
        explained = explain_refusal(log, data)
        if explained is not None:
            message, hint = explained
            raise UnsupportedError(f"{message} (TFLite Micro: {detail or failure})", hint=hint,
                                   reference="tflm-refused",
                                   details={"tflm_log": [line for line in log if line.strip()]})
        raise UnsupportedError(
            f"TFLite Micro cannot prepare this model: {failure}"
            + (f" ({detail})" if detail else ""),
            hint=REFUSED_HINT, reference="tflm-refused")
    found = [int(m.group(1)) for line in log if (m := ARENA_LINE.search(line))]
    if not found:
        raise UnsupportedError("TFLite Micro printed no arena total.",
                               hint="this tflite-micro version reports allocations "
                               "differently; please report it.", reference="tflm-no-arena")
    arena = found[-1]
    return {"arena_bytes": arena, **verify_arena(runtime, data, arena)}


# A kernel's failed check, as TFLite Micro logs it, and the node it failed on.
_FAILED_CHECK = re.compile(r"(?:[\w./-]*/)?(\w+)\.cc:\d+ (.+?) was not true")
_FAILED_NODE = re.compile(r"Node (\w+) \(number (\d+)f?\) failed to (prepare|invoke)")
# Limits compiled into TFLite Micro's kernels, in plain words: (kernel source, check) ->
# (what is limited, the limit in this tflite-micro build, measured: 10 inputs pass, 11 fail).
KERNEL_LIMITS = {
    ("concatenation", "num_inputs <= kMaxInputNum"): (
        "inputs", 10, "concatenate in stages (a concatenation of concatenations)"),
}


def explain_refusal(log: list[str], data: bytes) -> tuple[str, str] | None:
    """(message, hint) in plain words for a kernel check TFLite Micro failed, else None.

    ``concatenation.cc:156 num_inputs <= kMaxInputNum was not true`` becomes "CONCATENATION
    takes at most 10 inputs in TFLite Micro; node 12 of this model has 11 inputs."
    """
    text = "\n".join(log)
    check = _FAILED_CHECK.search(text)
    if check is None:
        return None
    node = _FAILED_NODE.search(text)
    op = node.group(1) if node else check.group(1).upper()
    index = int(node.group(2)) if node else None
    where = f" (node {index} of this model)" if index is not None else ""
    condition = check.group(2).strip()
    limit = KERNEL_LIMITS.get((check.group(1), condition))
    if limit is not None:
        what, most, how = limit
        try:
            count = len(model_ops(data)[index]["inputs"]) if index is not None else None
        except (IndexError, KeyError, ValueError):
            count = None
        has = f"; node {index} of this model has {count} {what}" if count is not None else where
        return (f"{op} takes at most {most} {what} in TFLite Micro{has}.",
                f"give each {op} at most {most} {what}: {how}; or run the model with "
                "TFLite/LiteRT on a bigger target (`edgepipe targets list`).")
    if "type" in condition:
        return (f"TFLite Micro's {op} kernel does not take the tensor types of this {op}"
                f"{where}.", REFUSED_HINT)
    return (f"TFLite Micro's {op} kernel refuses this {op}{where}: its check "
            f"`{condition}` failed.", REFUSED_HINT)


def verify_arena(runtime: Any, data: bytes, arena: int) -> dict[str, Any]:
    """Allocate exactly ``arena`` bytes (then a few alignment steps more) and invoke once.

    A model that allocates but cannot run (a kernel that refuses a type, say) is reported
    with TFLite Micro's own message: it would fail on the board too, whatever the arena.
    """
    failure = ""
    for extra in (0, 16, 64, 256, 1024):
        stage = "allocating"
        try:
            with captured_fd2() as log:
                interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena + extra)
                stage = "running"
                details = interpreter.get_input_details(0)
                interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
                interpreter.invoke()
        except RuntimeError as exc:
            detail = "; ".join(line.strip() for line in log if line.strip())[:300]
            failure = f"{stage} failed: {exc}" + (f" ({detail})" if detail else "")
            if stage == "running":
                return {"verified_arena_bytes": None, "verified": False, "runs": False,
                        "verification": f"allocated {arena + extra} bytes, but {failure}"}
            continue
        return {"verified_arena_bytes": arena + extra, "verified": True, "runs": True,
                "verification": f"allocated {arena + extra} bytes and ran one inference"}
    return {"verified_arena_bytes": None, "verified": False, "runs": None,
            "verification": f"allocating {arena}..{arena + 1024} bytes failed: {failure}"}


def precision_of(ops: list[dict[str, Any]], data: bytes) -> str:
    """``int8`` when the weights of the MAC ops are int8, else ``fp32``."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    subgraph = model.Subgraphs(0)
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        if ops[i]["op"] in MACS_OPS and op.InputsLength() > 1:
            weights = subgraph.Tensors(int(op.Inputs(1)))
            return "int8" if weights.Type() == schema.TensorType.INT8 else "fp32"
    return "fp32"


def read_model(path: str | Path) -> bytes:
    path = Path(path)
    if path.suffix.lower() != ".tflite":
        raise InputError(f"'{path.name}' is not a .tflite file; TFLite Micro runs .tflite only.",
                         hint="export one with `edgepipe export MODEL --format tflite` or "
                         "`edgepipe compress MODEL --method int8 --format tflite`.",
                         reference="not-tflite")
    if not path.is_file():
        raise InputError(f"No artifact at '{path}'.", hint="check the path.",
                         reference="artifact-not-found")
    from edgepipe.model.files import validate_artifact

    validate_artifact(path)
    return path.read_bytes()
