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
from .retrieval import DEFAULT_BUDGET, mutual_nearest, nearest

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


class Mapping:
    """What every aligner shares once fitted: normalisation, the two matrices, transforms.

    A fitted mapping read back from a run directory is a plain ``Mapping``.
    """

    normalize = "unit,center,unit"

    @classmethod
    def from_arrays(cls, W_src, W_tgt, normalize, src_means=(), tgt_means=()):
        self = cls.__new__(cls)
        self.normalize = normalize
        self.W_src_, self.W_tgt_ = np.asarray(W_src), np.asarray(W_tgt)
        self.src_means_ = [np.asarray(m) for m in src_means]
        self.tgt_means_ = [np.asarray(m) for m in tgt_means]
        return self

    def _prepare(self, src: Embeddings, tgt: Embeddings):
        self.device_ = resolve_device(self.device)
        xp = get_xp(self.device_)
        X, self.src_means_ = normalize(to_device(src.vectors, xp), self.normalize)
        Z, self.tgt_means_ = normalize(to_device(tgt.vectors, xp), self.normalize)
        return xp, X, Z

    def report_(self) -> dict:
        """What the fit learnt about its inputs, for ``report.json``."""
        return {}

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
        X = apply_normalization(xp.asarray(X, dtype=xp.float32), self.normalize, means)
        return X @ to_device(W, xp)

    def mapped(self, src: Embeddings, tgt: Embeddings, n_src=None, n_tgt=None, xp=np):
        """The first ``n_src`` source and ``n_tgt`` target words in the shared space."""
        return (self.transform_source(src.vectors[:n_src], xp),
                self.transform_target(tgt.vectors[:n_tgt], xp))

    def translate(self, src: Embeddings, tgt: Embeddings, words: Sequence[str], k: int = 10,
                  method: str = "csls", vocab: int = 200000, csls_k: int = 10, xp=np,
                  budget: int = DEFAULT_BUDGET):
        """The ``k`` best target words for each source word, as ``[(word, score), ...]``.

        Retrieval runs over the first ``vocab`` target words; CSLS penalties use the first
        ``vocab`` source words. A word outside the source vocabulary is looked up through the
        embeddings' subword model when it has one (fastText ``.bin``), else KeyError.
        """
        S, T = self.mapped(src, tgt, vocab, vocab, xp)
        Q = self.transform_source(np.stack([src.vector(w) for w in words]), xp)
        idx, scores = nearest(Q, T, k, method, csls_k, sources=S, budget=budget)
        return [[(tgt.words[j], float(v)) for j, v in zip(row_i, row_v)]
                for row_i, row_v in zip(idx, scores)]

    def induce_dictionary(self, src: Embeddings, tgt: Embeddings, vocab: int = 15000,
                          mode: str = "mutual", method: str = "csls", csls_k: int = 10,
                          xp=np, budget: int = DEFAULT_BUDGET):
        """A dictionary ``[(source, target, score)]`` over the ``vocab`` most frequent words:
        ``mutual`` keeps mutual best matches, ``forward`` the best target of every source."""
        S, T = self.mapped(src, tgt, vocab, vocab, xp)
        if mode == "mutual":
            i, j, v = mutual_nearest(S, T, method, csls_k, budget)
        elif mode == "forward":
            j, v = nearest(S, T, 1, method, csls_k, budget=budget)
            i, j, v = np.arange(len(j)), j[:, 0], v[:, 0]
        else:
            raise ValueError(f"mode must be 'mutual' or 'forward', not {mode!r}")
        return [(src.words[a], tgt.words[b], float(c)) for a, b, c in zip(i, j, v)]


class SupervisedAligner(Mapping):
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

    def report_(self) -> dict:
        return {"seed_dictionary": self.seed_info_, "refinement": self.history_}
