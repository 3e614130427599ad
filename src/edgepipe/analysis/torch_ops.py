"""What torch modules and functions are, for the graph: aliasing ops and per-module MACs.

Shared by the torch.fx and torch.export builders. Imports torch only inside functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

from edgepipe.analysis.graph import numel
from edgepipe.analysis.macs import attention_macs, conv_macs, conv_transpose_macs

Shape = tuple[int, ...]

# Functions, methods and ATen ops whose output is a view of their first argument.
VIEW_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze",
    "alias", "detach", "identity", "view_as", "reshape_as", "lift_fresh_copy",
})
# Ops that are the identity at inference (eval mode).
# Python's augmented assignment on tensors (``x += y`` traced as ``operator.iadd``).
INPLACE_OPERATORS = frozenset({"iadd", "isub", "imul", "itruediv"})
EVAL_IDENTITY_OPS = frozenset({"dropout", "alpha_dropout", "feature_alpha_dropout",
                               "dropout1d", "dropout2d", "dropout3d"})


def callable_name(target: Any) -> str:
    """``conv2d`` for ``F.conv2d``, ``torch.ops.aten.conv2d.default`` or ``"conv2d"``."""
    if isinstance(target, str):
        return target
    name = getattr(target, "_opname", None) or getattr(target, "__name__", None)
    return str(name if name is not None else target)


def function_aliases(name: str, kwargs: dict[str, Any], args: tuple[Any, ...]) -> bool:
    """Whether a call to function/method/ATen op ``name`` returns a view of its first input.

    In-place ops (``relu_``, ``add_``, ``F.relu(x, inplace=True)``) write into their
    first input, so they alias it as well.
    """
    if name in VIEW_OPS or name in INPLACE_OPERATORS:
        return True
    if name.endswith("_") and not name.startswith("_"):
        return True
    if kwargs.get("inplace") is True:
        return True
    if name in EVAL_IDENTITY_OPS:
        training = kwargs.get("training", kwargs.get("train"))
        if training is None and len(args) > 2 and isinstance(args[2], bool):
            training = args[2]
        return training is False
    return False


def module_aliases(module: Any) -> bool:
    """Whether a leaf module's output is a view of (or written into) its input."""
    from torch import nn

    if isinstance(module, (nn.Flatten, nn.Unflatten, nn.Identity)):
        return True
    if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                           nn.AlphaDropout, nn.FeatureAlphaDropout)):
        return not module.training or module.inplace
    return getattr(module, "inplace", False) is True


def module_macs(module: Any, inputs: list[Shape | None], outputs: list[Shape]) -> int:
    """MACs of a leaf torch module (see :mod:`edgepipe.analysis.macs` for what counts)."""
    from torch import nn

    if not outputs:
        return 0
    first_in = inputs[0] if inputs else None
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return conv_transpose_macs(first_in, tuple(module.weight.shape)) if first_in else 0
    if isinstance(module, nn.modules.conv._ConvNd):
        return conv_macs(outputs[0], tuple(module.weight.shape))
    if isinstance(module, nn.Linear):
        return numel(outputs[0]) * module.in_features
    if isinstance(module, nn.Bilinear):
        return numel(outputs[0]) * module.in1_features * module.in2_features
    if isinstance(module, nn.MultiheadAttention) and first_in:
        key = inputs[1] if len(inputs) > 1 and inputs[1] else first_in
        return attention_macs(first_in, key, module.embed_dim, module.kdim, module.vdim,
                              module.batch_first)
    return 0


Leaf = tuple[Shape, str]


def flatten_value(value: Any) -> tuple[list[Leaf], list[tuple[int, int]]]:
    """Tensor leaves ``(shape, dtype)`` of a node's value, and each element's leaf range.

    ``value`` is FX ``tensor_meta`` (a TensorMetadata, or a tuple/list/dict of them) or an
    export ``val`` (a FakeTensor or a structure of them). Non-tensors have no leaves. The
    ranges (one per tuple/list element) let ``getitem`` find the leaves it picks.
    """
    if _is_tensor_like(value):
        return [(tuple(int(d) for d in value.shape), str(value.dtype).removeprefix("torch."))], []
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, (list, tuple)):
        return [], []
    leaves: list[Leaf] = []
    ranges = []
    for item in value:
        start = len(leaves)
        leaves.extend(flatten_value(item)[0])
        ranges.append((start, len(leaves)))
    return leaves, ranges


def _is_tensor_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, type)


def leaf_names(node_name: str, leaves: list[Leaf]) -> list[str]:
    """Tensor names for a node's leaves: the node name, or ``name.i`` for several."""
    if len(leaves) == 1:
        return [node_name]
    return [f"{node_name}.{i}" for i in range(len(leaves))]


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """Silence what tracing prints: torch.export's warnings, banners and partial graphs,
    ShapeProp's traceback. The summary says what happened; on stdout, a print would break
    ``--json``.
    """
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export",
                                              "torch.fx.experimental.symbolic_shapes",
                                              "torch._dynamo", "torch._subclasses")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        sink = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
