"""Supervised mapping methods (orthogonal Procrustes, CCA) and the supervised aligner.

Conventions: embeddings are row matrices; a mapping is a pair ``(W_src, W_tgt)`` and the
shared space holds ``normalize(X) @ W_src`` and ``normalize(Z) @ W_tgt``. For Procrustes
``W_tgt`` is the identity, for CCA both sides are projected.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence, Tuple

import numpy as np

from .backend import asnumpy, get_array_module, get_xp, resolve_device, to_device
from .loading import Embeddings, index_pairs
from .normalize import apply_normalization, normalize
from .retrieval import DEFAULT_BUDGET, mutual_nearest

METHODS = ("procrustes", "cca")


def procrustes(X, Z):
    """Orthogonal ``W`` minimising ``||X W - Z||_F`` (Schönemann, 1966): ``W = U V^T`` from
    the SVD ``X^T Z = U S V^T``. ``X`` and ``Z`` hold matched rows."""
    xp = get_array_module(X, Z)
    U, _, Vt = xp.linalg.svd(X.T.astype(xp.float64) @ Z.astype(xp.float64))
    return (U @ Vt).astype(xp.float32)


def _inverse_sqrt(C):
    xp = get_array_module(C)
    vals, vecs = xp.linalg.eigh(C)
    return (vecs * (1.0 / xp.sqrt(xp.maximum(vals, 1e-12)))) @ vecs.T


def cca(X, Z, reg: float = 1e-3):
    """Canonical correlation analysis (Hotelling, 1936; Faruqui & Dyer, 2014): projections
    ``(A, B)`` such that ``X A`` and ``Z B`` are maximally correlated, dimension by dimension.

    Computed as whitening followed by the SVD of the whitened cross-covariance; ``reg`` is
    added to each covariance's diagonal (relative to its mean variance) to keep it invertible.
    """
    xp = get_array_module(X, Z)
    X = X.astype(xp.float64)
    Z = Z.astype(xp.float64)
    X = X - X.mean(axis=0)
    Z = Z - Z.mean(axis=0)
    n = X.shape[0]
    eye = xp.eye(X.shape[1])
    Cxx, Czz = X.T @ X / n, Z.T @ Z / n
    Wx = _inverse_sqrt(Cxx + reg * xp.trace(Cxx) / len(Cxx) * eye)
    Wz = _inverse_sqrt(Czz + reg * xp.trace(Czz) / len(Czz) * eye)
    U, _, Vt = xp.linalg.svd(Wx @ (X.T @ Z / n) @ Wz)
    return (Wx @ U).astype(xp.float32), (Wz @ Vt.T).astype(xp.float32)


def solve(method: str, X, Z):
    """``(W_src, W_tgt)`` for matched rows ``X``, ``Z`` by ``method``."""
    if method == "procrustes":
        xp = get_array_module(X)
        return procrustes(X, Z), xp.eye(Z.shape[1], dtype=xp.float32)
    if method == "cca":
        return cca(X, Z)
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


class _Mapper:
    """What every aligner shares once fitted: normalisation, the two matrices, transforms."""

    normalize = "unit,center,unit"

    def _prepare(self, src: Embeddings, tgt: Embeddings):
        self.device_ = resolve_device(self.device)
        xp = get_xp(self.device_)
        X, self.src_means_ = normalize(to_device(src.vectors, xp), self.normalize)
        Z, self.tgt_means_ = normalize(to_device(tgt.vectors, xp), self.normalize)
        return xp, X, Z

    def _store(self, W_src, W_tgt):
        self.W_src_ = asnumpy(W_src)
        self.W_tgt_ = asnumpy(W_tgt)

    def transform_source(self, X, xp=np):
        """Map raw source vectors (rows) into the shared space."""
        return self._transform(X, xp, [to_device(m, xp) for m in self.src_means_], self.W_src_)

    def transform_target(self, Z, xp=np):
        """Map raw target vectors (rows) into the shared space."""
        return self._transform(Z, xp, [to_device(m, xp) for m in self.tgt_means_], self.W_tgt_)

    def _transform(self, X, xp, means, W):
        X = apply_normalization(to_device(np.asarray(X, dtype=np.float32), xp)
                                if xp is np else xp.asarray(X, dtype=xp.float32),
                                self.normalize, means)
        return X @ to_device(W, xp)


class SupervisedAligner(_Mapper):
    """Learn a mapping from a seed dictionary, in scikit-learn's style.

    >>> model = SupervisedAligner(method="procrustes").fit(src, tgt, pairs)
    >>> model.W_src_, model.seed_info_
    """

    def __init__(self, method: str = "procrustes", refine: int = 5,
                 normalize: str = "unit,center,unit", refine_vocab: int = 15000,
                 csls_k: int = 10, device: str = "cpu", budget: int = DEFAULT_BUDGET):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        if refine < 0:
            raise ValueError("refine must be >= 0")
        self.method = method
        self.refine = refine
        self.normalize = normalize
        self.refine_vocab = refine_vocab
        self.csls_k = csls_k
        self.device = device
        self.budget = budget

    def fit(self, src: Embeddings, tgt: Embeddings, pairs: Sequence[Tuple[str, str]]):
        """Solve on the in-vocabulary seed pairs; then ``refine`` rounds of re-solving on the
        dictionary induced by mutual CSLS nearest neighbours among the ``refine_vocab`` most
        frequent words of each side, with the seed pairs kept in it. Refinement stops early
        once the induced dictionary no longer changes."""
        t0 = time.perf_counter()
        s_rows, t_rows, self.seed_info_ = index_pairs(pairs, src, tgt)
        if len(s_rows) == 0:
            raise ValueError("no seed pair has both words in the vocabularies")
        xp, X, Z = self._prepare(src, tgt)
        s_dev, t_dev = to_device(s_rows, xp), to_device(t_rows, xp)
        W_src, W_tgt = solve(self.method, X[s_dev], Z[t_dev])
        self.history_ = []
        n_s, n_t = min(self.refine_vocab, len(src)), min(self.refine_vocab, len(tgt))
        previous = None
        for it in range(self.refine):
            i, j, _ = mutual_nearest(X[:n_s] @ W_src, Z[:n_t] @ W_tgt, "csls", self.csls_k,
                                     self.budget)
            pairs_ij = np.unique(np.concatenate([np.stack([i, j], 1),
                                                 np.stack([s_rows, t_rows], 1)]), axis=0)
            if previous is not None and np.array_equal(previous, pairs_ij):
                break
            previous = pairs_ij
            W_src, W_tgt = solve(self.method, X[to_device(pairs_ij[:, 0], xp)],
                                 Z[to_device(pairs_ij[:, 1], xp)])
            self.history_.append({"iteration": it + 1, "induced_pairs": int(len(i)),
                                  "pairs_solved_on": int(len(pairs_ij))})
        self._store(W_src, W_tgt)
        self.fit_seconds_ = time.perf_counter() - t0
        return self
