"""Box-constrained least squares for every output unit of a layer at once.

Each column ``j`` of ``H`` defines the convex QP

    min_t  q_j(t) = 1/2 t^T G t - h_j^T t     s.t.  -B <= t <= B

with one shared SPD matrix ``G`` (the ``(n+1) x (n+1)`` Gram matrix of the layer input with a
ones column, plus a small proximal term).  Columns whose unconstrained minimiser lies in the
box are exact after one Cholesky solve.  The others are solved, all together, by Bertsekas'
projected Newton method (binding set = at a bound with the gradient pushing outwards, Newton
step on the free variables, Armijo search along the projection arc) when ``n+1`` is small
(batched ``(m, d, d)`` solves), else by monotone projected gradient with step ``1/lambda_max``.
Both start from the better of the previous value and the clipped unconstrained minimiser, and
never increase ``q``, so the weight block update never increases the augmented Lagrangian.

`box_ls_wide` solves the same problem when the layer is wider than the data (``n + 1 > N``)
without ever forming ``G``: with ``A = [H, 1]`` (``N x (n+1)``) and ``G = A^T A + eps I``,
the unconstrained minimiser of ``1/2 t^T G t - (A^T y + eps t0)^T t`` is, by Woodbury,
``t = t0 + A^T (A A^T + eps I)^{-1} (y - A t0)`` (an ``N x N`` solve: O(N^2 n) instead of the
O(n^3) Cholesky of ``G``, and O(N n) memory instead of O(n^2)), and projected gradient needs
only ``G t = A^T (A t) + eps t`` and ``lambda_max(G) = lambda_max(A A^T) + eps``.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .threads import small_factorisation


def _q(G: np.ndarray, H: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``q_j`` for every column of ``T``."""
    return 0.5 * np.einsum("ij,ij->j", T, G @ T) - np.einsum("ij,ij->j", H, T)


def box_qp(G: np.ndarray, H: np.ndarray, B: float | None, T0: np.ndarray, *,
           newton_dim: int = 64, iters: int = 100, tol: float = 1e-13) -> np.ndarray:
    """Minimise ``q_j`` over the box for every column of ``H`` (``d x m``); ``T0`` is the
    current (feasible) value, used as a fallback start.  Returns ``d x m`` float64."""
    if B is not None and G.shape[0] <= ENUMERATE_DIM:
        return _enumerate_faces(G, H, B)  # the all-free face is the unconstrained solve
    with small_factorisation(G.shape[0]):
        if G.shape[0] <= newton_dim:
            T = np.linalg.solve(G, H)  # small systems: LAPACK gesv has the least call overhead
        else:
            T = cho_solve(cho_factor(G, lower=False, check_finite=False), H, check_finite=False)
    if B is None:
        return T
    bad = np.flatnonzero(np.abs(T).max(axis=0) > B)
    if bad.size == 0:
        return T
    Hb = H[:, bad]
    Tc = np.clip(T[:, bad], -B, B)
    T0b = np.clip(T0[:, bad], -B, B)
    start = np.where(_q(G, Hb, Tc) <= _q(G, Hb, T0b), Tc, T0b)  # column-wise choice
    with small_factorisation(G.shape[0]):
        if G.shape[0] <= newton_dim:
            sol = _projected_newton(G, Hb, B, start, iters, tol)
        else:
            sol = _projected_gradient(G, Hb, B, start, iters, tol)
    T[:, bad] = sol
    return T


#: up to this many variables per column the box QP is solved by enumerating all 3^d faces
ENUMERATE_DIM = 4


@cache
def _faces(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``3^d`` sign patterns in {-1, 0, 1}^d (0 = free variable) as floats ``(3^d, d)``, the
    free-variable indicator and the outer product of it (the mask of the reduced systems)."""
    grids = np.meshgrid(*([np.array([-1.0, 0.0, 1.0])] * d), indexing="ij")
    S = np.stack([g.reshape(-1) for g in grids], axis=1)
    free = (S == 0).astype(float)
    return S, free, free[:, :, None] * free[:, None, :]


def _enumerate_faces(G: np.ndarray, H: np.ndarray, B: float) -> np.ndarray:
    """Exact solution for tiny ``d``: the minimiser of a convex QP over a box is the minimiser of
    ``q`` restricted to the affine hull of the face containing it, so the best *feasible* face
    minimiser over all ``3^d`` faces is optimal.  One batched solve of ``(3^d, d, d)`` systems."""
    d, m = H.shape
    S, free, outer = _faces(d)
    fixed_val = S * B  # F x d
    M = G[None, :, :] * outer
    idx = np.arange(d)
    M[:, idx, idx] += 1.0 - free
    # rhs on free rows: h - G theta_fixed; on fixed rows: the bound value
    rhs = free[:, :, None] * (H[None, :, :] - (fixed_val @ G)[:, :, None]) + fixed_val[:, :, None]
    theta = np.linalg.solve(M, rhs)  # F x d x m
    feas = np.all(np.abs(theta) <= B * (1 + 1e-12), axis=1)  # F x m
    qv = 0.5 * np.einsum("fim,ij,fjm->fm", theta, G, theta) - np.einsum("im,fim->fm", H, theta)
    qv = np.where(feas, qv, np.inf)
    best = np.argmin(qv, axis=0)
    return np.clip(theta[best, :, np.arange(m)].T, -B, B)


def box_ls_wide(H: np.ndarray, Y: np.ndarray, B: float | None, T0: np.ndarray, eps: float, *,
                iters: int = 100, tol: float = 1e-13) -> np.ndarray:
    """``min_t 1/2 ||A t - y_j||^2 + eps/2 ||t - t0_j||^2`` over ``|t| <= B`` for every column
    ``y_j`` of ``Y`` (``N x m``), ``A = [H, 1]``, without forming ``A^T A`` (see the module
    docstring); the same minimiser as `box_qp` on ``G = A^T A + eps I``, ``h = A^T y + eps t0``.
    Returns ``(n+1) x m`` float64."""
    N, n = H.shape
    K = H @ H.T + 1.0  # A A^T, N x N (the ones column adds 1 everywhere)
    K[np.diag_indices(N)] += eps
    R = Y - (H @ T0[:n] + T0[n])  # residual of the prior t0
    C = cho_solve(cho_factor(K, lower=False, check_finite=False), R, check_finite=False)  # N x m
    T = T0 + np.vstack([H.T @ C, C.sum(axis=0, keepdims=True)])
    if B is None:
        return T
    bad = np.flatnonzero(np.abs(T).max(axis=0) > B)
    if bad.size == 0:
        return T
    Yb, T0b = Y[:, bad], T0[:, bad]

    def Gt(t: np.ndarray) -> np.ndarray:
        v = H @ t[:n] + t[n]
        return np.vstack([H.T @ v, v.sum(axis=0, keepdims=True)]) + eps * t

    hb = np.vstack([H.T @ Yb, Yb.sum(axis=0, keepdims=True)]) + eps * T0b

    def q(t: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("ij,ij->j", t, Gt(t)) - np.einsum("ij,ij->j", hb, t)

    Tc = np.clip(T[:, bad], -B, B)
    T0c = np.clip(T0b, -B, B)
    Tb = np.where(q(Tc) <= q(T0c), Tc, T0c)  # column-wise choice
    lam = float(np.linalg.eigvalsh(K)[-1])  # = lambda_max(G): A A^T and A^T A share nonzero eigenvalues
    step = 1.0 / max(lam, 1e-300)
    scale = max(float(np.einsum("ij,ij->j", H, H).max(initial=0.0)), float(N)) + eps  # max diag(G)
    for _ in range(iters):
        g = Gt(Tb) - hb
        if _pg_norm(Tb, g, B).max() <= tol * scale * max(B, 1.0):
            break
        Tb = np.clip(Tb - step * g, -B, B)
    T[:, bad] = Tb
    return T


def _pg_norm(T: np.ndarray, g: np.ndarray, B: float) -> np.ndarray:
    return np.abs(T - np.clip(T - g, -B, B)).max(axis=0)


def _projected_newton(G: np.ndarray, H: np.ndarray, B: float, T: np.ndarray, iters: int, tol: float) -> np.ndarray:
    d, m = T.shape
    scale = max(float(np.abs(np.diag(G)).max()), 1e-300)
    eps = 1e-12 * B
    T = T.copy()
    q = _q(G, H, T)
    active = np.arange(m)
    prev_binding = np.zeros((d, m), dtype=bool)
    exact = np.zeros(m, dtype=bool)
    for _ in range(iters):
        Ta, Ha = T[:, active], H[:, active]
        g = G @ Ta - Ha
        # done: projected gradient negligible, or a full Newton step on an unchanged face
        # (exact for a quadratic) left the free variables strictly inside the box
        done = (_pg_norm(Ta, g, B) <= tol * scale * max(B, 1.0)) | exact[active]
        if done.all():
            break
        keep = ~done
        active = active[keep]
        Ta, Ha, g = Ta[:, keep], Ha[:, keep], g[:, keep]
        binding = ((Ta <= -B + eps) & (g > 0)) | ((Ta >= B - eps) & (g < 0))
        free = ~binding  # d x k
        # batched reduced Newton systems: G on free x free, identity on binding coordinates
        fm = free.T.astype(float)  # k x d
        M = G[None, :, :] * fm[:, :, None] * fm[:, None, :]
        idx = np.arange(d)
        M[:, idx, idx] += 1.0 - fm
        p = np.linalg.solve(M, (-g * free).T[:, :, None])[:, :, 0].T  # d x k
        qa = q[active]
        alpha = np.ones(active.size)
        accepted = np.zeros(active.size, dtype=bool)
        Tnew = Ta.copy()
        unclipped = np.all(np.abs(Ta + p) <= B, axis=0)
        same_face = np.all(binding == prev_binding[:, active], axis=0)
        prev_binding[:, active] = binding
        for _ls in range(40):
            trial = np.clip(Ta + alpha * p, -B, B)
            qt = _q(G, Ha, trial)
            # Armijo along the projection arc, and never an increase of q (monotone)
            slope = np.minimum(np.einsum("ij,ij->j", g, trial - Ta), 0.0)
            ok = ~accepted & (qt <= qa + 1e-4 * slope)
            Tnew[:, ok] = trial[:, ok]
            qa = np.where(ok, qt, qa)
            accepted |= ok
            if accepted.all():
                break
            alpha = np.where(accepted, alpha, 0.5 * alpha)
        T[:, active] = Tnew
        q[active] = qa
        # after a full unclipped step the free variables solve the face problem exactly; if the
        # face did not change, the binding signs were already checked above: optimal
        exact[active] = accepted & (alpha == 1.0) & unclipped & same_face
        if not accepted.any():
            break
    return T


def _projected_gradient(G: np.ndarray, H: np.ndarray, B: float, T: np.ndarray, iters: int, tol: float) -> np.ndarray:
    # step 1/lambda_max keeps every step a descent step (monotone), so no line search is needed
    lam = float(np.linalg.eigvalsh(G)[-1])
    step = 1.0 / max(lam, 1e-300)
    scale = max(float(np.abs(np.diag(G)).max()), 1e-300)
    T = T.copy()
    for _ in range(iters):
        g = G @ T - H
        if _pg_norm(T, g, B).max() <= tol * scale * max(B, 1.0):
            break
        T = np.clip(T - step * g, -B, B)
    return T
