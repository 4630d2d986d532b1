"""Small matrix functions shared by the mapping methods."""
from __future__ import annotations

from ..backend import get_array_module


def _sym_power(C, power: float, reg: float):
    xp = get_array_module(C)
    d = C.shape[0]
    C = C + reg * xp.trace(C) / d * xp.eye(d, dtype=C.dtype)
    vals, vecs = xp.linalg.eigh(C)
    return (vecs * xp.maximum(vals, 1e-12) ** power) @ vecs.T


def inverse_sqrt(C, reg: float = 0.0):
    """``C^{-1/2}`` of a symmetric positive semi-definite matrix (``reg`` times the mean
    eigenvalue added to the diagonal first)."""
    return _sym_power(C, -0.5, reg)


def sqrt(C, reg: float = 0.0):
    """``C^{1/2}`` of a symmetric positive semi-definite matrix."""
    return _sym_power(C, 0.5, reg)
