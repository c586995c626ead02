"""Linear decoders: the pseudo-inverse of ``Phi`` and a learned ridge (least-squares) map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CSInputError
from .base import Decoder, register_decoder


@register_decoder("pinv")
class PinvDecoder(Decoder):
    """Minimum-norm solution ``s = Phi^+ y`` (exact when ``Phi`` is square and invertible)."""

    name = "pinv"

    def __init__(
        self, Phi: np.ndarray, *, rcond: float = 1e-12, shape: Sequence[int] | None = None,
        clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        self.Phi_pinv = np.linalg.pinv(self.Phi, rcond=rcond)

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        return Y @ self.Phi_pinv.T


@register_decoder("linear")
class LinearDecoder(Decoder):
    """Learned affine decoder ``s = A y + c`` by ridge regression on training pairs.

    ``min_{A,c} sum_i ||s_i - A y_i - c||^2 + alpha ||A||_F^2`` has the closed form
    ``A^T = (Yc^T Yc + alpha I)^{-1} Yc^T Sc`` with centred ``Yc, Sc`` and
    ``c = mean(S) - A mean(Y)``. Fitted: ``coef_`` = ``A`` ``(n, m)``, ``intercept_`` = ``c``.
    """

    name = "linear"
    learned = True

    def __init__(
        self, Phi: np.ndarray, *, alpha: float = 1e-3, shape: Sequence[int] | None = None,
        clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        if not (np.isfinite(alpha) and alpha >= 0):
            raise CSInputError(f"ridge alpha must be finite and >= 0, got {alpha!r}")
        self.alpha = float(alpha)

    def _fit(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> None:
        y_mean, s_mean = Y.mean(axis=0), S.mean(axis=0)
        Yc, Sc = Y - y_mean, S - s_mean
        G = Yc.T @ Yc + self.alpha * np.eye(self.m)
        A_T = np.linalg.lstsq(G, Yc.T @ Sc, rcond=None)[0]  # (m, n)
        self.coef_ = A_T.T  # (n, m), scikit-learn's layout
        self.intercept_ = s_mean - y_mean @ A_T

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        return Y @ self.coef_.T + self.intercept_
