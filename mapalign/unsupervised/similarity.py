"""Similarity-distribution initialisation (Artetxe, Labaka & Agirre, 2018, ACL, "A robust
self-learning method for fully unsupervised cross-lingual mappings of word embeddings").

Each of the ``vocab`` most frequent words is described by its sorted similarities to the other
frequent words of its own language (rows of ``sqrt(X X^T)``), a description that a rotation of
the space leaves unchanged; CSLS nearest neighbours between the two languages' descriptions, in
both directions, give the initial dictionary.
"""
from __future__ import annotations

from ..backend import get_array_module
from ..normalize import normalize
from ..retrieval import csls_best_both


def similarity_signature(X):
    """Rows of ``sqrt(X X^T) = U S U^T`` (for ``X = U S V^T``), each sorted, then
    unit,center,unit normalised."""
    xp = get_array_module(X)
    U, s, _ = xp.linalg.svd(X.astype(xp.float64), full_matrices=False)
    M = (U * s) @ U.T
    M = -xp.sort(-M, axis=1)
    return normalize(M.astype(xp.float32), "unit,center,unit")[0]


def similarity_dictionary(X, Z, vocab: int, csls_k: int = 10):
    """Initial dictionary rows ``(src_rows, tgt_rows)`` among the ``vocab`` most frequent words
    of each side (both directions of CSLS best matches)."""
    xp = get_array_module(X, Z)
    n_s, n_t = min(vocab, len(X)), min(vocab, len(Z))
    Sx, Sz = similarity_signature(X[:n_s]), similarity_signature(Z[:n_t])
    n = min(n_s, n_t)  # the descriptions have one length only when the vocabularies do
    fwd, _, bwd, _ = csls_best_both(Sx[:, :n], Sz[:, :n], csls_k)
    return (xp.concatenate([xp.arange(n_s), bwd]), xp.concatenate([fwd, xp.arange(n_t)]))
