"""Canonical correlation analysis (Hotelling, 1936; Faruqui & Dyer, 2014 for word vectors)."""
from __future__ import annotations

from ..backend import get_array_module
from .linalg import inverse_sqrt


def cca(X, Z, reg: float = 1e-3):
    """Projections ``(A, B)`` such that ``X A`` and ``Z B`` are maximally correlated, dimension
    by dimension, into ``min(d_src, d_tgt)`` shared dimensions.

    Computed as whitening followed by the SVD of the whitened cross-covariance; ``reg`` is
    added to each covariance's diagonal (relative to its mean variance) to keep it invertible.
    """
    xp = get_array_module(X, Z)
    X = X.astype(xp.float64)
    Z = Z.astype(xp.float64)
    X = X - X.mean(axis=0)
    Z = Z - Z.mean(axis=0)
    n = X.shape[0]
    Wx = inverse_sqrt(X.T @ X / n, reg)
    Wz = inverse_sqrt(Z.T @ Z / n, reg)
    U, _, Vt = xp.linalg.svd(Wx @ (X.T @ Z / n) @ Wz, full_matrices=False)
    return (Wx @ U).astype(xp.float32), (Wz @ Vt.T).astype(xp.float32)

