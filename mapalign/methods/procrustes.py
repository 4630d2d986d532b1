"""Orthogonal Procrustes (Schönemann, 1966; Xing et al., 2015 for word vectors)."""
from __future__ import annotations

from ..backend import get_array_module


def procrustes(X, Z):
    """``W`` minimising ``||X W - Z||_F`` over matrices with orthonormal columns (or rows, when
    the source has fewer dimensions): ``W = U V^T`` from the thin SVD ``X^T Z = U S V^T``.
    ``X`` and ``Z`` hold matched rows; with equal dimensions ``W`` is orthogonal."""
    xp = get_array_module(X, Z)
    return polar(X.T.astype(xp.float64) @ Z.astype(xp.float64))


def solve(X, Z):
    """``(W_src, W_tgt)``: Procrustes on the source side, the identity on the target side."""
    xp = get_array_module(X, Z)
    return procrustes(X, Z), xp.eye(Z.shape[1], dtype=xp.float32)


def polar(M):
    """The orthogonal polar factor ``U V^T`` of ``M = U S V^T`` (float32): the Procrustes
    solution given the cross-covariance ``M = X^T Z`` alone."""
    xp = get_array_module(M)
    U, _, Vt = xp.linalg.svd(M, full_matrices=False)
    return (U @ Vt).astype(xp.float32)
