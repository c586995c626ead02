"""Vectorised Chambolle--Pock primal-dual solver for analysis-l1 recovery with a box.

Solves, for all images at once (rows of ``S``)::

    min_s  lam * ||K_a s||_1 + 1/2 ||Phi s - y||_2^2 + i_[lo, hi](s)

as ``min_s F(K s) + G(s)`` with ``K = [K_a; Phi]``, ``F(p, q) = lam ||p||_1 + 1/2 ||q - y||^2``
and ``G`` the box indicator (or 0 when ``box`` is None). Iteration (``tau sigma ||K||^2 < 1``)::

    p <- clip(p + sigma K_a s_bar, -lam, lam)
    q <- (q + sigma (Phi s_bar - y)) / (1 + sigma)
    s_new <- P_box(s - tau (K_a^T p + Phi^T q)),   s_bar <- 2 s_new - s

``K_a`` is the finite-difference gradient for TV, or an analysis transform ``Psi^+``
(``Psi^T`` for orthonormal bases) for l1.

With an ``anchor`` ``(X0, beta)`` (``beta`` scalar or per image), ``G`` gains ``beta/2 ||s - x0||^2`` (a learned estimate as a
prior); its prox with the box is ``P_box((v + tau beta x0) / (1 + tau beta))``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def primal_dual_l1(
    Y: np.ndarray,
    Phi: np.ndarray,
    forward: Callable[[np.ndarray], np.ndarray],
    adjoint: Callable[[np.ndarray], np.ndarray],
    norm_Ka_sq: float,
    lam: np.ndarray | float,
    S0: np.ndarray,
    box: tuple[float, float] | None = (0.0, 1.0),
    max_iter: int = 500,
    tol: float = 1e-6,
    anchor: tuple[np.ndarray, float | np.ndarray] | None = None,
) -> np.ndarray:
    """Run Chambolle--Pock from ``S0`` (``(N, n)``); ``lam`` scalar or per image ``(N,)``.

    ``forward(S)`` maps ``(N, n)`` to ``K_a S`` as an ``(N, k)`` array (rows = images),
    ``adjoint`` maps ``(N, k)`` back to ``(N, n)``.
    Stops after ``max_iter`` iterations or when the relative change of ``S`` over an
    iteration falls below ``tol`` (checked every 10 iterations).
    """
    N = Y.shape[0]
    step = 0.99 / np.sqrt(norm_Ka_sq + np.linalg.norm(Phi, 2) ** 2)
    tau = sigma = step
    S = S0.copy()
    if box is not None:
        S = np.clip(S, *box)
    S_bar = S.copy()
    P = np.zeros_like(forward(S))
    lam_b = np.asarray(lam, dtype=np.float64)
    if lam_b.ndim == 1:  # per-image weights
        lam_b = lam_b.reshape(N, 1)
    q = np.zeros_like(Y)
    a_beta = None if anchor is None else np.asarray(anchor[1], dtype=np.float64)
    if a_beta is not None and a_beta.ndim == 1:  # per-image anchor weights
        a_beta = a_beta.reshape(N, 1)
    if a_beta is not None and not np.any(a_beta > 0):
        a_beta = None
    for it in range(max_iter):
        P = np.clip(P + sigma * forward(S_bar), -lam_b, lam_b)
        q = (q + sigma * (S_bar @ Phi.T - Y)) / (1.0 + sigma)
        S_new = S - tau * (adjoint(P) + q @ Phi)
        if a_beta is not None:
            S_new = (S_new + (tau * a_beta) * anchor[0]) / (1.0 + tau * a_beta)
        if box is not None:
            S_new = np.clip(S_new, *box)
        S_bar = 2.0 * S_new - S
        done = False
        if it % 10 == 9:
            change = np.linalg.norm(S_new - S) / max(np.linalg.norm(S_new), 1e-300)
            done = change < tol
        S = S_new
        if done:
            break
    return S

