"""Nearest neighbours by cosine and by CSLS, computed in blocks of query rows.

Queries are processed in blocks whose size is chosen from a memory budget, so peak memory is
bounded whatever the vocabulary size; the one matrix held (``csls_best_both``'s first rows of
``T @ S.T``, read back for both directions) holds only the rows that fit in that budget.
Every function runs unchanged on numpy or cupy arrays.

CSLS (Conneau et al., 2018): ``csls(x, y) = 2 cos(x, y) - r_T(x) - r_S(y)`` where ``r_T(x)``
is the mean cosine of ``x`` with its ``k`` nearest targets and ``r_S(y)`` the mean cosine of
``y`` with its ``k`` nearest mapped source words.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Tuple

import numpy as np

from .backend import asnumpy, get_array_module
from .normalize import unit_rows

DEFAULT_BUDGET = 512 * 2 ** 20  # bytes of temporaries per block
_BYTES_PER_CELL = 16  # float32 scores + int64 argpartition indices + a float32 copy


# A list to which every similarity product below adds its seconds (``scripts/bench.py``
# sets it to measure the share of a fit spent in products; on a GPU it would time only the
# launches), or None.
product_seconds: Optional[list] = None


def _cosines(Q, R, out=None):
    """``Q @ R.T`` (into ``out`` when given: numpy's BLAS writes a slice of rows in place; CuPy
    is given a C-contiguous ``out`` only)."""
    t = None if product_seconds is None else time.perf_counter()
    xp = get_array_module(Q)
    if out is None:
        c = Q @ R.T
    elif xp is np or out.flags.c_contiguous:
        c = xp.matmul(Q, R.T, out=out)
    else:
        out[...] = Q @ R.T
        c = out
    if t is not None:
        product_seconds.append(time.perf_counter() - t)
    return c


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
    out = xp.empty(Q.shape[0], dtype=xp.float32)
    for a, b in _blocks(Q.shape[0], block_rows(m, budget)):
        out[a:b] = topk_mean(_cosines(Q[a:b], T), k)
        if progress:
            progress(b - a)
    return out


_ARGMAX_K = 16  # up to this k, k rounds of argmax beat a partition (8x at k=10 in numpy)
# CSLS queries from which reordering the targets (a copy of T) costs less than the rows it
# saves redoing (about 2 ms a row at 200k targets against 0.15 s for the copy)
_REORDER_MIN_QUERIES = 64


def topk_mean(scores, k: int):
    """Mean of the ``k`` largest entries of each row of ``scores`` (left unchanged)."""
    xp = get_array_module(scores)
    m = scores.shape[1]
    k = min(k, m)
    if k > _ARGMAX_K:
        return xp.partition(scores, m - k, axis=1)[:, m - k:].mean(axis=1)
    chunks = _Chunks(xp, m, k)
    return chunks.select(scores, chunks.peaks(scores), k, values_only=True)[1].mean(axis=1)


# On the CPU the selections of a query block run over tiles of about this many cells (6 MB of
# float32), which stay in the cache while the candidates are gathered: 32 rows at 50k columns,
# 8 at 200k (tiles of 0.8M to 6.4M cells measured within noise of each other; the plain
# argmax rounds on small rows are 1.85x faster than on whole blocks); a GPU takes the whole
# block at once.
_CPU_TILE_CELLS = 1_600_000


def _row_tiles(xp, n: int, m: int):
    rows = max(1, _CPU_TILE_CELLS // max(m, 1)) if xp is np else max(n, 1)
    return _blocks(n, rows)


def _topk_by_argmax(scores, k: int, restore: bool = True):
    """``k`` rounds of row-wise argmax, each best cell masked to -inf: indices and values best
    first (ties to the lower index). ``scores`` is restored at the end unless ``restore`` is
    false (a temporary of the caller's)."""
    xp = get_array_module(scores)
    n = scores.shape[0]
    idx = xp.empty((n, k), dtype=xp.int64)
    vals = xp.empty((n, k), dtype=scores.dtype)
    for a, b in _row_tiles(xp, n, scores.shape[1]):
        tile, rows = scores[a:b], xp.arange(b - a)
        for r in range(k):
            j = tile.argmax(axis=1)
            idx[a:b, r] = j
            vals[a:b, r] = tile[rows, j]
            tile[rows, j] = -xp.inf
        # in reverse, so that a cell picked twice (a row with fewer than k finite values)
        # gets its first value back
        for r in reversed(range(k) if restore else ()):
            tile[rows, idx[a:b, r]] = vals[a:b, r]
    return idx, vals


class _Chunks:
    """The ``k`` best entries of each row (``k`` <= ``_ARGMAX_K``) from one pass over the row.

    The first ``size * w`` columns form ``w`` chunks, chunk ``c`` holding columns ``c, c + w,
    c + 2w, ...`` (so that one vectorised max over the row's ``size`` slices gives every
    chunk's maximum, its *peak*); the last ``m - size * w`` columns belong to no chunk and are
    always candidates. Any upper bound of each chunk's values can stand in for the peaks (CSLS
    uses ``peak - min shift``). The ``k`` chunks of highest bound (a few more with a shift)
    hold every entry that can be among the ``k`` best unless the next bound reaches the
    ``k``-th value found among their candidates (a tie at the cut, a loose bound): those rows,
    if any, are redone from the whole row, so the answer is always the exact one, best first,
    ties to the lower index. The argmax rounds then run on ``m / size`` bounds and about
    ``k * size`` candidates instead of ``m`` columns. The width is set so that a row has
    about 1,500 chunks (32 columns at 50k, 128 at 200k), the fastest width at both sizes
    (``scripts/bench.py --only passes``), and is at least 8 (at 6.6k columns, 8 took 34 ms
    for the top-10 means of 4.8k rows against 39 ms at 4 and 40 ms at 16). Rows may hold
    -inf cells (fewer finite values than ``k``): their finite values come first.
    """

    def __init__(self, xp, m: int, k: int):
        self.xp, self.m = xp, m
        size = int(min(256, max(8, 2 ** round(np.log2(max(m / 1536, 1))))))
        self.size = size = max(1, min(size, m // (k + 1)))
        self.w = m // size
        self.spread = self.w * xp.arange(size, dtype=xp.int64)[:, None]
        self.rest = xp.arange(size * self.w, m, dtype=xp.int64)

    def peaks(self, tile):
        """Each chunk's maximum, ``(rows, w)``: one pass over the tile."""
        if self.size == 1:
            return tile[:, :self.w].copy()
        return tile[:, :self.size * self.w].reshape(len(tile), self.size, self.w).max(axis=1)

    def select(self, tile, bounds, k: int, shift=None, order=None, values_only: bool = False):
        """Indices and values of the ``k`` largest entries of each row of ``tile - shift``
        (``shift`` per column, or none), given ``bounds`` (consumed) of each chunk's values.
        ``order``: the target of each column, when the columns were reordered
        (:meth:`grouping`); ties still go to the lower target, and the indices returned are
        targets. ``values_only``: the values are all that is wanted; with exact peaks and no
        shift they are right without the check of the cut."""
        xp, size = self.xp, self.size
        n = len(tile)
        if self.m <= k:  # every column is wanted
            return self._whole_rows(tile, k, shift, order)
        # with bounds that are not peaks (a shift) a few more chunks than k make redoing rare:
        # 4.8% of the rows with none spare, 0.02% with 2 (10k real fr-en words, measured)
        take = k if shift is None else min(k + 4, self.w - 1)
        best, bound = _topk_by_argmax(bounds, take + 1, restore=False)
        cols = (xp.sort(best[:, :take], axis=1)[:, None, :] + self.spread).reshape(n, take * size)
        if len(self.rest):
            cols = xp.concatenate([cols, xp.broadcast_to(self.rest, (n, len(self.rest)))], 1)
        # a gather from the flat tile: 3x faster than take_along_axis
        cand = tile.reshape(-1).take(xp.arange(n, dtype=xp.int64)[:, None] * self.m + cols)
        if shift is not None:
            cand -= shift[cols]
        # with reordered columns one more round shows the ties that column order would settle
        rounds = k + 1 if order is not None and cols.shape[1] > k else k
        j, vals = _topk_by_argmax(cand, rounds, restore=False)
        idx = xp.take_along_axis(cols, j[:, :k], axis=1)
        if values_only:
            return idx, vals[:, :k]
        # rows where a chunk left out might hold one of the k best, or (reordered) with equal
        # values among the k+1 best: redone from the whole row (a count that depends on the
        # data: one synchronisation on CuPy)
        redo = bound[:, take] >= vals[:, k - 1]
        # a row with fewer than ``take`` chunks holding a finite value (cells set to -inf by a
        # caller) may have had one chunk picked twice
        redo |= xp.isneginf(bound[:, take - 1])
        if order is not None:
            redo |= (vals[:, 1:] == vals[:, :-1]).any(axis=1)
            idx = order[idx]
        vals = vals[:, :k]
        redo = xp.nonzero(redo)[0]
        if len(redo):
            idx[redo], vals[redo] = self._whole_rows(tile[redo], k, shift, order)
        return idx, vals

    def _whole_rows(self, rows, k, shift, order):
        """The plain k rounds of argmax over whole rows, in target order."""
        if shift is not None:
            rows = rows - shift[None, :]
        if order is None:
            return _topk_by_argmax(rows, k, restore=shift is None)
        in_target_order = self.xp.empty_like(rows)
        in_target_order[:, order] = rows
        return _topk_by_argmax(in_target_order, k, restore=False)

    def grouping(self, shift):
        """Column order that puts targets of nearly equal ``shift`` in the same chunk (so
        ``peak - min shift`` is a tight bound): column ``c + t w`` gets the target of rank
        ``c * size + t`` by ascending shift."""
        xp, size, w = self.xp, self.size, self.w
        ranked = xp.argsort(shift, kind="stable")
        head = ranked[:size * w].reshape(w, size).T.reshape(-1)
        return xp.concatenate([head, ranked[size * w:]])

    def chunk_min(self, shift):
        """The smallest ``shift`` in each chunk, ``(w,)``."""
        return shift[:self.size * self.w].reshape(self.size, self.w).min(axis=0)


def _topk_rows(scores, k: int):
    """Indices and values of the ``k`` largest entries of each row, best first, ties to the
    lower index."""
    xp = get_array_module(scores)
    n, m = scores.shape
    if k <= _ARGMAX_K:
        chunks = _Chunks(xp, m, k)
        return chunks.select(scores, chunks.peaks(scores), k)
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
    csls = method == "csls"
    if csls and r_target is None:
        r_target = mean_topk_similarity(T, Q if sources is None else sources, csls_k, budget)
    kq = min(csls_k, m)
    select, order = (_chunked_selection if max(k, kq if csls else 0) <= _ARGMAX_K else
                     _partition_selection)(xp, m, k, kq, r_target if csls else None, len(Q))
    if order is not None:
        T = T[order]
    out_idx = xp.empty((Q.shape[0], k), dtype=xp.int64)
    out_val = xp.empty((Q.shape[0], k), dtype=xp.float32)
    for a, b in _blocks(Q.shape[0], block_rows(m, budget)):
        scores = _cosines(Q[a:b], T)
        for c, e in _row_tiles(xp, b - a, m):
            out_idx[a + c:a + e], out_val[a + c:a + e] = select(scores[c:e])
        if progress:
            progress(b - a)
    return asnumpy(out_idx), asnumpy(out_val)


# CSLS ranks a query's targets by cos - r_T / 2; the factor 2 and the query's own penalty are
# applied to the k best only (bit for bit the same scores: scaling by 2 commutes with
# rounding). Each maker returns ``(select, order)``: ``select`` takes a tile of cosines (which
# it may overwrite) to its (indices, scores); ``order`` is the order of the targets it expects
# in the tile's columns (None: as given).

def _chunked_selection(xp, m, k, kq, r_target, n_queries):
    """k and csls_k up to ``_ARGMAX_K``: :class:`_Chunks`. With enough queries to pay for a
    reordered copy of T, each chunk gets targets of nearly equal r_T, which makes
    ``peak - min r_T / 2`` a tight bound: one pass over each tile feeds both the query's
    penalty and its CSLS top k. A few queries (translate) take the loose bound and redo most
    rows instead."""
    chunks = _Chunks(xp, m, max(k, kq if r_target is not None else 0))
    order = None
    if r_target is None:
        def select(tile):
            return chunks.select(tile, chunks.peaks(tile), k)
    else:
        half = r_target / 2
        if n_queries >= _REORDER_MIN_QUERIES:
            order = chunks.grouping(r_target)
            half = half[order]
        half_min = chunks.chunk_min(half)

        def select(tile):
            peaks = chunks.peaks(tile)
            bounds = peaks - half_min[None, :]  # before the penalty's selection consumes peaks
            r_query = chunks.select(tile, peaks, kq, values_only=True)[1].mean(axis=1)
            idx, val = chunks.select(tile, bounds, k, shift=half, order=order)
            return idx, 2 * val - r_query[:, None]
    return select, order


def _partition_selection(xp, m, k, kq, r_target, n_queries):
    """k or csls_k above ``_ARGMAX_K``: selection by partition."""
    half = None if r_target is None else r_target / 2

    def select(tile):
        if half is None:
            return _topk_rows(tile, k)
        r_query = topk_mean(tile, kq)
        tile -= half[None, :]
        idx, val = _topk_rows(tile, k)
        return idx, 2 * val - r_query[:, None]
    return select, None


def mutual_nearest(S, T, method: str = "csls", csls_k: int = 10,
                   budget: int = DEFAULT_BUDGET, progress=None):
    """Pairs ``(i, j)`` where target ``j`` is the best match of source ``i`` and source ``i``
    the best match of target ``j`` (the dictionary induction of Conneau et al., 2018).
    Returns numpy ``(src_rows, tgt_rows, scores)``."""
    fwd, fwd_s = nearest(S, T, 1, method, csls_k, budget=budget, progress=progress)
    bwd, _ = nearest(T, S, 1, method, csls_k, budget=budget)
    fwd, bwd, fwd_s = fwd[:, 0], bwd[:, 0], fwd_s[:, 0]
    src = np.flatnonzero(bwd[fwd] == np.arange(len(fwd)))
    return src, fwd[src], fwd_s[src]


# On the CPU the products whose selections follow at once are taken in tiles of about this
# many cells (16 MB of float32), so that the selections read them from the cache (es-en,
# 4.8k x 6.6k, 50-d, one thread: product + a max pass 34 ms in 512-row tiles against 48 ms on
# the whole matrix), and of at least _PRODUCT_TILE_ROWS rows, below which the product itself
# slows down (a stochastic pass of 4k x 20k at 300-d: 668 ms in 100-row tiles, 558 in 200,
# 511 in 400, 516 in 800).
_PRODUCT_TILE_CELLS = 4_000_000
_PRODUCT_TILE_ROWS = 384


def _product_tiles(xp, n: int, m: int, budget: int):
    rows = block_rows(m, budget)
    if xp is np:
        rows = min(rows, max(_PRODUCT_TILE_ROWS, _PRODUCT_TILE_CELLS // max(m, 1)))
    return _blocks(n, rows)


def csls_best_both(S, T, k: int = 10, keep: float = 1.0, rng=None,
                   budget: int = DEFAULT_BUDGET):
    """CSLS best match in both directions: for each row of ``S`` its best row of ``T`` and for
    each row of ``T`` its best row of ``S``.

    With ``keep < 1`` each score is dropped (set to -inf) with probability ``1 - keep``,
    independently for the two directions (stochastic dictionary induction, Artetxe et al.,
    2018); ``rng`` is a random generator of the arrays' module (numpy or cupy), so the draws
    are made where the scores are.

    Three passes in tiles: ``T @ S.T`` gives the targets' penalties; ``S @ T.T`` the sources'
    penalties and best targets; ``T @ S.T`` again the targets' best sources. Above
    ``_READ_BACK_DIM`` dimensions the first pass keeps as many rows of its products as fit in
    ``budget`` and the other two read those back: one product a round when all ``n x m``
    float32 fit, between one and three when only some rows do.

    Returns device arrays ``(fwd, fwd_score, bwd, bwd_score)``.
    """
    xp = get_array_module(S, T)
    S, T = unit_rows(S), unit_rows(T)
    n, m = S.shape[0], T.shape[0]
    # Above _READ_BACK_DIM dimensions, where a product costs more than reading it back, the
    # first p rows of T @ S.T that fit in the budget are kept (20k x 20k x 300, one thread:
    # a round 6.2-6.7 s with none kept, 5.2-6.0 s with the 6.7k rows of 512 MB); below, a
    # third pass of products costs what reading kept rows back does (es-en, one thread:
    # 156 ms a round either way) and nothing is held
    p = min(m, budget // (4 * max(n, 1))) if S.shape[1] > _READ_BACK_DIM else 0
    kept = xp.empty((p, n), dtype=xp.float32)
    r_t = _penalties(T, S, k, budget, kept)
    fwd, fwd_s, r_s = _csls_pass(S, T, r_t, k, keep, rng, budget, kept=kept)
    bwd, bwd_s = xp.empty(m, dtype=xp.int64), xp.empty(m, dtype=xp.float32)
    for a, b in _row_tiles(xp, p, n):
        bwd[a:b], bwd_s[a:b] = _best(kept[a:b], r_t[a:b], r_s, keep, rng)
    if p < m:
        bwd[p:], bwd_s[p:], _ = _csls_pass(T[p:], S, r_s, k, keep, rng, budget, r_q=r_t[p:])
    return fwd, fwd_s, bwd, bwd_s


def csls_best(S, T, k: int = 10, budget: int = DEFAULT_BUDGET):
    """Each row of ``S``'s CSLS best row of ``T`` (a device array): one direction of
    :func:`csls_best_both` without drops, from two products."""
    xp = get_array_module(S, T)
    S, T = unit_rows(S), unit_rows(T)
    r_t = _penalties(T, S, k, budget)
    zero = xp.zeros(S.shape[0], dtype=xp.float32)  # the rows' own penalties: not wanted
    return _csls_pass(S, T, r_t, k, 1.0, None, budget, r_q=zero)[0]


def _penalties(T, S, k, budget, kept=None):
    """Each row of ``T``'s mean cosine with its ``k`` nearest rows of ``S`` (unit rows), from
    product tiles; the products of the first ``len(kept)`` rows are written into ``kept``."""
    xp = get_array_module(T, S)
    p = 0 if kept is None else len(kept)
    r = xp.empty(T.shape[0], dtype=xp.float32)
    for a, b in _product_tiles(xp, T.shape[0], S.shape[0], budget):
        cos = _cosines(T[a:b], S, out=kept[a:b] if b <= p else None)
        if a < p < b:
            kept[a:] = cos[:p - a]
        r[a:b] = topk_mean(cos, k)
    return r


def _csls_pass(Q, R, r_r, k, keep, rng, budget, r_q=None, kept=None):
    """Each row of ``Q``'s CSLS best row of ``R`` (:func:`_best`) and ``r_q``, the rows' own
    penalties, when not given: one product per tile, its columns ``< len(kept)`` read back
    from ``kept`` (the first rows of ``R @ Q.T``) instead, its selections made while the tile
    is in the cache."""
    xp = get_array_module(Q, R)
    n, m = Q.shape[0], R.shape[0]
    p = 0 if kept is None else len(kept)
    own = r_q is None
    r_q = xp.empty(n, dtype=xp.float32) if own else r_q
    best, score = xp.empty(n, dtype=xp.int64), xp.empty(n, dtype=xp.float32)
    for a, b in _product_tiles(xp, n, m, budget):
        cos = xp.empty((b - a, m), dtype=xp.float32)
        if p:
            _columns(kept, a, b, cos)
        if p < m:
            _cosines(Q[a:b], R[p:], out=cos[:, p:])
        if own:
            r_q[a:b] = topk_mean(cos, k)
        best[a:b], score[a:b] = _best(cos, r_q[a:b], r_r, keep, rng)
    return best, score, r_q


# Above this many dimensions a product costs more than reading its transpose back from kept
# products (10k x 10k, one thread: a 300-d product 405 ms, the blocked transpose 103 ms; at
# 6.6k x 4.8k a 50-d product 30 ms, the transpose 38-48 ms).
_READ_BACK_DIM = 64
_TRANSPOSE_ROWS = 512  # rows of ``kept`` per copy: 256-1024 within 10% of each other


def _columns(kept, a: int, b: int, out):
    """``kept[:, a:b].T`` into the first ``len(kept)`` columns of ``out``; on the CPU copied
    in blocks of rows that stay in the cache (a plain strided copy of 10k x 10k took 661 ms,
    the blocks 103 ms)."""
    xp = get_array_module(kept)
    p = kept.shape[0]
    step = p if xp is not np else _TRANSPOSE_ROWS
    for j in range(0, p, step):
        out[:, j:min(p, j + step)] = kept[j:j + step, a:b].T


def _best(sims, r_rows, r_cols, keep, rng):
    """Row-wise CSLS argmax of a block of cosines (modified in place), with random drops:
    ranked by ``cos - r_cols / 2``, the best scored as ``2 cos - r_cols - r_rows``; a row
    whose every cell was dropped scores -inf."""
    xp = get_array_module(sims)
    sims -= (r_cols / 2)[None, :]
    if keep >= 1:
        j = sims.argmax(axis=1)
        return j, 2 * sims[xp.arange(len(j)), j] - r_rows
    j, none_kept = first_kept(sims, keep, rng)
    score = 2 * sims[xp.arange(len(j)), j] - r_rows
    return j, xp.where(none_kept, -xp.inf, score).astype(score.dtype)


# A row's first kept candidate is looked for among its best L (L <= _ARGMAX_K, the fast
# one-pass selection), L the smallest for which at most a share _TAIL of the rows must look
# further (their next best L, and so on).
_TAIL = 0.05


def _depth(keep: float, m: int) -> int:
    """L: how many best cells of a row are selected at once to find its first kept one."""
    return int(min(m, _ARGMAX_K, max(1, np.ceil(np.log(_TAIL) / np.log1p(-keep)))))


def _geometric(n: int, keep: float, rng, xp):
    """For each of ``n`` rows the rank of its first kept cell in score order:
    ``P(G >= r) = (1 - keep) ** r``, from one uniform per row of ``rng`` (``xp``'s)."""
    u = rng.random(n)  # float64: the tail of the geometric needs the resolution
    return xp.floor(xp.log1p(-u) / np.log1p(-keep)).astype(xp.int64)


def first_kept(scores, keep: float, rng):
    """The argmax of each row of ``scores`` after every cell is dropped independently with
    probability ``1 - keep``, exactly in distribution, with one random number per row.

    Walking a row in score order (ties: the lower column first), the first kept cell sits at
    rank ``G`` (:func:`_geometric`), and the answer is the row's ``G``-th best cell (nothing
    kept when ``G`` reaches the row's length; see :func:`_kth_best`). ``scores`` is
    modified. Returns ``(columns, none_kept)``; a row that kept nothing has column 0."""
    xp = get_array_module(scores)
    m = scores.shape[1]
    G = _geometric(scores.shape[0], keep, rng, xp)
    none_kept = G >= m
    j = _kth_best(scores, xp.where(none_kept, 0, G), _depth(keep, m))
    return xp.where(none_kept, 0, j), none_kept


def _kth_best(scores, g, L: int):
    """Each row's ``g``-th best column (0: the best; ``g`` below the row's length; ties to the
    lower column). The best ``L`` of every row are selected in one pass; the rows with
    ``g >= L`` have those cells set to -inf in ``scores`` (modified) and look among their
    next best ``L``, and so on: a pass costs the rows still looking (one count each on a
    GPU)."""
    xp = get_array_module(scores)
    n, m = scores.shape
    j = xp.zeros(n, dtype=xp.int64)
    rows, tile = xp.arange(n), scores
    L = min(L, m)
    for _ in range(-(-m // L)):
        best, _ = _topk_rows(tile, L)
        j[rows] = best[xp.arange(len(rows)), xp.minimum(g, L - 1)]
        further = xp.nonzero(g >= L)[0]
        if not len(further):
            break
        rows, g = rows[further], g[further] - L
        scores[rows[:, None], best[further]] = -xp.inf
        tile = scores[rows]
    return j
