"""ExecuTorch backend: static int8 with the XNNPACK quantizer (PT2E), lowered to XNNPACK.

The torch model is captured with ``torch.export``, observed by ``prepare_pt2e`` with the
XNNPACK quantizer's symmetric config (per-channel weights unless ``--no-per-channel``),
calibrated, converted (``convert_pt2e``), exported again and lowered with the XNNPACK
partitioner, as the float export is. Inputs and outputs stay float: the quantize and
dequantize ops at the edges are in the program. Which operators XNNPACK took and which
stayed on the portable kernels is recorded as in the float export (``delegation``).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int8.config import Int8StaticConfig
from edgepipe.compress.int8.litert import pt2e_calibrated
from edgepipe.errors import UnsupportedError, first_line
from edgepipe.export.base import quiet_tool, require_torch_source
from edgepipe.export.executorch import delegation_split
from edgepipe.rundir import atomic_write_bytes


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.pte, int8) from the torch model."""
    if not isinstance(job.config, Int8StaticConfig):
        raise UnsupportedError(f"The ExecuTorch backend has no method {job.config.method!r}.",
                               hint="use int8 for --format executorch.",
                               reference="method-not-available")
    require_torch_source(job.source, f"ExecuTorch {job.config.method}", "ExecuTorch lowers torch "
                         "programs (torch.export).", reference="executorch-from-onnx")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower

    class Quantizer(XNNPACKQuantizer):  # type: ignore[misc]
        def transform_for_annotation(self, model: Any) -> Any:
            return super().transform_for_annotation(integer_scalars_kept(model))

    quantizer = Quantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=job.config.per_channel))
    try:
        with quiet_tool("executorch"):
            quantized, args, count = pt2e_calibrated(job, quantizer, "executorch",
                                                      fold_quantize=True)
            program = torch.export.export(quantized, args)
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            delegation = delegation_split(edge.exported_program().graph_module)
            buffer = edge.to_executorch().buffer
    except Exception as exc:
        raise UnsupportedError(
            f"ExecuTorch's PT2E int8 quantization failed on this model: "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="use --format onnx or openvino for int8; --debug shows the traceback.",
            reference="quantization-failed") from exc
    atomic_write_bytes(job.path, buffer)
    tool = {"quantizer": "torchao prepare_pt2e/convert_pt2e with ExecuTorch's XNNPACKQuantizer "
                         "(symmetric)", "version": version("executorch"),
            "per_channel": job.config.per_channel, "calibration_samples": count,
            "calibration": "observer min/max (the ONNX Runtime calibration choices do not "
                           "apply)", "io": "float input and output (quantize/dequantize in "
                           "the program)", "delegation": delegation}
    portable = delegation["portable"]
    assert isinstance(portable, dict)
    left = [{"layer": op, "op": op, "reason": f"not delegated to XNNPACK ({n} node(s) on the "
             "portable kernels)"} for op, n in portable.items()]
    return Compressed(job.path, [job.path], "int8", tool, left_in_float=left)


def integer_scalars_kept(model: Any) -> Any:
    """``model`` (a captured GraphModule) with each integer ``add``/``mul`` of a tensor and
    a Python number moved to the op's ``.Scalar`` form.

    ExecuTorch's XNNPACK quantizer turns the number operand of every ``add.Tensor`` and
    ``mul.Tensor`` into a float32 tensor before annotating, integer arithmetic included: a
    transformers text encoder's position indices (``arange + offset``) came out float and
    then failed as indices (``IndexError: tensors used as indices must be long...``). The
    ``.Scalar`` forms compute the same and are left alone."""
    import torch

    aten = torch.ops.aten
    scalar_forms = {aten.add.Tensor: aten.add.Scalar, aten.mul.Tensor: aten.mul.Scalar}
    changed = False
    for node in model.graph.nodes:
        value = node.meta.get("val")
        if node.op != "call_function" or node.target not in scalar_forms or value is None \
                or getattr(value, "dtype", torch.float32).is_floating_point:
            continue
        args = list(node.args)
        if len(args) == 2 and not isinstance(args[0], torch.fx.Node) and \
                isinstance(args[1], torch.fx.Node):
            args.reverse()  # a number first: both ops commute
        if len(args) == 2 and isinstance(args[0], torch.fx.Node) and \
                isinstance(args[1], (int, bool)) and not node.kwargs:
            node.target, node.args, changed = scalar_forms[node.target], tuple(args), True
    if changed:
        model.recompile()
    return model
