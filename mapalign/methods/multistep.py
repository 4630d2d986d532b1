"""The multi-step framework of Artetxe, Labaka & Agirre (AAAI 2018, "Generalizing and improving
bilingual word embedding mappings with linear transformations").

A mapping is built from five optional steps, applied to the matched dictionary rows:

1. whitening: ``X (X^T X)^{-1/2}`` and ``Z (Z^T Z)^{-1/2}`` (decorrelated, unit variance);
2. orthogonal mapping: ``U, V`` from the SVD ``(X W_x1)^T (Z W_z1) = U S V^T``, so that both
   sides are rotated into one space whose dimensions are sorted by cross-correlation ``S``;
3. re-weighting: each side's dimensions scaled by ``S ** src_reweight`` / ``S ** tgt_reweight``;
4. de-whitening: each side multiplied by ``U^T (X^T X)^{1/2} U`` (``"src"``) or
   ``V^T (Z^T Z)^{1/2} V`` (``"tgt"``), restoring a variance structure in the shared space;
5. dimensionality reduction: only the first ``dims`` shared dimensions kept.

Orthogonal Procrustes is the special case with no whitening, no re-weighting and no
de-whitening; CCA is whitening, orthogonal mapping and dimensionality reduction. With unequal
dimensions the shared space has ``min(d_src, d_tgt)`` dimensions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from ..backend import get_array_module
from .linalg import inverse_sqrt, sqrt


@dataclass(frozen=True)
class MultiStep:
    whiten: bool = True
    src_reweight: float = 0.5
    tgt_reweight: float = 0.5
    src_dewhiten: Optional[str] = "src"  # "src", "tgt" or None
    tgt_dewhiten: Optional[str] = "tgt"
    dims: Optional[int] = None  # keep this many shared dimensions (None: all)
    reg: float = 1e-6  # added to covariance diagonals, relative to their mean variance

    def settings(self) -> dict:
        return asdict(self)

    def __call__(self, X, Z):
        """``(W_src, W_tgt)`` for matched rows ``X``, ``Z``."""
        for name in ("src_dewhiten", "tgt_dewhiten"):
            if getattr(self, name) not in ("src", "tgt", None):
                raise ValueError(f"{name} must be 'src', 'tgt' or None")
        xp = get_array_module(X, Z)
        X, Z = X.astype(xp.float64), Z.astype(xp.float64)
        Cx, Cz = X.T @ X, Z.T @ Z
        if self.whiten:
            Wx1, Wz1 = inverse_sqrt(Cx, self.reg), inverse_sqrt(Cz, self.reg)
        else:
            Wx1, Wz1 = xp.eye(X.shape[1]), xp.eye(Z.shape[1])
        U, s, Vt = xp.linalg.svd((X @ Wx1).T @ (Z @ Wz1), full_matrices=False)
        V = Vt.T
        A, B = Wx1 @ U, Wz1 @ V
        A = A * s ** self.src_reweight
        B = B * s ** self.tgt_reweight
        if self.whiten:
            # the whitening undone in the shared space, from either side's covariance
            restore = {"src": U.T @ sqrt(Cx, self.reg) @ U, "tgt": V.T @ sqrt(Cz, self.reg) @ V}
            if self.src_dewhiten:
                A = A @ restore[self.src_dewhiten]
            if self.tgt_dewhiten:
                B = B @ restore[self.tgt_dewhiten]
        if self.dims:
            A, B = A[:, :self.dims], B[:, :self.dims]
        return A.astype(xp.float32), B.astype(xp.float32)


# The recommended configuration: whitening, orthogonal mapping, symmetric re-weighting (the
# square root of the cross-correlations on each side), de-whitening of each side with its own
# covariance, no dimensionality reduction.
PRESET = MultiStep()
