"""Multiply-accumulate counts of the ops that dominate inference cost.

Counted (one MAC = one multiply and one add, the usual unit for edge accelerators):

- convolution (1-D/2-D/3-D, grouped and depthwise): ``numel(output) * Cin/groups * prod(kernel)``
- transposed convolution: ``numel(input) * Cout/groups * prod(kernel)``
- fully connected (``Linear``, ``Gemm``), ``MatMul`` / ``bmm`` / ``addmm`` (batched too):
  ``numel(output) * K``, K being the reduced dimension
- ``nn.MultiheadAttention`` (torch only, a leaf module): its four projections and the two
  attention products

Not counted: biases, normalisation, activations, pooling, element-wise arithmetic,
softmax, embeddings (a lookup), recurrent layers and einsum. For ResNet-style networks
these add under 1 % to the convolutions and fully connected layers.

The formulas take shapes only, so the torch and ONNX graphs of one model give one count.
"""

from __future__ import annotations

from edgepipe.analysis.graph import numel

Shape = tuple[int, ...]


def conv_macs(output: Shape, weight: Shape) -> int:
    """A convolution: weight is ``[Cout, Cin/groups, *kernel]``."""
    return numel(output) * numel(weight[1:])


def conv_transpose_macs(input_: Shape, weight: Shape) -> int:
    """A transposed convolution: weight is ``[Cin, Cout/groups, *kernel]``.

    Each input element is multiplied into ``Cout/groups * prod(kernel)`` outputs.
    """
    return numel(input_) * numel(weight[1:])


def matmul_macs(a: Shape, output: Shape) -> int:
    """``A @ B`` with broadcasting batch dimensions: K is the last dimension of A."""
    if not a:
        return 0
    return numel(output) * a[-1]


def gemm_macs(a: Shape, output: Shape, trans_a: bool) -> int:
    """ONNX Gemm: ``A' @ B'`` where ``A'`` is A transposed when ``transA``."""
    if len(a) != 2:
        return 0
    return numel(output) * (a[0] if trans_a else a[1])


def attention_macs(query: Shape, key: Shape, embed_dim: int, kdim: int, vdim: int,
                   batch_first: bool) -> int:
    """``nn.MultiheadAttention``: Q/K/V/out projections plus ``Q @ K^T`` and ``A @ V``."""
    if len(query) == 2:  # unbatched (L, E)
        target, source, batch = query[0], key[0], 1
    elif batch_first:
        batch, target, source = query[0], query[1], key[1]
    else:
        target, batch, source = query[0], query[1], key[0]
    projections = batch * (target * embed_dim * embed_dim + source * embed_dim * (kdim + vdim)
                           + target * embed_dim * embed_dim)
    products = 2 * batch * target * source * embed_dim
    return projections + products


def function_macs(name: str, args: list[Shape | None], output: Shape | None,
                  flags: dict[str, object]) -> int:
    """MACs of a torch function or ATen op by name (``conv2d``, ``linear``, ``addmm``...).

    ``args`` holds the shape of each tensor argument in order (None for a non-tensor),
    ``flags`` the other arguments that change the count (``transposed``).
    """
    if output is None:
        return 0
    first = args[0] if args else None
    second = args[1] if len(args) > 1 else None
    if name in ("conv1d", "conv2d", "conv3d") and second:
        return conv_macs(output, second)
    if name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d") and first and second:
        return conv_transpose_macs(first, second)
    if name in ("convolution", "_convolution") and first and second:
        if flags.get("transposed"):
            return conv_transpose_macs(first, second)
        return conv_macs(output, second)
    if name == "linear" and second:
        return numel(output) * second[-1]
    if name in ("matmul", "mm", "bmm", "__matmul__") and first:
        return matmul_macs(first, output)
    if name in ("addmm", "baddbmm") and second:
        return matmul_macs(second, output)
    return 0
