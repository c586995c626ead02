"""l1 recovery in a sparsifying basis (DCT or wavelet): ``s = Psi c`` with sparse ``c``.

With ``M = Phi Psi`` and per-image ``lambda_i = lam * ||M^T y_i||_inf`` (``lam`` is
relative: ``lambda_i >= ||M^T y_i||_inf`` would give ``c = 0``):

* ``form="lasso"``:       ``min_c 1/2 ||M c - y||_2^2 + lambda ||c||_1``
* ``form="constrained"``: ``min_c ||c||_1  s.t.  ||M c - y||_2 <= eps`` (basis pursuit
  denoising; ``eps = 0`` is basis pursuit ``M c = y``; cvxpy only)

``box=True`` adds ``0 <= Psi c <= 1`` (the data range; worth 1-2 dB on digits).

``solver="fista"`` (default) runs FISTA on all images at once (rows of an ``(N, k)``
coefficient matrix) with a geometric continuation on lambda during the first half of
the iterations (lasso form, no box); ``solver="pdhg"`` solves the lasso form in analysis
form ``min lambda ||A s||_1 + 1/2 ||Phi s - y||^2`` (``A = Psi^+``, equal to the synthesis
form for orthonormal bases) with the box, by the vectorised Chambolle--Pock solver of
:mod:`~unrectify.cs.decoders.primal_dual`; ``solver="cvxpy"`` solves one cvxpy problem per
batch of images over a ``(k, B)`` matrix variable (either form, box optional).
Reconstructions ``Psi c`` are clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSDependencyError, CSInputError
from .bases import sparsifying_basis
from .base import Decoder, register_decoder
from .primal_dual import primal_dual_l1


def soft_threshold(V: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Elementwise ``sign(v) max(|v| - t, 0)`` (prox of ``t ||.||_1``)."""
    return np.sign(V) * np.maximum(np.abs(V) - t, 0.0)


def fista_lasso(
    M: np.ndarray, Y: np.ndarray, lam: np.ndarray, max_iter: int = 500, tol: float = 1e-7,
    continuation: bool = True,
) -> np.ndarray:
    """FISTA for ``min_C 1/2 ||C M^T - Y||_F^2 + sum_i lam_i ||C_i||_1`` (rows = images).

    ``M`` is ``(m, k)``, ``Y`` ``(N, m)``, ``lam`` ``(N,)``; returns ``C`` ``(N, k)``.
    Step ``1/L`` with ``L = ||M||_2^2``. With ``continuation`` lambda decreases
    geometrically from ``||M^T y_i||_inf`` to ``lam_i`` over the first half of the
    iterations; stops when the relative change of ``C`` falls below ``tol``.
    """
    N, k = Y.shape[0], M.shape[1]
    L = float(np.linalg.norm(M, 2) ** 2)
    if L == 0.0:
        return np.zeros((N, k))
    MtY = Y @ M
    lam = np.asarray(lam, dtype=np.float64).reshape(N, 1)
    lam_top = np.maximum(np.abs(MtY).max(axis=1, keepdims=True), lam)
    ratio = np.where(lam > 0, lam_top / np.where(lam > 0, lam, 1.0), 1.0)
    n_cont = max_iter // 2 if continuation else 0
    use_gram = k <= 2 * M.shape[0]
    G = M.T @ M if use_gram else None
    C = np.zeros((N, k))
    Z = C
    t = 1.0
    for it in range(max_iter):
        grad = (Z @ G if use_gram else (Z @ M.T) @ M) - MtY
        frac = max(0.0, 1.0 - it / n_cont) if n_cont else 0.0
        lam_it = lam * ratio**frac
        C_new = soft_threshold(Z - grad / L, lam_it / L)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Z = C_new + ((t - 1.0) / t_new) * (C_new - C)
        if it >= n_cont and it % 10 == 0:
            change = np.linalg.norm(C_new - C) / max(np.linalg.norm(C_new), 1e-300)
            if change < tol:
                C = C_new
                break
        C, t = C_new, t_new
    return C


def cvxpy_l1(
    M: np.ndarray, Y: np.ndarray, lam: np.ndarray | None = None, eps: float = 0.0,
    form: str = "lasso", batch_size: int = 64, solver: str | None = None,
    Psi: np.ndarray | None = None, **solver_options: Any,
) -> np.ndarray:
    """cvxpy l1 recovery of a batch of images at a time over a ``(k, B)`` matrix variable.

    ``form="lasso"``: ``min 1/2 ||M C - Y^T||_F^2 + sum_j lam_j ||C_j||_1``;
    ``form="constrained"``: ``min sum |C|  s.t. ||M C_j - y_j||_2 <= eps`` for every column.
    With ``Psi`` given, adds the box ``0 <= Psi C <= 1``. Returns ``C`` as ``(N, k)``.
    """
    try:
        import cvxpy as cp
    except ModuleNotFoundError as exc:
        raise CSDependencyError("solver='cvxpy' needs cvxpy: pip install cvxpy") from exc
    if solver is None:
        solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else None
    N, k = Y.shape[0], M.shape[1]
    out = np.zeros((N, k))
    cache: dict[int, tuple[Any, Any, Any, Any]] = {}
    for start in range(0, N, batch_size):
        Yb = Y[start : start + batch_size]
        B = Yb.shape[0]
        if B not in cache:
            C = cp.Variable((k, B))
            Yp = cp.Parameter((M.shape[0], B))
            lp = cp.Parameter(B, nonneg=True)
            R = M @ C - Yp
            cons = [] if Psi is None else [Psi @ C >= 0, Psi @ C <= 1]
            if form == "lasso":
                obj = 0.5 * cp.sum_squares(R) + cp.sum(cp.abs(C) @ lp)
            else:
                obj = cp.sum(cp.abs(C))
                cons.append(cp.norm(R, 2, axis=0) <= eps if eps > 0 else R == 0)
            prob = cp.Problem(cp.Minimize(obj), cons)
            cache[B] = (prob, C, Yp, lp)
        prob, C, Yp, lp = cache[B]
        Yp.value = Yb.T
        lp.value = np.zeros(B) if lam is None else np.asarray(lam[start : start + B], dtype=np.float64)
        prob.solve(solver=solver, **solver_options)
        if C.value is None:
            raise RuntimeError(f"cvxpy l1 solve failed with status {prob.status!r}")
        out[start : start + B] = np.asarray(C.value).T
    return out


@register_decoder("l1")
class L1Decoder(Decoder):
    """l1 recovery in a DCT (default) or wavelet basis; FISTA (default), PDHG or cvxpy.

    Options: ``basis`` ('dct' | 'wavelet'), ``wavelet`` (PyWavelets name, 'haar'),
    ``level`` (None = deepest orthonormal level <= 3), ``solver`` ('fista' | 'pdhg' |
    'cvxpy'), ``form`` ('lasso' | 'constrained'; constrained needs cvxpy), ``lam``
    (relative lasso weight; default 1e-3, 1e-2 for pdhg, which converges slowly for tiny
    weights), ``eps`` (constrained residual bound), ``box`` (0 <= s <= 1;
    pdhg and cvxpy only), ``max_iter``/``tol`` (FISTA, PDHG), ``continuation`` (FISTA),
    ``batch_size``/``cvxpy_solver`` (cvxpy).
    """

    name = "l1"

    def __init__(
        self, Phi: np.ndarray, *, basis: str = "dct", wavelet: str = "haar",
        level: int | None = None, solver: str = "fista", form: str = "lasso",
        lam: float | None = None, eps: float = 0.0, max_iter: int = 500, tol: float = 1e-7,
        continuation: bool = True, box: bool = False, batch_size: int = 64,
        cvxpy_solver: str | None = None, shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        if self.shape is None:
            raise CSInputError(f"l1 decoder needs the image shape for n = {self.n} (pass shape=)")
        if solver not in ("fista", "pdhg", "cvxpy"):
            raise CSInputError(f"unknown l1 solver {solver!r}; valid: fista, pdhg, cvxpy")
        if form not in ("lasso", "constrained"):
            raise CSInputError(f"unknown l1 form {form!r}; valid: lasso, constrained")
        if form == "constrained" and solver != "cvxpy":
            raise CSInputError("l1 form='constrained' needs solver='cvxpy'")
        if box and solver == "fista":
            raise CSInputError("l1 box=True needs solver='pdhg' or solver='cvxpy'")
        if lam is None:
            lam = 1e-2 if solver == "pdhg" else 1e-3
        if not (np.isfinite(lam) and lam >= 0) or not (np.isfinite(eps) and eps >= 0):
            raise CSInputError(f"l1 lam and eps must be finite and >= 0, got {lam!r}, {eps!r}")
        if int(max_iter) < 1 or int(batch_size) < 1:
            raise CSInputError("l1 max_iter and batch_size must be >= 1")
        if not (np.isfinite(tol) and tol >= 0):
            raise CSInputError(f"l1 tol must be finite and >= 0, got {tol!r}")
        if cvxpy_solver is not None:
            if solver != "cvxpy":
                raise CSInputError(f"l1 cvxpy_solver applies to solver='cvxpy' only (solver is {solver!r})")
            import cvxpy as cp

            if str(cvxpy_solver).upper() not in cp.installed_solvers():
                raise CSInputError(f"l1 cvxpy_solver {cvxpy_solver!r} is not installed; installed: "
                                   f"{', '.join(cp.installed_solvers())}")
        self.basis, self.solver, self.form = basis, solver, form
        self.lam, self.eps = float(lam), float(eps)
        self.max_iter, self.tol, self.continuation = int(max_iter), float(tol), bool(continuation)
        self.box, self.batch_size, self.cvxpy_solver = bool(box), int(batch_size), cvxpy_solver
        self.Psi = sparsifying_basis(basis, self.shape, wavelet, level)
        self.M = self.Phi @ self.Psi
        self._A: np.ndarray | None = None

    def lambdas(self, Y: np.ndarray) -> np.ndarray:
        """Per-image lasso weights ``lam * ||M^T y_i||_inf``, shape ``(N,)``."""
        return self.lam * np.abs(Y @ self.M).max(axis=1)

    @property
    def analysis(self) -> np.ndarray:
        """Analysis matrix ``A = Psi^+`` (``Psi^T`` for orthonormal bases), ``(k, n)``."""
        if self._A is None:
            k = self.Psi.shape[1]
            orth = k == self.n and np.allclose(self.Psi.T @ self.Psi, np.eye(k), atol=1e-10)
            self._A = self.Psi.T if orth else np.linalg.pinv(self.Psi)
        return self._A

    def coefficients(self, Y: np.ndarray) -> np.ndarray:
        """Basis coefficients ``C`` ``(N, k)`` with ``S_hat = C Psi^T`` (before clipping)."""
        Y = self._check_Y(Y)
        if self.solver == "fista":
            return fista_lasso(self.M, Y, self.lambdas(Y), self.max_iter, self.tol, self.continuation)
        if self.solver == "pdhg":
            return self._pdhg_images(Y) @ self.analysis.T
        lam = self.lambdas(Y) if self.form == "lasso" else None
        return cvxpy_l1(self.M, Y, lam, self.eps, self.form, self.batch_size, self.cvxpy_solver,
                        Psi=self.Psi if self.box else None)

    def _pdhg_images(self, Y: np.ndarray) -> np.ndarray:
        A = self.analysis
        S0 = Y @ np.linalg.pinv(self.Phi).T
        return primal_dual_l1(
            Y, self.Phi, lambda S: S @ A.T, lambda P: P @ A, float(np.linalg.norm(A, 2) ** 2),
            self.lambdas(Y), S0, box=(0.0, 1.0) if self.box else None,
            max_iter=self.max_iter, tol=self.tol,
        )

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        if self.solver == "pdhg":
            return self._pdhg_images(Y)
        return self.coefficients(Y) @ self.Psi.T
