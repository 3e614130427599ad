"""The packed weights file of a binarized model: 1 bit per binary weight, read back to check.

Layout: ``EPBIN1\\n``, a 4-byte little-endian header length, a compact JSON header (per
layer: name, kind, and per tensor its dtype, shape, offset and byte count), then the raw
tensors. A binary layer stores its weight signs with ``np.packbits`` (bit 1 = +1, bit 0 =
-1), and its per-channel scale, bias and sign threshold in float16; the 8-bit layers store
int8 weights and float32 scales and biases. :func:`check_packed` reads the file back,
unpacks it and checks that every weight equals, bit for bit, what the exported ONNX graph
holds.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.errors import ToleranceError
from edgepipe.rundir import atomic_write_bytes

MAGIC = b"EPBIN1\n"


def write_packed(path: Path, layers: list[dict[str, Any]]) -> None:
    """Write ``layers`` (as :func:`~edgepipe.compress.binary.build.deploy` gives) to ``path``."""
    header: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    offset = 0
    for layer in layers:
        entry: dict[str, Any] = {"layer": layer["layer"], "kind": layer["kind"], "tensors": {}}
        for name, array in layer["tensors"].items():
            stored = np.packbits(array.reshape(-1) > 0) if name == "signs" else array
            data = np.ascontiguousarray(stored).tobytes()
            entry["tensors"][name] = [str(stored.dtype), list(array.shape), offset, len(data)]
            blobs.append(data)
            offset += len(data)
        header.append(entry)
    text = json.dumps(header, separators=(",", ":")).encode()
    atomic_write_bytes(path, MAGIC + struct.pack("<I", len(text)) + text + b"".join(blobs))


def read_packed(path: Path) -> list[dict[str, Any]]:
    """The layers of a packed file, unpacked (signs back to int8 +-1)."""
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ToleranceError(f"{path.name} is not an edgepipe packed weights file.",
                             hint="write it with edgepipe compress --method binary.",
                             reference="packed-mismatch")
    (length,) = struct.unpack("<I", raw[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    header = json.loads(raw[start:start + length])
    body = raw[start + length:]
    layers = []
    for entry in header:
        tensors = {}
        for name, (dtype, shape, offset, size) in entry["tensors"].items():
            array = np.frombuffer(body[offset:offset + size], dtype=np.dtype(dtype))
            if name == "signs":
                bits = np.unpackbits(array, count=int(np.prod(shape)))
                array = (bits.astype(np.int8) * 2 - 1)
            tensors[name] = array.reshape(shape)
        layers.append({"layer": entry["layer"], "kind": entry["kind"], "tensors": tensors,
                       "bytes": {n: t[3] for n, t in entry["tensors"].items()}})
    return layers


def expanded_weight(layer: dict[str, Any]) -> np.ndarray:
    """The float32 weight a binary layer computes with: sign x its channel's scale."""
    tensors = layer["tensors"]
    signs = tensors["signs"].astype(np.float32)
    scale = tensors["scale"].astype(np.float32).reshape(-1, *[1] * (signs.ndim - 1))
    return signs * scale


def check_packed(path: Path, written: list[dict[str, Any]], onnx_path: Path) -> dict[str, Any]:
    """Read ``path`` back; it must equal ``written`` and the weights in ``onnx_path`` exactly.

    Returns per-layer byte counts (measured from the file's own index) and the verdict.
    """
    import onnx
    from onnx import numpy_helper

    read = read_packed(path)
    problems = []
    graph = onnx.load(str(onnx_path)).graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    dequantized = _dequantized(graph)
    for mine, back in zip(written, read, strict=True):
        for name, array in mine["tensors"].items():
            if not np.array_equal(array, back["tensors"][name]):
                problems.append(f"{mine['layer']}.{name} reads back different")
        if back["kind"] == "binary":
            # found by name: the DequantizeLinear the binary backend wrote for this layer
            if "in_onnx" not in mine:
                continue  # stored as float in the ONNX file (see the notes)
            weight = expanded_weight(back)
            found = dequantized.get(mine["in_onnx"])
            if found is None or not (_same(found, weight) or _same(found.T, weight)):
                problems.append(f"{mine['layer']}: the weight {mine['in_onnx']} in "
                                f"{onnx_path.name} differs from the unpacked one")
            continue
        # an 8-bit layer: the int8 initializer its exported node dequantizes, found by name
        weight = back["tensors"]["weight"]
        found = _int8_weight(graph, mine["layer"], constants)
        if found is None or not _same(found, weight):
            problems.append(f"{mine['layer']}: the int8 weight of its node in "
                            f"{onnx_path.name} differs from the unpacked one")
    if problems or len(read) != len(written):
        raise ToleranceError(
            f"The packed weights file {path.name} does not reproduce the exported model: "
            + "; ".join(problems or ["a different number of layers"]) + ".",
            hint="this is a bug in the binary backend; --debug shows the traceback.",
            reference="packed-mismatch")
    return {"round_trip": "exact", "layers": {
        layer["layer"]: {"kind": layer["kind"], "bytes": sum(layer["bytes"].values()),
                         "tensor_bytes": layer["bytes"]} for layer in read}}


def _int8_weight(graph: Any, layer: str, constants: dict[str, np.ndarray]) -> Any:
    """The int8 initializer behind the weight of the node exported from ``layer``: back from
    the node's weight input through DequantizeLinear (and the Transpose, Clip or Identity
    Brevitas' export puts around it) to the initializer."""
    from edgepipe.compress.onnx_layers import exported_node

    node = exported_node(graph, layer)
    if node is None or len(node.input) < 2:
        return None
    producers = {output: n for n in graph.node for output in n.output}
    name, dequantized = node.input[1], False
    while name not in constants:
        producer = producers.get(name)
        if producer is None or producer.op_type not in ("DequantizeLinear", "Transpose", "Clip",
                                                        "Identity"):
            return None
        dequantized = dequantized or producer.op_type == "DequantizeLinear"
        name = producer.input[0]
    return constants[name] if dequantized else None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _dequantized(graph: Any) -> dict[str, np.ndarray]:
    """The float32 weights of DequantizeLinear nodes over int8 initializers, by output name."""
    from onnx import numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(n in constants for n in node.input):
            continue
        values, scale = constants[node.input[0]], constants[node.input[1]]
        zero = constants[node.input[2]] if len(node.input) > 2 else np.zeros_like(scale)
        if values.dtype != np.int8 or values.ndim < 2 or scale.ndim != 1:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * values.ndim
        shape[axis] = -1
        weights[node.output[0]] = ((values.astype(np.float32)
                                    - zero.astype(np.float32).reshape(shape))
                                   * scale.reshape(shape))
    return weights
