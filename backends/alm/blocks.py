"""Block updates of the augmented Lagrangian: each one exactly minimises ``L`` over one block
with the others fixed (so none increases ``L``), vectorised as GEMMs and elementwise passes.

Notation of :mod:`unrectify.backends.alm.state`; ``U_k = mu Lam_k``, ``A_l = X_{l-1} W_l^T + 1 b_l^T``.
Up to the constant factor ``1/(2 mu)`` the penalty part of ``L`` is ``sum_k ||C_k + U_k||^2``:

* weights ``(W_l, b_l)``: ``min ||[X_{l-1}, 1] Theta - (Z_l + U1_l)||^2`` over the box, i.e.
  box-constrained least squares with the ``(n_{l-1}+1)``-sized Gram matrix, plus a proximal
  term ``eps ||Theta - Theta_old||^2`` (``eps`` = 1e-10 of the mean Gram diagonal) that makes the
  system positive definite when a unit is dead, without which the minimiser is not unique;
* hidden ``Z`` (elementwise quadratic)::

      z = [(a - u1) + d (x + u2) + d (p - u3) - (1 - d)(q + u4)] / (1 + 2 d^2 + (1 - d)^2)

* ``D`` (elementwise quadratic ``3 z^2 d^2 + ...``, clipped to [0, 1]; unchanged where z = 0)::

      d = clip([(x + u2) + (p - u3) + (z + q + u4)] / (3 z), 0, 1)

* slacks: ``P = max(D Z + U3, 0)``, ``Q = max(-(1 - D) Z - U4, 0)``;
* hidden ``X_l`` couples ``C2_l`` and ``C1_{l+1}``; the normal equations give
  ``X = (D Z - U2 + (Z_{l+1} + U1_{l+1} - 1 b^T) W) (I + W^T W)^{-1}`` with ``W = W_{l+1}``;
* output ``Z_L`` with ``t = A_L - U1_L``: mse ``z = (2 mu y + t) / (2 mu + 1)`` (minimiser of
  ``(z - y)^2 + (z - t)^2 / (2 mu)``); mae ``z = y + soft(t - y, mu)`` (prox of ``|z - y|``).
"""

from __future__ import annotations

import numpy as np

from .boxls import box_qp
from .state import Context, State, affine, augmented_gram, layer_input, row_blocks
from .threads import small_factorisation


def update_weights(ctx: Context, st: State, l: int) -> None:
    """Exact box-constrained least-squares update of ``(W_l, b_l)`` (0-based ``l``)."""
    if l in ctx.frozen:
        return
    H = layer_input(ctx, st, l)
    Zl, U1 = (st.ZL, st.U1L) if l == len(st.weights) - 1 else (st.hidden[l].Z, st.hidden[l].U1)
    G = ctx.gram0.copy() if l == 0 else augmented_gram(H)
    n = H.shape[1]
    rhs = np.zeros((n + 1, Zl.shape[1]))
    # [H, 1]^T (Z + U1) accumulated over row blocks (no N x n_l temporary)
    for rows in row_blocks(H.shape[0], max(n, Zl.shape[1]), GEMM_BLOCK_ENTRIES):
        T = Zl[rows] + U1[rows]
        rhs[:n] += H[rows].T @ T
        rhs[n] += T.sum(axis=0, dtype=np.float64)
    W, b = st.weights[l]
    old = np.empty((n + 1, W.shape[0]))
    old[:n] = W.T
    old[n] = b
    diag = G.ravel()[:: n + 2]  # view of the diagonal
    eps = 1e-10 * max(float(diag.sum()) / (n + 1), 1e-300)
    diag += eps
    rhs += eps * old
    theta = box_qp(G, rhs, ctx.bound, old, newton_dim=ctx.box_newton_dim, iters=ctx.box_iters)
    st.weights[l] = (np.ascontiguousarray(theta[:n].T), theta[n].copy())


def update_hidden_zdpq(ctx: Context, st: State, l: int, A: np.ndarray) -> None:
    """Z, then D, then (P, Q) of hidden layer ``l``; ``A`` = current ``A_l`` (overwritten)."""
    h = st.hidden[l]
    for rows in row_blocks(*A.shape):
        _zdpq(A[rows], h.Z[rows], h.X[rows], h.D[rows], h.P[rows], h.Q[rows],
              h.U1[rows], h.U2[rows], h.U3[rows], h.U4[rows])


def _zdpq(A, Z, X, D, P, Q, U1, U2, U3, U4) -> None:
    """The closed forms on one block (all arguments are views, updated in place).  Both use
    ``S1 = X + U2 + P - U3`` and ``S2 = Q + U4``, which the Z and D steps leave unchanged."""
    S1 = X + U2
    S1 += P
    S1 -= U3
    S2 = Q + U4
    num = A
    num -= U1
    t = D * S1
    num += t
    om = 1.0 - D
    np.multiply(om, S2, out=t)
    num -= t
    # denominator 1 + 2 d^2 + (1 - d)^2 >= 5/3 > 0
    np.multiply(D, D, out=t)
    t *= 2.0
    om *= om
    t += om
    t += 1.0
    np.divide(num, t, out=Z)
    # D: minimiser of the quadratic in d, clipped; z = 0 leaves L independent of d
    np.add(S1, Z, out=t)
    t += S2
    nz = Z != 0
    np.multiply(Z, 3.0, out=num)
    np.divide(t, num, out=num, where=nz)
    np.clip(num, 0.0, 1.0, out=num)
    np.copyto(D, num, where=nz)
    # slacks
    np.multiply(D, Z, out=t)
    np.add(t, U3, out=P)
    np.maximum(P, 0.0, out=P)
    t -= Z
    t -= U4
    np.maximum(t, 0.0, out=Q)


def update_hidden_x(ctx: Context, st: State, l: int) -> None:
    """Exact update of ``X_l`` (hidden layer ``l``) from ``C2_l`` and ``C1_{l+1}``."""
    h = st.hidden[l]
    W, b = st.weights[l + 1]
    nxt_Z, nxt_U = (st.ZL, st.U1L) if l + 1 == len(st.weights) - 1 else (st.hidden[l + 1].Z, st.hidden[l + 1].U1)
    n = W.shape[1]
    M = W.T @ W
    M[np.diag_indices(n)] += 1.0
    # X = rhs M^{-1}: M is SPD and small (n x n), so invert it once and apply by one GEMM
    with small_factorisation(n):
        Minv = np.linalg.inv(M).astype(ctx.dtype, copy=False)
    Wd = W.astype(ctx.dtype, copy=False)
    bd = b.astype(ctx.dtype, copy=False)
    # row blocks: the rhs temporaries stay in cache between the two GEMMs and the elementwise
    # passes (whole-array temporaries were N x n_{l+1} arrays, page-faulted on every sweep)
    for rows in row_blocks(h.X.shape[0], max(n, W.shape[0]), GEMM_BLOCK_ENTRIES):
        R = nxt_Z[rows] + nxt_U[rows]
        R -= bd
        rhs = R @ Wd
        t = h.D[rows] * h.Z[rows]
        rhs += t
        rhs -= h.U2[rows]
        np.matmul(rhs, Minv, out=h.X[rows])


#: entries per row block of kernels that mix GEMMs with elementwise passes (larger than the
#: elementwise blocks so that each GEMM still has a few hundred rows)
GEMM_BLOCK_ENTRIES = 1 << 18


def update_output(ctx: Context, st: State, A: np.ndarray) -> None:
    """Exact update of ``Z_L`` given ``A = A_L`` (overwritten)."""
    t = A
    t -= st.U1L
    mu = st.mu
    if ctx.loss == "mse":
        t += (2.0 * mu) * ctx.Y
        t /= 2.0 * mu + 1.0
        st.ZL[...] = t
    else:
        t -= ctx.Y
        # soft threshold at mu, then shift back by y
        np.copyto(st.ZL, ctx.Y)
        st.ZL += np.sign(t) * np.maximum(np.abs(t) - mu, 0.0)


def sweep(ctx: Context, st: State) -> None:
    """One forward block-coordinate sweep: for each layer, weights, then (hidden) Z, D, P, Q, X,
    or (output) Z_L."""
    L = len(st.weights)
    for l in range(L):
        update_weights(ctx, st, l)
        A = affine(layer_input(ctx, st, l), *st.weights[l], ctx.dtype)
        if l < L - 1:
            update_hidden_zdpq(ctx, st, l, A)
            del A
            update_hidden_x(ctx, st, l)
        else:
            update_output(ctx, st, A)
