"""Turn a float model into its binarized training form, calibrate it, and deploy it.

:func:`binarize_module` replaces every Conv1d / Conv2d / Linear (groups 1) but the first and
last by a :class:`~edgepipe.compress.binary.layers.BinaryBlock`, taking in the BatchNorm
that follows it (found by data flow on a sample, as a Sequential or as sibling attributes:
left outside, the exporter would fold it into the binary weight); the first and last (the
first layer to run, and every layer whose output is a model output) become Brevitas 8-bit
layers (the ``lowbit.brevitas`` machinery, BatchNorm folded) unless ``first_last_bits`` is
None. Layers that do not run at inference, or whose weight their parent reads directly,
stay float, with the reason.
:func:`calibrate` sets the starting point from calibration samples: activation ranges of the
8-bit layers, each sign's threshold (the channel means of its input) and the BatchNorm
statistics of the binary blocks (their float statistics no longer fit). :func:`deploy`
gives the plain model that is exported, and the tensors the packed file stores.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgepipe.compress.binary.config import BinaryConfig
from edgepipe.compress.binary.layers import (
    COMPUTE,
    BinaryBlock,
    plan_shortcut,
    to_deploy,
    weight_macs,
)
from edgepipe.compress.folding import fold_batchnorm
from edgepipe.compress.lowbit.brevitas import quant_layer, set_module
from edgepipe.compress.lowrank.layers import untouchable
from edgepipe.compress.outputs import flat_outputs
from edgepipe.errors import UnsupportedError

ACT_BITS = 8  # the 8-bit first and last layers quantize their input to 8 bits as well


def binarize_module(module: Any, config: BinaryConfig, sample: list[torch.Tensor]
                    ) -> tuple[Any, list[dict[str, Any]], list[dict[str, str]]]:
    """A binarized copy of ``module``; a record per compute layer; the layers left float.

    Layers are found by name, and what follows each one by data flow on ``sample`` (see
    :func:`trace_layers`): a layer that does not run at inference (an auxiliary training
    branch) or whose weight its parent reads directly (MultiheadAttention's ``out_proj``,
    the fused path of a transformer layer) is left float, with the reason.
    """
    student = copy.deepcopy(module).eval()
    flow = trace_layers(student, sample)
    shapes = flow.shapes
    names = [n for n, m in student.named_modules() if isinstance(m, COMPUTE)]
    left: list[dict[str, str]] = []
    usable = []
    for name in names:
        reason = untouchable(student, name) or (
            None if name in shapes else "does not run at inference on the sample inputs (a "
            "branch used in training only, such as an auxiliary classifier)")
        if reason:
            left.append({"layer": name, "op": type(student.get_submodule(name)).__name__,
                         "reason": reason})
        else:
            usable.append(name)
    ran = [n for n in shapes if n in usable]  # in the order they ran
    last = [n for n in ran if n in flow.outputs] or ran[-1:]
    edges = ([*ran[:1], *[n for n in last if n not in ran[:1]]]
             if ran and config.first_last_bits is not None else [])
    layers: list[dict[str, Any]] = []
    for name in sorted(usable, key=ran.index):
        layer = student.get_submodule(name)
        in_shape, out_shape = shapes[name]
        record = {"layer": name, "op": type(layer).__name__, "weights": layer.weight.numel(),
                  "macs": weight_macs(layer, out_shape),
                  "float_bytes": 4 * (layer.weight.numel() + layer.weight.shape[0])}
        if name in edges:
            layers.append({**record, "kind": f"int{config.first_last_bits}"})
        elif getattr(layer, "groups", 1) != 1:
            left.append({"layer": name, "op": type(layer).__name__, "reason": "grouped and "
                         "depthwise convolutions are not binarized (too few weights per output "
                         "to keep accuracy)"})
        else:
            binary_input = config.binary_activations and name != ran[0]
            shortcut, why = (plan_shortcut(in_shape, out_shape, isinstance(layer, nn.Linear))
                             if config.binary_activations else (None, "weights only"))
            norm = _take_norm(student, flow.norms.get(name))
            set_module(student, name, BinaryBlock(layer, norm, shortcut, binary_input))
            layers.append({**record, "kind": "binary", "binary_input": binary_input,
                           "batchnorm": norm is not None,
                           "shortcut": shortcut.describe() if shortcut else None,
                           **({"no_shortcut": why} if shortcut is None else {})})
    if not any(item["kind"] == "binary" for item in layers):
        raise UnsupportedError(
            f"The model has no layer to binarize: {len(names)} Conv1d / Conv2d / Linear "
            f"layer(s) ({', '.join(names) or 'none'}), and the first and last stay at "
            f"{config.first_last_bits} bits"
            + "".join(f"; {item['layer']} left as float ({item['reason']})" for item in left)
            + ".",
            hint="binarization needs a convolution or Linear layer between the first and last "
            "(give --first-last-bits none to binarize those too), or use --method w4a8 / int8.",
            reference="nothing-to-binarize")
    fold_batchnorm(student)
    for name in edges:
        layer = student.get_submodule(name)
        norm = flow.norms.get(name)
        if (isinstance(layer, (nn.Conv1d, nn.Conv2d)) and norm is not None
                and isinstance(student.get_submodule(norm), (nn.BatchNorm1d, nn.BatchNorm2d))):
            layer = fuse_conv_bn_eval(layer, _take_norm(student, norm))
        set_module(student, name, quant_layer(layer, config.first_last_bits, ACT_BITS))
    return student, layers, left


def calibrate(student: Any, arrays: list[torch.Tensor]) -> None:
    """One pass over the calibration samples: 8-bit activation ranges, sign thresholds and
    the binary blocks' BatchNorm statistics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brevitas.graph.calibrate import calibration_mode
    blocks = [m for m in student.modules() if isinstance(m, BinaryBlock)]
    norms = [b.norm for b in blocks if isinstance(b.norm, nn.modules.batchnorm._BatchNorm)]
    student.eval()
    for block in blocks:
        block.calibrating = True
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the pass
        norm.train()
    try:
        with torch.no_grad(), warnings.catch_warnings(), calibration_mode(student):
            warnings.simplefilter("ignore")
            student(*arrays)
    finally:
        for block in blocks:
            block.calibrating = False
        for norm in norms:
            norm.momentum = 0.1
        student.eval()


def deploy(student: Any, sample: list[torch.Tensor]) -> tuple[Any, list[dict[str, Any]]]:
    """The plain model to export (Brevitas 8-bit layers kept) and the packed tensors per layer.

    Each entry: ``{"layer", "kind": "binary" | "int8", "tensors": {name: ndarray}}``.
    ``sample`` runs once through the model first: Brevitas reads an input quantizer's scale
    from its last eval-mode call.
    """
    model = copy.deepcopy(student).eval()
    with torch.no_grad():
        model(*sample)
    packed: list[dict[str, Any]] = []
    blocks = [name + "." for name, m in model.named_modules() if isinstance(m, BinaryBlock)]
    for name, module in list(model.named_modules()):
        if any(name.startswith(block) for block in blocks):
            continue  # the Brevitas layer inside a binary block
        if isinstance(module, BinaryBlock):
            block, tensors = to_deploy(module)
            set_module(model, name, block)
            packed.append({"layer": name, "kind": "binary",
                           "tensors": {k: v.numpy() for k, v in tensors.items()}})
        elif hasattr(module, "quant_weight") and isinstance(module, COMPUTE):
            packed.append({"layer": name, "kind": "int8", "tensors": _int8_tensors(module)})
    return model, packed


def _int8_tensors(layer: Any) -> dict[str, Any]:
    with torch.no_grad():
        quant = layer.quant_weight()
        tensors = {"weight": quant.int().to(torch.int8).numpy(),
                   "scale": quant.scale.reshape(-1).float().numpy()}
        if layer.bias is not None:
            tensors["bias"] = layer.bias.detach().float().numpy()
        tensors["input_scale"] = layer.input_quant.scale().reshape(-1).float().numpy()
    return tensors


def _take_norm(root: Any, name: str | None) -> nn.Module | None:
    """The BatchNorm at ``name`` (replaced there by Identity), or None."""
    if name is None:
        return None
    norm = root.get_submodule(name)
    set_module(root, name, nn.Identity())
    return norm


@dataclass
class LayerFlow:
    """What one inference pass shows of the compute layers (see :func:`trace_layers`).

    ``shapes``: input and output shape per layer that ran, in the order they ran;
    ``outputs``: the layers whose output is itself one of the model's outputs; ``norms``:
    per layer, the BatchNorm whose only input is that layer's output (where the layer's
    output goes to that BatchNorm alone, as far as one pass shows).
    """

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    norms: dict[str, str] = field(default_factory=dict)


def trace_layers(model: Any, sample: list[torch.Tensor]) -> LayerFlow:
    """Run ``sample`` through ``model`` (eval mode) once with hooks: see :class:`LayerFlow`.

    The data flow is read from tensor identity: a BatchNorm follows a layer when its input
    is the very tensor the layer returned, and only that BatchNorm and no other module
    took it.
    """
    flow = LayerFlow()
    produced: dict[int, str] = {}
    keep: list[torch.Tensor] = []  # hold the tensors so their ids stay unique
    takers: dict[int, list[str]] = {}
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d)

    def compute_hook(name: str) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:
            if name not in flow.shapes and isinstance(out, torch.Tensor):
                flow.shapes[name] = (tuple(args[0].shape), tuple(out.shape))
                produced[id(out)] = name
                keep.append(out)
        return hook

    def taker_hook(name: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            for arg in args:
                if isinstance(arg, torch.Tensor) and id(arg) in produced:
                    takers.setdefault(id(arg), []).append(name)
        return hook

    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, COMPUTE):
            hooks.append(module.register_forward_hook(compute_hook(name)))
        if name and not list(module.children()):  # leaves: who reads a layer's output
            hooks.append(module.register_forward_pre_hook(taker_hook(name)))
    try:
        with torch.no_grad():
            result = model(*sample)
    finally:
        for hook in hooks:
            hook.remove()
    for tensor in flat_outputs(result):
        if id(tensor) in produced:
            flow.outputs.add(produced[id(tensor)])
    for key, names in takers.items():
        if len(names) == 1 and isinstance(model.get_submodule(names[0]), norm_types) \
                and produced[key] not in flow.outputs:
            flow.norms[produced[key]] = names[0]
    return flow
