"""Nearest neighbours by cosine and by CSLS, computed in blocks of query rows.

No function here builds the full ``n x m`` similarity matrix: queries are processed in blocks
whose size is chosen from a memory budget, so peak memory is bounded whatever the vocabulary
size. Every function runs unchanged on numpy or cupy arrays.

CSLS (Conneau et al., 2018): ``csls(x, y) = 2 cos(x, y) - r_T(x) - r_S(y)`` where ``r_T(x)``
is the mean cosine of ``x`` with its ``k`` nearest targets and ``r_S(y)`` the mean cosine of
``y`` with its ``k`` nearest mapped source words.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from .backend import asnumpy, get_array_module
from .normalize import unit_rows

DEFAULT_BUDGET = 512 * 2 ** 20  # bytes of temporaries per block
_BYTES_PER_CELL = 16  # float32 scores + int64 argpartition indices + a float32 copy


def block_rows(n_cols: int, budget: int = DEFAULT_BUDGET) -> int:
    """How many query rows fit in one block against ``n_cols`` targets."""
    return max(1, int(budget // (max(n_cols, 1) * _BYTES_PER_CELL)))


def _blocks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(n, start + size)


def mean_topk_similarity(Q, T, k: int = 10, budget: int = DEFAULT_BUDGET,
                         progress: Optional[Callable[[int], None]] = None):
    """For each row of ``Q`` the mean cosine with its ``k`` most similar rows of ``T``."""
    xp = get_array_module(Q, T)
    Q, T = unit_rows(Q), unit_rows(T)
    m = T.shape[0]
    k = min(k, m)
    out = xp.empty(Q.shape[0], dtype=xp.float32)
    for a, b in _blocks(Q.shape[0], block_rows(m, budget)):
        sims = Q[a:b] @ T.T
        out[a:b] = xp.partition(sims, m - k, axis=1)[:, m - k:].mean(axis=1)
        if progress:
            progress(b - a)
    return out


def _topk_rows(scores, k: int):
    """Indices and values of the ``k`` largest entries of each row, best first."""
    xp = get_array_module(scores)
    n, m = scores.shape
    if k == 1:
        idx = scores.argmax(axis=1)[:, None]
        return idx, xp.take_along_axis(scores, idx, axis=1)
    # The k-th largest value of each row by partition (an order of magnitude faster than
    # argpartition in numpy), then every cell at or above it: k or more per row (ties).
    kth = xp.partition(scores, m - k, axis=1)[:, m - k] if k < m else scores.min(axis=1)
    rows, cols = xp.nonzero(scores >= kth[:, None])
    vals = scores[rows, cols]
    order = xp.lexsort(xp.stack([cols.astype(xp.float64), -vals.astype(xp.float64),
                                 rows.astype(xp.float64)]))  # row, best first, lower index
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = xp.searchsorted(rows, xp.arange(n))
    keep = (xp.arange(len(rows)) - starts[rows]) < k
    return cols[keep].reshape(n, k), vals[keep].reshape(n, k)


def csls_block(sims, r_target, k: int):
    """Turn a block of cosines (queries x all targets) into CSLS scores, in place. The
    queries' own penalty ``r_T`` comes from the same block, so CSLS needs no extra pass."""
    xp = get_array_module(sims)
    m = sims.shape[1]
    r_query = xp.partition(sims, m - k, axis=1)[:, m - k:].mean(axis=1)
    sims *= 2
    sims -= r_target[None, :]
    sims -= r_query[:, None]
    return sims


def nearest(Q, T, k: int = 10, method: str = "csls", csls_k: int = 10, r_target=None,
            sources=None, budget: int = DEFAULT_BUDGET,
            progress: Optional[Callable[[int], None]] = None) -> Tuple:
    """Top-``k`` targets for each query row, by ``method`` ``nn`` (cosine) or ``csls``.

    ``sources`` is the set of mapped source vectors from which each target's CSLS penalty
    ``r_S`` is computed (default: the queries themselves); a precomputed ``r_target`` skips
    that pass. Returns numpy ``(indices, scores)`` of shape ``(n_queries, k)``, best first.
    """
    if method not in ("nn", "csls"):
        raise ValueError(f"retrieval method must be 'nn' or 'csls', not {method!r}")
    xp = get_array_module(Q, T)
    Q, T = unit_rows(Q), unit_rows(T)
    m = T.shape[0]
    k = min(k, m)
    if method == "csls" and r_target is None:
        r_target = mean_topk_similarity(T, Q if sources is None else sources, csls_k, budget)
    out_idx = xp.empty((Q.shape[0], k), dtype=xp.int64)
    out_val = xp.empty((Q.shape[0], k), dtype=xp.float32)
    kq = min(csls_k, m)
    for a, b in _blocks(Q.shape[0], block_rows(m, budget)):
        scores = Q[a:b] @ T.T
        if method == "csls":
            csls_block(scores, r_target, kq)
        out_idx[a:b], out_val[a:b] = _topk_rows(scores, k)
        if progress:
            progress(b - a)
    return asnumpy(out_idx), asnumpy(out_val)


def mutual_nearest(S, T, method: str = "csls", csls_k: int = 10,
                   budget: int = DEFAULT_BUDGET):
    """Pairs ``(i, j)`` where target ``j`` is the best match of source ``i`` and source ``i``
    the best match of target ``j`` (the dictionary induction of Conneau et al., 2018).
    Returns numpy ``(src_rows, tgt_rows, scores)``."""
    fwd, fwd_s = nearest(S, T, 1, method, csls_k, budget=budget)
    bwd, _ = nearest(T, S, 1, method, csls_k, budget=budget)
    fwd, bwd, fwd_s = fwd[:, 0], bwd[:, 0], fwd_s[:, 0]
    src = np.flatnonzero(bwd[fwd] == np.arange(len(fwd)))
    return src, fwd[src], fwd_s[src]
