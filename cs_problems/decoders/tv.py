"""Total-variation recovery by a vectorised Chambolle--Pock primal-dual method.

For every image (all at once)::

    min_s  lam * TV(s) + 1/2 ||Phi s - y||_2^2   s.t.  0 <= s <= 1,
    TV(s) = sum |D_x s| + |D_y s|   (anisotropic, forward differences, Neumann boundary)

solved by :func:`~unrectify.cs.decoders.primal_dual.primal_dual_l1` with ``K_a = [D_x; D_y]``
(``||K_a||^2 <= 8``), started from the clipped pseudo-inverse solution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CSInputError
from .base import Decoder, register_decoder
from .primal_dual import primal_dual_l1


def grad2d(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences of an ``(N, h, w)`` stack (zero in the last column/row)."""
    gx = np.zeros_like(S)
    gy = np.zeros_like(S)
    gx[:, :, :-1] = S[:, :, 1:] - S[:, :, :-1]
    gy[:, :-1, :] = S[:, 1:, :] - S[:, :-1, :]
    return gx, gy


def grad2d_adjoint(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`grad2d` (minus the discrete divergence)."""
    out = np.zeros_like(px)
    out[:, :, :-1] -= px[:, :, :-1]
    out[:, :, 1:] += px[:, :, :-1]
    out[:, :-1, :] -= py[:, :-1, :]
    out[:, 1:, :] += py[:, :-1, :]
    return out


def tv_aniso(S: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Anisotropic TV of each row of ``S`` reshaped to ``shape``; ``(N,)``."""
    gx, gy = grad2d(np.asarray(S, dtype=np.float64).reshape(-1, *shape))
    return np.abs(gx).sum(axis=(1, 2)) + np.abs(gy).sum(axis=(1, 2))


@register_decoder("tv")
class TVDecoder(Decoder):
    """Anisotropic-TV recovery with a least-squares data fit and a [0, 1] box.

    Options: ``lam`` (TV weight), ``max_iter``, ``tol`` (relative change stop), ``box``.
    """

    name = "tv"

    def __init__(
        self, Phi: np.ndarray, *, lam: float = 0.01, max_iter: int = 500, tol: float = 1e-6,
        box: bool = True, shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        if self.shape is None:
            raise CSInputError(f"tv decoder needs the image shape for n = {self.n} (pass shape=)")
        if not (np.isfinite(lam) and lam >= 0):
            raise CSInputError(f"tv lam must be finite and >= 0, got {lam!r}")
        if int(max_iter) < 1:
            raise CSInputError(f"tv max_iter must be >= 1, got {max_iter!r}")
        if not (np.isfinite(tol) and tol >= 0):
            raise CSInputError(f"tv tol must be finite and >= 0, got {tol!r}")
        self.lam, self.max_iter, self.tol, self.box = float(lam), int(max_iter), float(tol), bool(box)
        self.Phi_pinv = np.linalg.pinv(self.Phi)

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        return self.solve(Y)

    def solve(self, Y: np.ndarray, S0: np.ndarray | None = None, anchor: np.ndarray | None = None,
              beta: float | np.ndarray = 0.0) -> np.ndarray:
        """TV recovery of every row of ``Y`` from start ``S0`` (default: clipped pseudo-inverse);
        with ``anchor`` and ``beta > 0`` (scalar or one weight per row) the objective gains
        ``beta/2 ||s - anchor||^2``."""
        h, w = self.shape  # type: ignore[misc]

        def forward(S: np.ndarray) -> np.ndarray:
            gx, gy = grad2d(S.reshape(-1, h, w))
            return np.concatenate([gx.reshape(len(S), -1), gy.reshape(len(S), -1)], axis=1)

        def adjoint(P: np.ndarray) -> np.ndarray:
            n = h * w
            return grad2d_adjoint(P[:, :n].reshape(-1, h, w), P[:, n:].reshape(-1, h, w)).reshape(len(P), n)

        return primal_dual_l1(
            Y, self.Phi, forward, adjoint, 8.0, self.lam, Y @ self.Phi_pinv.T if S0 is None else S0,
            box=(0.0, 1.0) if self.box else None, max_iter=self.max_iter, tol=self.tol,
            anchor=None if anchor is None else (anchor, _anchor_weight(beta, Y.shape[0])),
        )


def _anchor_weight(beta: float | np.ndarray, n_rows: int) -> float | np.ndarray:
    b = np.asarray(beta, dtype=np.float64)
    if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != n_rows) or not np.all(np.isfinite(b) & (b >= 0)):
        raise CSInputError(f"anchor weight beta must be a number >= 0 or one per row ({n_rows},), got {beta!r}")
    return float(b) if b.ndim == 0 else b
