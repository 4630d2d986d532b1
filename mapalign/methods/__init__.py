"""Supervised mapping methods, one module each. Every method turns matched dictionary rows
``(X, Z)`` into a pair ``(W_src, W_tgt)``: the shared space holds ``X @ W_src`` and
``Z @ W_tgt``. All of them accept unequal source and target dimensions.

* ``procrustes`` — orthogonal (semi-orthogonal with unequal dimensions) Procrustes;
* ``cca`` — canonical correlation analysis;
* ``multistep`` — the multi-step framework of Artetxe et al. (2018), its recommended preset;
* ``rcsls`` — the relaxed CSLS loss of Joulin et al. (2018), from Procrustes.
"""
from __future__ import annotations

from ..backend import get_array_module
from .cca import cca
from .multistep import PRESET as MULTISTEP, MultiStep
from .procrustes import procrustes, solve as procrustes_solve
from .rcsls import RCSLS

METHODS = ("procrustes", "cca", "multistep", "rcsls")


def make_solver(method: str, X=None, Z=None, multistep: MultiStep = MULTISTEP,
                rcsls: RCSLS = RCSLS()):
    """A function ``(X_rows, Z_rows) -> (W_src, W_tgt)`` for ``method``. ``X``, ``Z`` (the whole
    normalised vocabularies) are needed by ``rcsls``, which searches neighbours in them."""
    if method == "procrustes":
        return procrustes_solve
    if method == "cca":
        return cca
    if method == "multistep":
        return multistep
    if method == "rcsls":
        if X is None or Z is None:
            raise ValueError("rcsls needs the full vocabularies")

        def solve(Xd, Zd):
            xp = get_array_module(Xd, Zd)
            return rcsls.fit(X, Z, Xd, Zd)[0], xp.eye(Z.shape[1], dtype=xp.float32)
        return solve
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def method_settings(method: str, multistep: MultiStep = MULTISTEP, rcsls: RCSLS = RCSLS()):
    """The named settings of a method, for the report."""
    if method == "multistep":
        return multistep.settings()
    if method == "rcsls":
        return rcsls.settings()
    return {}


__all__ = ["METHODS", "MultiStep", "RCSLS", "cca", "make_solver", "method_settings",
           "procrustes"]
