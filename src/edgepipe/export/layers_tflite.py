"""Per-layer comparison for ``.tflite`` artifacts (see :mod:`edgepipe.export.layers`).

The model runs on LiteRT's builtin kernels with ``experimental_preserve_all_tensors`` so
every op's output stays readable. Each op output is matched to a torch layer:

- **by name**: litert-torch names a tensor after the modules that made it, as class paths
  with the attribute appended (``pkg.Net/torch.nn.modules.conv.Conv2d_conv2``); the path
  is resolved against the module's own ``named_modules``. A fused op (conv + ReLU) lists
  several such names, the last layer of the fusion first; only that first name counts,
  since the layers before it inside the fusion have no tensor of their own.
- **by shape**: a layer without a tensor of its name (the graph's output tensors are
  renamed ``serving_default_output_0_output``) is matched to a tensor named after no
  module when, between the ops matched by name around it, exactly one such tensor and
  exactly one unmatched layer have its shape.

Inner 4-D tensors are channel-last in LiteRT whatever ``--nhwc`` says; a tensor whose
shape is the layer's NHWC shape is transposed back (``layout`` in each row says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.export.activations import torch_activations
from edgepipe.export.base import to_channel_last
from edgepipe.export.validate import compare_one


@dataclass
class _Output:
    position: int  # the op's place in execution order
    index: int  # the tensor's index in the interpreter
    name: str
    path: str | None  # the module path its name resolves to, if any


def compare_tflite_layers(module: Any, sample: list[np.ndarray], artifact: Path, atol: float,
                          threads: int | None = None,
                          channel_last_inputs: list[int] | None = None) -> dict[str, Any]:
    """Layer-by-layer differences between ``module`` and a ``.tflite``; the first over ``atol``."""
    from edgepipe.runtime.litert_runtime import LiteRTSession

    reference = torch_activations(module, sample)
    paths = {name for name, _ in module.named_modules() if name}
    session = LiteRTSession(artifact, threads, delegate=False, preserve_all_tensors=True)
    last = set(channel_last_inputs or [])
    session.run([to_channel_last(a) if i in last else a for i, a in enumerate(sample)])
    details = {d["index"]: d for d in session.interpreter.get_tensor_details()}
    outputs = [_Output(position, index, details[index]["name"],
                       module_path(details[index]["name"], paths))
               for position, op in enumerate(session.op_details()) for index in op.outputs
               if index >= 0 and np.issubdtype(np.dtype(details[index]["dtype"]), np.floating)]
    values = {o.index: np.array(session.interpreter.get_tensor(o.index)) for o in outputs}
    matches = _match_by_name(reference, outputs, values)
    by_name = set(matches)
    matches.update(_match_by_shape(reference, outputs, values, matches))
    rows = []
    for path in reference:  # torch's order: the first failing row is the first layer to fail
        if path not in matches:
            continue
        output = matches[path]
        actual, layout = align(reference[path], values[output.index])
        assert actual is not None
        parity = compare_one(path, reference[path], actual, atol)
        rows.append({"layer": path, "max_abs_diff": parity.max_abs_diff, "limit": parity.limit,
                     "sqnr_db": parity.to_dict()["sqnr_db"], "passed": parity.passed,
                     "matched_by": "name" if path in by_name else "shape",
                     "tflite_tensor": output.name, "layout": layout})
    if not rows:
        return {"available": False, "reason": "no TFLite tensor matched a torch layer"}
    first = next((row["layer"] for row in rows if not row["passed"]), None)
    return {"available": True, "compared": len(rows), "first_divergent": first, "layers": rows,
            "matching": {"by_name": len(by_name), "by_shape": len(matches) - len(by_name),
                         "not_exposed": [p for p in reference if p not in matches]}}


def module_path(tensor_name: str, paths: set[str]) -> str | None:
    """``pkg.Net/torch.nn.modules.container.Sequential_stem/...Conv2d_0`` -> ``stem.0``.

    Each segment after the first is ``CLASS_ATTR``; where an attribute or class holds
    ``_`` the split that names a real module path wins. A wrapper's own attributes at the
    front (``ChannelLastIOWrapper/..._wrapped/...``) are dropped.
    """
    segments = tensor_name.split(";", 1)[0].split("/")[1:]
    found: list[str] = []

    def walk(i: int, prefix: list[str], start: int) -> bool:
        if i == len(segments):
            candidate = ".".join(prefix[start:])
            if candidate in paths:
                found.append(candidate)
            return bool(found)
        tail = segments[i].rsplit(".", 1)[-1]
        cuts = [k for k, ch in enumerate(tail) if ch == "_"]
        return any(walk(i + 1, [*prefix, tail[k + 1:]], start) for k in cuts if tail[k + 1:])

    # The whole chain first; a chain under a wrapper's attributes only if none fits.
    starts = range(len(segments))
    return found[0] if any(walk(0, [], start) for start in starts) else None


def align(reference: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray | None, str]:
    """``actual`` in the reference's shape, and how: as is, from NHWC, or squeezed."""
    if actual.shape == reference.shape:
        return actual, "same"
    if reference.ndim == 4 and actual.shape == to_channel_last(reference).shape:
        return np.ascontiguousarray(np.moveaxis(actual, -1, 1)), "NHWC"
    squeezed = [d for d in reference.shape if d != 1]
    if actual.size == reference.size and [d for d in actual.shape if d != 1] == squeezed:
        return actual.reshape(reference.shape), "squeezed"
    return None, ""


def _match_by_name(reference: dict[str, np.ndarray], outputs: list[_Output],
                   values: dict[int, np.ndarray]) -> dict[str, _Output]:
    """Layer -> the last op output named after it (a layer's last call), if shapes agree."""
    named: dict[str, _Output] = {}
    for output in outputs:
        if output.path in reference:
            named[output.path] = output
    return {path: output for path, output in named.items()
            if align(reference[path], values[output.index])[0] is not None}


def _match_by_shape(reference: dict[str, np.ndarray], outputs: list[_Output],
                    values: dict[int, np.ndarray],
                    named: dict[str, _Output]) -> dict[str, _Output]:
    """Unnamed layers matched where shape alone is unambiguous between named neighbours."""
    order = list(reference)
    used = {o.index for o in named.values()}
    found: dict[str, _Output] = {}
    for k, path in enumerate(order):
        if path in named:
            continue
        before = [named[p].position for p in order[:k] if p in named]
        after = [named[p].position for p in order[k + 1:] if p in named]
        low, high = max(before, default=-1), min(after, default=1 << 30)
        gap = [o for o in outputs if low < o.position < high and o.path is None
               and o.index not in used and align(reference[path], values[o.index])[0] is not None]
        rivals = [p for p in order if p not in named and p != path
                  and low < _position(p, order, named) < high
                  and reference[p].shape == reference[path].shape]
        if len(gap) == 1 and not rivals:
            found[path] = gap[0]
            used.add(gap[0].index)
    return found


def _position(path: str, order: list[str], named: dict[str, _Output]) -> float:
    """Where an unnamed layer falls among the ops: just after its last named predecessor."""
    k = order.index(path)
    before = [named[p].position for p in order[:k] if p in named]
    return max(before, default=-1) + 0.5
