"""Which layers low-rank factorization can touch, what they cost, and their factorized form.

One pass over the calibration data (forward hooks) records, for every Linear and Conv2d,
the input shape of one sample, the spatial positions it runs at (MACs), and, for Linear and
1x1 convolutions, the second moment of its inputs (for activation-aware SVD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgepipe.compress.lowrank.decompose import mode_spectra, svd_factors, svd_spectrum, tucker2

CALIB_BATCH = 64


@dataclass
class Candidate:
    """A layer that can be factorized, with what is known of it from calibration."""

    name: str
    module: nn.Module
    kind: str  # "svd" (Linear, 1x1 conv) or "tucker2" (kxk conv)
    input_shape: tuple[int, ...]  # one sample, batch 1
    positions_in: int  # spatial positions of the input (1 for Linear on a vector)
    positions_out: int
    second_moment: torch.Tensor | None = None
    spectra: tuple[torch.Tensor, ...] = ()

    @property
    def op(self) -> str:
        return type(self.module).__name__

    @property
    def full_ranks(self) -> tuple[int, ...]:
        weight = self.module.weight
        if self.kind == "tucker2":
            return (int(weight.shape[0]), int(weight.shape[1]))
        return (min(int(weight.shape[0]), int(weight[0].numel())),)

    def cost(self, ranks: tuple[int, ...] | None) -> tuple[int, int]:
        """(weights, MACs) of the layer, whole (ranks None) or factorized at ``ranks``."""
        weight = self.module.weight
        out_c, in_c = int(weight.shape[0]), int(weight[0].numel())
        if ranks is None:
            return out_c * in_c, out_c * in_c * self.positions_out
        if self.kind == "svd":
            (rank,) = ranks
            return rank * (in_c + out_c), rank * (in_c + out_c) * self.positions_out
        rank_out, rank_in = ranks
        channels, area = int(weight.shape[1]), int(weight[0, 0].numel())
        params = channels * rank_in + rank_in * rank_out * area + rank_out * out_c
        macs = (channels * rank_in * self.positions_in
                + (rank_in * rank_out * area + rank_out * out_c) * self.positions_out)
        return params, macs


def find_candidates(model: nn.Module, arrays: list[torch.Tensor], activation_aware: bool
                    ) -> tuple[list[Candidate], list[dict[str, str]], dict[str, int]]:
    """(candidates, layers left whole with the reason, model totals {params, macs})."""
    seen: dict[str, dict[str, Any]] = {}
    hooks = []
    for name, layer in model.named_modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            hooks.append(layer.register_forward_hook(_recorder(name, layer, seen,
                                                               activation_aware)))
    try:
        with torch.no_grad():
            for start in range(0, len(arrays[0]), CALIB_BATCH):
                model(*[a[start:start + CALIB_BATCH] for a in arrays])
    finally:
        for hook in hooks:
            hook.remove()
    candidates, whole = [], []
    macs = 0
    for name, layer in model.named_modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        fixed = untouchable(model, name)
        if name not in seen:
            whole.append({"layer": name, "op": type(layer).__name__, "decision": "kept whole",
                          "left": True, "reason": fixed or "does not run at inference on the "
                          "calibration samples (a branch used in training only, such as an "
                          "auxiliary classifier)"})
            continue
        info = seen[name]
        candidate = Candidate(name, layer, info["kind"], info["shape"], info["p_in"],
                              info["p_out"])
        macs += candidate.cost(None)[1]
        reason = _why_whole(layer)
        if fixed:
            whole.append({"layer": name, "op": type(layer).__name__, "decision": "kept whole",
                          "left": True, "reason": fixed})
            continue
        if reason:
            whole.append({"layer": name, "op": type(layer).__name__, "decision": "kept whole",
                          "reason": reason})
            continue
        if info.get("moment") is not None:
            candidate.second_moment = info["moment"] / info["count"]
        candidate.spectra = (mode_spectra(layer.weight.detach()) if candidate.kind == "tucker2"
                             else (svd_spectrum(layer.weight.detach(), candidate.second_moment),))
        candidates.append(candidate)
    totals = {"params": sum(p.numel() for p in model.parameters()), "macs": macs}
    return candidates, whole, totals


def count_macs(model: nn.Module, arrays: list[torch.Tensor]) -> int:
    """MACs of the Linear and Conv2d layers for one forward pass over ``arrays``."""
    total = 0

    def hook(layer: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        weight = layer.weight
        per_position = int(weight.numel())
        positions = int(output.numel() // output.shape[0] // weight.shape[0])
        total += per_position * positions

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            model(*arrays)
    finally:
        for handle in hooks:
            handle.remove()
    return total


def factorized_module(candidate: Candidate, ranks: tuple[int, ...]) -> nn.Module:
    """The layers that replace ``candidate`` at ``ranks`` (same input and output)."""
    layer = candidate.module
    weight = layer.weight.detach()
    bias = None if layer.bias is None else layer.bias.detach().clone()
    if candidate.kind == "svd":
        first_w, second_w = svd_factors(weight, ranks[0], candidate.second_moment)
        if isinstance(layer, nn.Linear):
            first = nn.Linear(layer.in_features, ranks[0], bias=False)
            second = nn.Linear(ranks[0], layer.out_features, bias=bias is not None)
            first.weight.data.copy_(first_w)
            second.weight.data.copy_(second_w)
        else:  # 1x1 convolution: the stride goes on the first, padding too (zeros map to 0)
            first = nn.Conv2d(layer.in_channels, ranks[0], 1, layer.stride, layer.padding,
                              bias=False, padding_mode=layer.padding_mode)
            second = nn.Conv2d(ranks[0], layer.out_channels, 1, bias=bias is not None)
            first.weight.data.copy_(first_w.reshape(ranks[0], -1, 1, 1))
            second.weight.data.copy_(second_w.reshape(layer.out_channels, ranks[0], 1, 1))
        if bias is not None:
            second.bias.data.copy_(bias)
        return nn.Sequential(first, second)
    rank_out, rank_in = ranks
    first_w, core_w, last_w = tucker2(weight, rank_out, rank_in)
    first = nn.Conv2d(layer.in_channels, rank_in, 1, bias=False)
    core = nn.Conv2d(rank_in, rank_out, layer.kernel_size, layer.stride, layer.padding,
                     layer.dilation, bias=False, padding_mode=layer.padding_mode)
    last = nn.Conv2d(rank_out, layer.out_channels, 1, bias=bias is not None)
    first.weight.data.copy_(first_w)
    core.weight.data.copy_(core_w)
    last.weight.data.copy_(last_w)
    if bias is not None:
        last.bias.data.copy_(bias)
    return nn.Sequential(first, core, last)


def _why_whole(layer: nn.Module) -> str | None:
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        kind = "depthwise" if layer.groups == layer.in_channels else "grouped"
        return (f"{kind} convolution (groups={layer.groups}): each filter sees few channels, "
                "so there is no channel rank to cut")
    weight = layer.weight
    if min(int(weight.shape[0]), int(weight[0].numel())) < 2:
        return "rank 1 already"
    return None


def _recorder(name: str, layer: nn.Module, seen: dict[str, dict[str, Any]],
              activation_aware: bool) -> Any:
    is_svd = isinstance(layer, nn.Linear) or tuple(layer.kernel_size) == (1, 1)

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        x = inputs[0]
        entry = seen.setdefault(name, {
            "kind": "svd" if is_svd else "tucker2", "shape": (1, *x.shape[1:]),
            "p_in": int(x[0].numel() // (x.shape[-1] if isinstance(module, nn.Linear)
                                         else x.shape[1])),
            "p_out": int(output[0].numel() // module.weight.shape[0]),
            "moment": None, "count": 0})
        if activation_aware and is_svd:
            rows = (x.reshape(-1, x.shape[-1]) if isinstance(module, nn.Linear)
                    else x.transpose(1, -1).reshape(-1, x.shape[1])).double()
            moment = rows.T @ rows
            entry["moment"] = moment if entry["moment"] is None else entry["moment"] + moment
            entry["count"] += rows.shape[0]

    return hook


def untouchable(root: Any, name: str) -> str | None:
    """Why the layer ``name`` cannot be replaced by another module, or None.

    MultiheadAttention never calls its ``out_proj``: it reads ``out_proj.weight`` and passes
    it to the attention function. Transformer encoder / decoder layers read their Linear
    layers' weights directly in their fused inference path.
    """
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    if isinstance(parent, nn.MultiheadAttention):
        return "MultiheadAttention reads its weight directly"
    if isinstance(parent, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return (f"{type(parent).__name__}'s fused inference path reads its weight directly")
    return None
