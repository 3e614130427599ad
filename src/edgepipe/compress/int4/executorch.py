"""ExecuTorch backend of int4-weight: torchao's ``Int8DynamicActivationIntxWeightConfig``
(int4 weights in groups, activations quantized to int8 on the fly), lowered to XNNPACK.

torchao's weight-only config (``IntxWeightOnlyConfig``) was tried first: executorch 1.5.1
lowered it to XNNPACK, but the program kept float-sized weights and its outputs were wrong
(SQNR -117 dB against the float model on the test MLP, measured in a script outside
edgepipe), so it is not used. The dynamic-activation config lowers whole (linear, quantize
and dequantize ops all delegated) and is the path ExecuTorch's own examples take for 4-bit
weights ("8da4w"): the same kind of kernel LiteRT's blockwise int4 reaches.

torchao rewrites ``nn.Linear`` modules: a Linear the group size does not divide is kept in
float (filtered out), the output head with ``keep_8bit`` gets int8 weights per output
channel, and weights that are not a Linear module (MultiheadAttention's packed q/k/v
projection, and its out_proj, whose weight it reads directly) stay float and are listed.
torchao has no data-aware int4 algorithm that lowers to XNNPACK here, so ``--data-aware``
is refused for executorch by the config; so is ``--asymmetric``: with zero points the
lowered program's outputs were wrong (SQNR 4.2 dB on the test MLP, against 19.6 dB
symmetric).
"""

from __future__ import annotations

import copy
import logging
from importlib.metadata import version
from typing import Any

from edgepipe.compress.base import Compressed, CompressJob
from edgepipe.compress.int4 import layers
from edgepipe.compress.int4.config import Int4WeightConfig
from edgepipe.compress.int4.tools import quantization_failed
from edgepipe.export.base import quiet_tool, require_torch_source
from edgepipe.export.executorch import delegation_split
from edgepipe.rundir import atomic_write_bytes


def compress(job: CompressJob) -> Compressed:
    """Write ``job.path`` (.pte, int4 weights delegated to XNNPACK) from the torch model."""
    require_torch_source(job.source, "ExecuTorch int4-weight", "ExecuTorch lowers torch "
                         "programs (torch.export).", reference="executorch-from-onnx")
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from torch import nn
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_primitives import MappingType

    config = job.config
    assert isinstance(config, Int4WeightConfig)
    group = config.group_for("executorch")
    module = copy.deepcopy(job.source.module).eval()
    linears = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    inside = {f"{name}.out_proj" for name, m in module.named_modules()
              if isinstance(m, nn.MultiheadAttention)}
    head = linears[-1][0] if linears and config.keep_8bit else None
    rows, four = [], set()
    for name, linear in linears:
        k, n = linear.in_features, linear.out_features
        if name in inside:
            rows.append(layers.kept(name, "Linear", k, n, "float",
                                    "MultiheadAttention uses this weight directly, not as a "
                                    "module, which torchao's int4 weight does not support"))
        elif k % group:
            rows.append(layers.kept(name, "Linear", k, n, "float",
                                    layers.NOT_DIVISIBLE.format(k=k, g=group)))
        elif name == head:
            rows.append(layers.quantized(name, "Linear", k, n, 8, None))
        else:
            rows.append(layers.quantized(name, "Linear", k, n, 4, group))
            four.add(name)
    for name, attention in module.named_modules():
        if isinstance(attention, nn.MultiheadAttention) and attention.in_proj_weight is not None:
            n, k = attention.in_proj_weight.shape
            rows.append(layers.kept(f"{name}.in_proj", "MultiheadAttention", int(k), int(n),
                                    "float", "a bare weight, not an nn.Linear: torchao "
                                    "quantizes Linear modules only"))
    args = tuple(torch.from_numpy(a) for a in job.source.sample_inputs(1, config.seed))
    try:
        with quiet_tool("executorch"):
            quantize_(module, Int8DynamicActivationIntxWeightConfig(
                weight_dtype=torch.int4, weight_granularity=PerGroup(group),
                weight_mapping_type=MappingType.SYMMETRIC),
                filter_fn=lambda _, fqn: fqn in four)
            if head is not None:
                quantize_(module, Int8DynamicActivationIntxWeightConfig(
                    weight_dtype=torch.int8, weight_granularity=PerAxis(0)),
                    filter_fn=lambda _, fqn: fqn == head)
            program = torch.export.export(module, args)
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            delegation = delegation_split(edge.exported_program().graph_module)
            buffer = edge.to_executorch().buffer
    except Exception as exc:
        raise quantization_failed("torchao with ExecuTorch's XNNPACK lowering", exc,
                                  "onnx / openvino / tflite") from exc
    atomic_write_bytes(job.path, buffer)
    tool: dict[str, Any] = {
        "quantizer": "torchao quantize_(Int8DynamicActivationIntxWeightConfig(int4, "
                     "PerGroup)), lowered with XnnpackPartitioner",
        "version": version("torchao"), "executorch": version("executorch"),
        "group_size": group, "algorithm": "round to nearest",
        "weights": f"int4 symmetric, groups of {group} input features", "activations": "int8, quantized on the fly",
        "delegation": delegation, "weight_layers": rows, "layer_counts": layers.summary(rows)}
    left = layers.left_in_float(rows)
    portable = delegation["portable"]
    assert isinstance(portable, dict)
    left += [{"layer": op, "op": op, "reason": f"not delegated to XNNPACK ({n} node(s) on "
              "the portable kernels)"} for op, n in portable.items()]
    return Compressed(job.path, [job.path], "int4", tool, left)
