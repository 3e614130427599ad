"""The algebra of low-rank factorization: truncated SVD (plain and activation-aware),
Tucker-2 for convolutions, and the rank that keeps a share of the energy.

All in torch float64 for the decompositions (float32 results). A weight W (out x in) of
rank r becomes two layers: ``first`` (r x in) then ``second`` (out x r), W ~ second @ first.

Activation-aware SVD (as in ASVD / SVD-LLM, and LiteASR's use of calibration activations):
with C = E[x x^T] the second moment of the layer's inputs on calibration data and
C = L L^T its Cholesky factor, ||W x - W' x||^2 averaged over those inputs equals
||(W - W') L||_F^2, so the best rank-r W' is the truncated SVD of W L, mapped back by
L^-1. Plain SVD minimises the weight error ||W - W'||_F instead, which is what matters
only when every input direction is equally likely.

Tucker-2 (Kim et al., 2016): a kxk convolution W (O x I x k x k) is approximated by
U_O (core x_1 U_I): a 1x1 convolution I -> r_in (U_I^T), the kxk core r_in -> r_out with the
original stride, padding and dilation, and a 1x1 convolution r_out -> O (U_O) with the
bias. Factors by HOSVD (leading singular vectors of the mode unfoldings), refined by a few
HOOI (alternating) iterations.
"""

from __future__ import annotations

import torch

HOOI_ITERATIONS = 3
CHOLESKY_JITTER = 1e-6  # relative to the mean diagonal of the second moment


def energy_rank(singular_values: torch.Tensor, energy: float) -> int:
    """Smallest rank whose singular values hold ``energy`` of the total squared sum."""
    squared = singular_values.double() ** 2
    total = float(squared.sum())
    if total <= 0:
        return 1
    kept = torch.cumsum(squared, 0) / total
    return int(torch.searchsorted(kept, torch.tensor(energy - 1e-12, dtype=kept.dtype))) + 1


def whitening(second_moment: torch.Tensor) -> torch.Tensor:
    """L with L L^T = C (+ a small jitter so a rank-deficient C still factors)."""
    c = second_moment.double()
    jitter = CHOLESKY_JITTER * float(torch.diagonal(c).mean().clamp_min(1e-12))
    eye = torch.eye(c.shape[0], dtype=c.dtype)
    for scale in (1, 10, 100, 1000):
        factor, info = torch.linalg.cholesky_ex(c + scale * jitter * eye)
        if int(info) == 0:
            return factor
    return torch.diag(torch.sqrt(torch.diagonal(c).clamp_min(jitter)))


def svd_spectrum(weight: torch.Tensor, second_moment: torch.Tensor | None = None) -> torch.Tensor:
    """Singular values of W (plain) or of W L (activation-aware): what ranks are chosen on."""
    w = weight.double().reshape(weight.shape[0], -1)
    if second_moment is not None:
        w = w @ whitening(second_moment)
    return torch.linalg.svdvals(w)


def svd_factors(weight: torch.Tensor, rank: int,
                second_moment: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(first r x in, second out x r) with second @ first the best rank-r W' (see module)."""
    w = weight.double().reshape(weight.shape[0], -1)
    factor = whitening(second_moment) if second_moment is not None else None
    target = w @ factor if factor is not None else w
    u, s, vh = torch.linalg.svd(target, full_matrices=False)
    root = torch.sqrt(s[:rank])
    first = root[:, None] * vh[:rank]
    if factor is not None:  # first = sqrt(S) V^T L^-1: solve L^T first'^T = first^T
        first = torch.linalg.solve_triangular(factor.T, first.T, upper=True).T
    second = u[:, :rank] * root[None, :]
    return first.float(), second.float()


def mode_spectra(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values of the output-channel and input-channel unfoldings of a conv weight."""
    w = weight.double()
    out_unfold = w.reshape(w.shape[0], -1)
    in_unfold = w.transpose(0, 1).reshape(w.shape[1], -1)
    return torch.linalg.svdvals(out_unfold), torch.linalg.svdvals(in_unfold)


def tucker2(weight: torch.Tensor, rank_out: int, rank_in: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first r_in x I x 1 x 1, core r_out x r_in x k x k, last O x r_out x 1 x 1)."""
    w = weight.double()
    out_c, in_c = w.shape[:2]

    def leading(matrix: torch.Tensor, rank: int) -> torch.Tensor:
        return torch.linalg.svd(matrix, full_matrices=False)[0][:, :rank]

    u_in = leading(w.transpose(0, 1).reshape(in_c, -1), rank_in)
    u_out = leading(w.reshape(out_c, -1), rank_out)
    for _ in range(HOOI_ITERATIONS):
        projected = torch.einsum("oikl,ir->orkl", w, u_in)
        u_out = leading(projected.reshape(out_c, -1), rank_out)
        projected = torch.einsum("oikl,os->sikl", w, u_out)
        u_in = leading(projected.transpose(0, 1).reshape(in_c, -1), rank_in)
    core = torch.einsum("oikl,os,ir->srkl", w, u_out, u_in)
    first = u_in.T.reshape(rank_in, in_c, 1, 1)
    last = u_out.reshape(out_c, rank_out, 1, 1)
    return first.float(), core.float(), last.float()


def tucker2_error(weight: torch.Tensor, rank_out: int, rank_in: int) -> float:
    """Relative Frobenius error of the Tucker-2 reconstruction (for reports and tests)."""
    first, core, last = tucker2(weight, rank_out, rank_in)
    rebuilt = torch.einsum("srkl,os,ri->oikl", core.double(), last.double()[:, :, 0, 0],
                           first.double()[:, :, 0, 0])
    return float(torch.linalg.norm(rebuilt - weight.double()) / torch.linalg.norm(weight.double()))
