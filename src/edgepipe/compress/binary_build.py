"""Turn a float model into its binarized training form, calibrate it, and deploy it.

:func:`binarize_module` replaces every Conv1d / Conv2d / Linear (groups 1) but the first and
last by a :class:`~edgepipe.compress.binary_layers.BinaryBlock`, taking in the BatchNorm
that follows it in a Sequential; the first and last become Brevitas 8-bit layers (the
``brevitas_quant`` machinery, BatchNorm folded) unless ``first_last_bits`` is None.
:func:`calibrate` sets the starting point from calibration samples: activation ranges of the
8-bit layers, each sign's threshold (the channel means of its input) and the BatchNorm
statistics of the binary blocks (their float statistics no longer fit). :func:`deploy`
gives the plain model that is exported, and the tensors the packed file stores.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from edgepipe.compress.binary_layers import (
    COMPUTE,
    BinaryBlock,
    plan_shortcut,
    to_deploy,
    weight_macs,
)
from edgepipe.compress.brevitas_quant import quant_layer, set_module
from edgepipe.compress.config import BinaryConfig
from edgepipe.compress.folding import fold_batchnorm
from edgepipe.errors import UnsupportedError

ACT_BITS = 8  # the 8-bit first and last layers quantize their input to 8 bits as well


def binarize_module(module: Any, config: BinaryConfig, sample: list[torch.Tensor]
                    ) -> tuple[Any, list[dict[str, Any]], list[dict[str, str]]]:
    """A binarized copy of ``module``; a record per compute layer; the layers left float."""
    student = copy.deepcopy(module).eval()
    shapes = _shapes(student, sample)
    names = [n for n, m in student.named_modules() if isinstance(m, COMPUTE)]
    edges = [names[0], names[-1]] if names and config.first_last_bits is not None else []
    layers: list[dict[str, Any]] = []
    left: list[dict[str, str]] = []
    for name in names:
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
            binary_input = config.binary_activations and name != names[0]
            shortcut, why = (plan_shortcut(in_shape, out_shape, isinstance(layer, nn.Linear))
                             if config.binary_activations else (None, "weights only"))
            norm = _take_norm(student, name)
            set_module(student, name, BinaryBlock(layer, norm, shortcut, binary_input))
            layers.append({**record, "kind": "binary", "binary_input": binary_input,
                           "batchnorm": norm is not None,
                           "shortcut": shortcut.describe() if shortcut else None,
                           **({"no_shortcut": why} if shortcut is None else {})})
    if not any(item["kind"] == "binary" for item in layers):
        raise UnsupportedError(
            f"The model has no layer to binarize: {len(names)} Conv1d / Conv2d / Linear "
            f"layer(s) ({', '.join(names) or 'none'}), and the first and last stay at "
            f"{config.first_last_bits} bits.",
            hint="binarization needs a convolution or Linear layer between the first and last "
            "(give --first-last-bits none to binarize those too), or use --method w4a8 / int8.",
            reference="nothing-to-binarize")
    fold_batchnorm(student)
    for name in edges:
        set_module(student, name, quant_layer(student.get_submodule(name),
                                              config.first_last_bits, ACT_BITS))
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


def _take_norm(root: Any, name: str) -> nn.Module | None:
    """The BatchNorm right after ``name`` in its Sequential (replaced there by Identity)."""
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    if not isinstance(parent, nn.Sequential):
        return None
    keys = list(parent._modules)
    index = keys.index(child)
    if index + 1 < len(keys) and isinstance(parent._modules[keys[index + 1]],
                                            (nn.BatchNorm1d, nn.BatchNorm2d)):
        norm = parent._modules[keys[index + 1]]
        parent._modules[keys[index + 1]] = nn.Identity()
        return norm
    return None


def _shapes(model: Any, sample: list[torch.Tensor]) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Input and output shape of every compute layer on ``sample``."""
    shapes: dict[str, Any] = {}
    hooks = [m.register_forward_hook(
        lambda mod, args, out, name=name: shapes.__setitem__(
            name, (tuple(args[0].shape), tuple(out.shape))))
        for name, m in model.named_modules() if isinstance(m, COMPUTE)]
    try:
        with torch.no_grad():
            model(*sample)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes
