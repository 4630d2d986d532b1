"""RCSLS: the relaxed CSLS loss optimised directly (Joulin, Bojanowski, Mikolov, Jégou & Grave,
EMNLP 2018, "Loss in Translation: Learning Bilingual Word Mapping with a Retrieval Criterion").

For dictionary pairs ``(x_i, y_i)`` and a linear map ``W`` the loss is

    1/n sum_i [ -2 x_i W . y_i + 1/k sum_{y in N_T(x_i W)} x_i W . y
                               + 1/k sum_{x in N_S(y_i)}  x W . y_i ]

where ``N_T(x_i W)`` are the ``k`` targets nearest to the mapped source word and ``N_S(y_i)``
the ``k`` mapped source words nearest to the target word, searched among the ``n_neighbours``
most frequent words of each side. Full-batch gradient descent from Procrustes; after every step
``W`` is projected onto the unit ball of the spectral norm (the convex hull of orthogonal
matrices), as in the paper. The iterate with the lowest loss is returned.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..backend import get_array_module
from ..retrieval import DEFAULT_BUDGET, _blocks, _topk_by_argmax, block_rows
from .procrustes import procrustes


def _knn(Q, R, k, budget):
    """Indices and dot products of the ``k`` rows of ``R`` most similar to each row of ``Q``."""
    xp = get_array_module(Q, R)
    idx = xp.empty((Q.shape[0], k), dtype=xp.int64)
    vals = xp.empty((Q.shape[0], k), dtype=xp.float32)
    for a, b in _blocks(Q.shape[0], block_rows(R.shape[0], budget)):
        idx[a:b], vals[a:b] = _topk_by_argmax(Q[a:b] @ R.T, k)
    return idx, vals


@dataclass(frozen=True)
class RCSLS:
    lr: float = 1.0
    iterations: int = 20
    k: int = 10
    n_neighbours: int = 200000
    budget: int = DEFAULT_BUDGET

    def settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "budget"}

    def fit(self, X, Z, Xd, Zd):
        """``(W, history)`` for dictionary rows ``Xd``, ``Zd``; ``X``, ``Z`` are the full
        (normalised) vocabularies whose first ``n_neighbours`` rows are searched."""
        xp = get_array_module(X, Z)
        Xn, Zn = X[:self.n_neighbours], Z[:self.n_neighbours]
        n = Xd.shape[0]
        k = min(self.k, Xn.shape[0], Zn.shape[0])
        W = procrustes(Xd, Zd)
        best, history = None, []
        for it in range(self.iterations + 1):
            XW = Xd @ W
            idx_t, sim_t = _knn(XW, Zn, k, self.budget)  # targets near each mapped source
            idx_s, sim_s = _knn(Zd, Xn @ W, k, self.budget)  # mapped sources near each target
            loss = float(xp.mean(-2 * xp.sum(XW * Zd, axis=1) + sim_t.mean(axis=1)
                                 + sim_s.mean(axis=1)))
            history.append({"iteration": it, "loss": loss})
            if best is None or loss < best[1]:
                best = (W, loss)
            if it == self.iterations:
                break
            G = (-2 * Xd.T @ Zd + Xd.T @ Zn[idx_t].sum(axis=1) / k
                 + Xn[idx_s].sum(axis=1).T @ Zd / k) / n
            W = W - self.lr * G
            U, sv, Vt = xp.linalg.svd(W, full_matrices=False)
            W = ((U * xp.minimum(sv, 1)) @ Vt).astype(xp.float32)
        return best[0], history
