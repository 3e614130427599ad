"""MAC formulas on shapes, checked against counts written out by hand."""

from __future__ import annotations

from edgepipe.analysis.macs import (
    attention_macs,
    conv_macs,
    conv_transpose_macs,
    function_macs,
    gemm_macs,
    matmul_macs,
)


def test_conv_counts_input_channels_per_group_and_kernel() -> None:
    # 3->16 channels, 3x3 kernel, 8x8 output: every output element reads 3*3*3 inputs.
    assert conv_macs((1, 16, 8, 8), (16, 3, 3, 3)) == 16 * 8 * 8 * 27
    # depthwise: groups = channels, so each output reads one channel's 3x3 window.
    assert conv_macs((1, 16, 8, 8), (16, 1, 3, 3)) == 16 * 8 * 8 * 9
    # 1-D convolution, batch 2
    assert conv_macs((2, 4, 10), (4, 2, 5)) == 2 * 4 * 10 * 2 * 5


def test_transposed_conv_counts_from_the_input() -> None:
    # 4 -> 2 channels, 2x2 kernel, stride 2, 8x8 input: each input element feeds 2*2*2 outputs.
    assert conv_transpose_macs((1, 4, 8, 8), (4, 2, 2, 2)) == 4 * 8 * 8 * 8


def test_matmul_gemm_and_batched() -> None:
    assert matmul_macs((5, 7), (5, 3)) == 5 * 3 * 7
    assert matmul_macs((4, 2, 5, 7), (4, 2, 5, 3)) == 4 * 2 * 5 * 3 * 7  # batched
    assert matmul_macs((7,), (3,)) == 3 * 7  # vector @ matrix
    assert gemm_macs((5, 7), (5, 3), trans_a=False) == 105
    assert gemm_macs((7, 5), (5, 3), trans_a=True) == 105


def test_torch_functions_by_name() -> None:
    assert function_macs("linear", [(2, 8), (4, 8), (4,)], (2, 4), {}) == 2 * 4 * 8
    assert function_macs("addmm", [(4,), (2, 8), (8, 4)], (2, 4), {}) == 2 * 4 * 8
    assert function_macs("bmm", [(3, 2, 8), (3, 8, 4)], (3, 2, 4), {}) == 3 * 2 * 4 * 8
    transposed = function_macs("convolution", [(1, 4, 8, 8), (4, 2, 2, 2)], (1, 2, 16, 16),
                               {"transposed": True})
    assert transposed == conv_transpose_macs((1, 4, 8, 8), (4, 2, 2, 2))
    assert function_macs("relu", [(1, 8)], (1, 8), {}) == 0


def test_attention_projections_and_products() -> None:
    batch, length, dim = 2, 5, 16
    projections = 4 * batch * length * dim * dim  # q, k, v and out
    products = 2 * batch * length * length * dim  # Q @ K^T and A @ V
    macs = attention_macs((batch, length, dim), (batch, length, dim), dim, dim, dim, True)
    assert macs == projections + products
