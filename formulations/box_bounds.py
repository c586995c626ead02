r"""CROWN bounds of one network output over many input boxes at once (numpy only, no solver).

For boxes ``[lo_k, hi_k]`` (rows of ``(K, n_0)`` arrays) and a ReLU network
``z_1 = W_1 x + b_1``, ``z_{l+1} = W_{l+1} relu(z_l) + b_{l+1}``, every box gets

1. ``z_1`` bounds by interval arithmetic (exact for one affine layer);
2. for each later layer, bounds by CROWN back-substitution: with bounds ``[L, U]`` of ``z_j``,
   each ReLU is enclosed by lines ``s_l z <= relu(z) <= s_u z + t_u`` (identity if ``L >= 0``,
   zero if ``U <= 0``, else ``s_u = U / (U - L)``, ``t_u = -L U / (U - L)`` and
   ``s_l = 1[U >= -L]``); substituting the lines layer by layer (upper line where the
   coefficient is positive, lower line where it is negative, for an upper bound) gives a linear
   function ``lam . x + c`` with ``z <= lam . x + c`` on the box, maximised at the vertex
   ``x_i = hi_i if lam_i > 0 else lo_i``; every bound is intersected with interval arithmetic
   on the previous layer's bounds;
3. for the chosen output row ``r`` (sign ``+1`` to bound ``max``, ``-1`` for ``min``), the same
   back-substitution gives ``sign * z_L[r] <= lam_k . x + c_k`` on box ``k``.

Every line is valid on its box, so every bound is (up to floating-point rounding, which
:data:`ROUND_SLACK` covers) a true bound; for a box on which every unit is stable the bound is
the exact maximum of the (then affine) output.  The batched form is the work-horse of the
input-space branch and bound in :mod:`unrectify.backends.input_bab`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: relative slack added to every bound: float64 rounding in the back-substitution is far below it
ROUND_SLACK = 1e-10


def relu_lines(L: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(s_l, s_u, t_u)`` with ``s_l z <= relu(z) <= s_u z + t_u`` on ``[L, U]`` (elementwise)."""
    active, inactive = L >= 0, U <= 0
    unstable = ~(active | inactive)
    width = np.where(unstable, U - L, 1.0)
    su = np.where(active, 1.0, np.where(unstable, U / width, 0.0))
    tu = np.where(unstable, -L * U / width, 0.0)
    sl = np.where(active, 1.0, np.where(unstable, (U >= -L).astype(float), 0.0))
    return sl, su, tu


def affine_range(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact range of ``W x + b`` over the box ``[lo, hi]`` (centre-radius form); ``lo``, ``hi``
    of shape ``(n,)`` or ``(K, n)`` (one box per row)."""
    centre = ((lo + hi) * 0.5) @ W.T + b
    radius = ((hi - lo) * 0.5) @ np.abs(W).T
    return centre - radius, centre + radius


def _backsubstitute(weights: Sequence[tuple[np.ndarray, np.ndarray]], lam: np.ndarray, c: np.ndarray,
                    relax: list, upper: bool) -> tuple[np.ndarray, np.ndarray]:
    """Substitute the ReLU lines of layers ``len(relax)-1 .. 0`` into ``lam . relu(z_j) + c``:
    returns ``(lam_x, c)`` with the bound linear in the input (``lam`` ``(K, r, n_j)``)."""
    for j in range(len(relax) - 1, -1, -1):
        sl, su, tu = relax[j]
        pos, neg = np.maximum(lam, 0.0), np.minimum(lam, 0.0)
        # upper bound: upper line under positive coefficients, lower line under negative ones
        hi_line, lo_line = (su, sl) if upper else (sl, su)
        c = c + np.einsum("krj,kj->kr", pos if upper else neg, tu)
        g = pos * hi_line[:, None, :] + neg * lo_line[:, None, :]
        W, b = weights[j]
        c = c + g @ b
        lam = g @ W
    return lam, c


def _linear_max(lam: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``max`` over each box of ``lam . x + c`` (``lam`` ``(K, r, n_0)``)."""
    return c + np.einsum("krj,kj->kr", np.maximum(lam, 0.0), hi) + np.einsum("krj,kj->kr", np.minimum(lam, 0.0), lo)


def output_upper_bounds(weights: Sequence[tuple[np.ndarray, np.ndarray]], lo: np.ndarray, hi: np.ndarray,
                        row: int = 0, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CROWN upper bounds of ``sign * z_L[row]`` over each box (module docstring).

    Returns ``(ub, lam, vertex)``: ``ub`` ``(K,)`` the bound (with :data:`ROUND_SLACK`),
    ``lam`` ``(K, n_0)`` the input coefficients of the linear bound (its sensitivity to each
    input, used to choose the branching coordinate), ``vertex`` ``(K, n_0)`` the box corner that
    maximises the linear bound (a good candidate input)."""
    lo = np.atleast_2d(np.asarray(lo, dtype=float))
    hi = np.atleast_2d(np.asarray(hi, dtype=float))
    K = lo.shape[0]
    W1, b1 = weights[0]
    bounds = [affine_range(W1, b1, lo, hi)]
    relax: list = []
    n_layers = len(weights)
    for k in range(1, n_layers):
        L, U = bounds[-1]
        relax.append(relu_lines(L, U))
        W, b = weights[k]
        if k == n_layers - 1:
            W, b = sign * W[row:row + 1], sign * b[row:row + 1]
        lam0 = np.broadcast_to(W, (K,) + W.shape)
        c0 = np.broadcast_to(b, (K, len(b)))
        lamU, cU = _backsubstitute(weights, lam0, c0, relax, upper=True)
        up = _linear_max(lamU, cU, lo, hi)
        if k == n_layers - 1:
            lam = lamU[:, 0, :]
            ub = np.minimum(up[:, 0], affine_range(W, b, np.maximum(L, 0.0), np.maximum(U, 0.0))[1][:, 0])
            ub = ub + ROUND_SLACK * (1.0 + np.abs(ub))
            return ub, lam, np.where(lam > 0, hi, lo)
        lamL, cL = _backsubstitute(weights, lam0, c0, relax, upper=False)
        low = -_linear_max(-lamL, -cL, lo, hi)
        iL, iU = affine_range(W, b, np.maximum(L, 0.0), np.maximum(U, 0.0))
        bounds.append((np.maximum(low, iL), np.minimum(up, iU)))
    # one affine layer: the exact maximum over each box
    W, b = sign * W1[row:row + 1], sign * b1[row:row + 1]
    lam = np.broadcast_to(W, (K,) + W.shape)
    ub = _linear_max(lam, np.broadcast_to(b, (K, 1)), lo, hi)[:, 0]
    return ub + ROUND_SLACK * (1.0 + np.abs(ub)), lam[:, 0, :].copy(), np.where(lam[:, 0, :] > 0, hi, lo)


__all__ = ["ROUND_SLACK", "affine_range", "output_upper_bounds", "relu_lines"]
