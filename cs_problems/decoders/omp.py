"""Orthogonal matching pursuit in the DCT (or wavelet) dictionary ``M = Phi Psi``.

Greedy ``k``-sparse approximation ``min ||M c - y||_2 s.t. ||c||_0 <= k`` by scikit-learn's
``orthogonal_mp`` on all images at once (targets as columns), with the columns of ``M``
normalised to unit norm (as OMP assumes) and the coefficients rescaled back.
Default sparsity ``k = max(1, round(sparsity_ratio * m))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CSInputError
from .bases import sparsifying_basis
from .base import Decoder, register_decoder


@register_decoder("omp")
class OMPDecoder(Decoder):
    """OMP with dictionary ``Phi Psi``; options ``n_nonzero`` or ``sparsity_ratio``, ``basis``."""

    name = "omp"

    def __init__(
        self, Phi: np.ndarray, *, n_nonzero: int | None = None, sparsity_ratio: float = 0.25,
        basis: str = "dct", wavelet: str = "haar", level: int | None = None,
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        if self.shape is None:
            raise CSInputError(f"omp decoder needs the image shape for n = {self.n} (pass shape=)")
        if n_nonzero is None and not (np.isfinite(sparsity_ratio) and 0 < sparsity_ratio <= 1):
            raise CSInputError(f"omp sparsity_ratio must be in (0, 1], got {sparsity_ratio!r}")
        k = max(1, int(round(sparsity_ratio * self.m))) if n_nonzero is None else int(n_nonzero)
        if not 1 <= k <= self.m:
            raise CSInputError(f"omp n_nonzero must be in [1, m={self.m}], got {k}")
        self.n_nonzero = k
        self.Psi = sparsifying_basis(basis, self.shape, wavelet, level)
        M = self.Phi @ self.Psi
        norms = np.linalg.norm(M, axis=0)
        self.col_scale = np.where(norms > 0, norms, 1.0)
        self.M_unit = M / self.col_scale
        import sklearn.linear_model  # noqa: F401  (import cost paid here, not in reconstruct)

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        import warnings

        from sklearn.linear_model import orthogonal_mp

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # early stop on exact fits
            C = orthogonal_mp(self.M_unit, Y.T, n_nonzero_coefs=self.n_nonzero, precompute=True)
        C = np.asarray(C).reshape(self.M_unit.shape[1], -1).T / self.col_scale
        return C @ self.Psi.T
