"""Normalisation chains such as ``unit,center,unit``: unit length rows, mean centering."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from .backend import get_array_module

STEPS = ("unit", "center", "none")


def parse_chain(spec) -> List[str]:
    """``"unit,center,unit"`` -> ``["unit", "center", "unit"]``; unknown steps are an error."""
    steps = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    steps = [s for s in steps if s and s != "none"]
    for s in steps:
        if s not in STEPS:
            raise ValueError(f"unknown normalisation step {s!r}; use a comma-separated chain "
                             f"of {', '.join(STEPS[:2])}")
    return steps


def unit_rows(X, inplace: bool = False):
    """Rows scaled to unit length (zero rows stay zero); ``inplace`` overwrites ``X``."""
    xp = get_array_module(X)
    norms = xp.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1
    if inplace:
        X /= norms
        return X
    return X / norms


def normalize(X, chain, inplace: bool = False) -> Tuple[object, list]:
    """Apply a chain to a matrix; returns the new matrix and the mean removed by each
    ``center`` step, so that :func:`apply_normalization` can treat later vectors the same.
    ``inplace`` overwrites ``X`` (a floating-point array) instead of copying it."""
    means = []
    for step in parse_chain(chain):
        if step == "unit":
            X = unit_rows(X, inplace)
        else:
            mean = X.mean(axis=0)
            means.append(mean)
            if inplace:
                X -= mean
            else:
                X = X - mean
    return X, means


def apply_normalization(X, chain, means: Sequence):
    """Normalise new rows (e.g. a fastText out-of-vocabulary vector) with fitted means."""
    means = iter(means)
    for step in parse_chain(chain):
        X = unit_rows(X) if step == "unit" else X - next(means)
    return X
