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
   back-substitution gives ``sign * z_L[r] <= lam_k . x + c_k`` on box ``k``, once with CROWN's
   lower slopes and once with slope 0 on every unstable unit; the box keeps the smaller bound;
4. optionally (``alpha_steps``), the lower slopes ``a_j in [0, 1]`` of the unstable units in that
   output bound are optimised per box by projected gradient steps (alpha-CROWN with the hidden
   layers' bounds fixed): ``a z <= relu(z)`` holds on ``[L, U]`` for every such ``a``, so every
   iterate is a valid bound and the box keeps the smallest.

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


def _padded(ub: np.ndarray) -> np.ndarray:
    """``ub`` loosened by :data:`ROUND_SLACK` relative (and absolute near zero): float rounding
    in the bound's GEMMs can never put a true maximum above it."""
    return ub + ROUND_SLACK * (1.0 + np.abs(ub))


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


def backsubstitute(weights: Sequence[tuple[np.ndarray, np.ndarray]], lam: np.ndarray, c: np.ndarray,
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


#: entries of one precomputed first-step product ``M`` (8 bytes each) above which
#: :class:`BoxBounder` falls back to the batched matrix products of :func:`backsubstitute`
FIRST_STEP_LIMIT = 4_000_000


class BoxBounder:
    r"""CROWN upper bounds of ``sign * z_L[row]`` over many boxes (module docstring), with the
    box-independent part of the work done once per network.

    The first back-substitution step of every hidden layer's bounds starts from the layer's own weights
    ``W`` (the same for every box), so ``lam_k = W^+ diag(s_k) W_prev + W^- diag(s'_k) W_prev``
    for the box's line slopes ``s_k, s'_k`` is one matrix product of the ``(K, n_j)`` slopes with
    the precomputed ``M^\pm[j, (r, i)] = W^\pm[r, j] W_prev[j, i]`` (a GEMM for all boxes at
    once, instead of ``K`` products of ``(r, n_j)`` by ``(n_j, n_{j-1})``).  Layers whose ``M``
    would exceed :data:`FIRST_STEP_LIMIT` entries use the general path.  The bounds are the same
    as the general path's up to rounding."""

    def __init__(self, weights: Sequence[tuple[np.ndarray, np.ndarray]], row: int = 0, sign: float = 1.0):
        self.weights = [(np.asarray(W, dtype=float), np.asarray(b, dtype=float).reshape(-1)) for W, b in weights]
        n = len(self.weights)
        self.heads: list = []       # per layer k >= 1 the rows that are bounded: (W, b)
        self.first: list = []       # per layer k >= 1 the first step's products, or None
        for k in range(1, n):
            W, b = self.weights[k]
            if k == n - 1:
                W, b = sign * W[row:row + 1], sign * b[row:row + 1]
            self.heads.append((W, b))
            Wp, bp = self.weights[k - 1]
            if k == n - 1 or W.size * Wp.shape[1] > FIRST_STEP_LIMIT:     # one output row: cheap anyway
                self.first.append(None)
                continue
            Wpos, Wneg = np.maximum(W, 0.0), np.minimum(W, 0.0)
            Mp = (Wpos.T[:, :, None] * Wp[:, None, :]).reshape(W.shape[1], -1)
            Mn = (Wneg.T[:, :, None] * Wp[:, None, :]).reshape(W.shape[1], -1)
            self.first.append((Wpos.T.copy(), Wneg.T.copy(), Mp, Mn, Mp + Mn, (Wpos * bp).T.copy(), (Wneg * bp).T.copy()))
        self.last = (sign * self.weights[0][0][row:row + 1], sign * self.weights[0][1][row:row + 1])
        # the largest temporary per box, in floats: a layer's (rows, width) line coefficients
        widths = [W.shape[1] for W, _ in self.weights]
        self.box_floats = max([1, *widths] + [W.shape[0] * max(widths[:k] if f is not None else widths[:k + 1])
                                             for k, ((W, _), f) in enumerate(zip(self.heads, self.first), start=1)])

    def _first_step(self, k: int, lines, K: int) -> list:
        """:func:`backsubstitute`'s first step (through layer ``k-1``'s ReLUs) from layer ``k``'s
        weights, for the upper and the lower bound: ``[(lam, c), (lam, c)]``.  Both share
        ``sl @ (M^+ + M^-)``: the slopes differ only on unstable units."""
        Wpos_t, Wneg_t, Mp, Mn, M, Bp, Bn = self.first[k - 1]
        W, b = self.heads[k - 1]
        sl, su, tu = lines
        shape = (K, W.shape[0], -1)
        common, gap = sl @ M, su - sl
        return [((common + gap @ Mp).reshape(shape), b + tu @ Wpos_t + su @ Bp + sl @ Bn),
                ((common + gap @ Mn).reshape(shape), b + tu @ Wneg_t + sl @ Bp + su @ Bn)]

    def _output_line(self, relax: list, slopes: list, mid: np.ndarray, rad: np.ndarray, grad: bool = False) -> tuple:
        """The output row's upper bound and input coefficients with lower ReLU slopes ``slopes``
        (one ``(K, n_j)`` array per layer; one row, so every step is a plain matrix product);
        with ``grad``, also the bound's gradient in the slopes (reverse mode by hand: the bound
        is piecewise linear in them; entries of stable units are meaningless)."""
        W, b = self.heads[-1]
        lam, c = np.broadcast_to(W[0], (mid.shape[0], W.shape[1])), np.full(mid.shape[0], b[0])
        signs = []
        for j in range(len(relax) - 1, -1, -1):
            _, su, tu = relax[j]
            pos, neg = np.maximum(lam, 0.0), np.minimum(lam, 0.0)
            if grad:
                signs.append((lam > 0, neg))
            g = pos * su + neg * slopes[j]
            Wj, bj = self.weights[j]
            c = c + np.einsum("kj,kj->k", pos, tu) + g @ bj
            lam = g @ Wj
        ub = c + np.einsum("ki,ki->k", lam, mid) + np.einsum("ki,ki->k", np.abs(lam), rad)
        if not grad:
            return ub, lam
        G, grads = mid + np.sign(lam) * rad, [None] * len(relax)
        for j in range(len(relax)):         # back from the input: d ub / d g_j, then d / d lam
            _, su, tu = relax[j]
            Wj, bj = self.weights[j]
            dg = G @ Wj.T + bj
            up, neg = signs[len(relax) - 1 - j]
            grads[j] = dg * neg
            G = np.where(up, dg * su + tu, dg * slopes[j])
        return ub, lam, grads

    def optimise_slopes(self, relax: list, start: list, mid: np.ndarray, rad: np.ndarray, ub: np.ndarray,
                        lam: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
        r"""Tighten the output bound by optimising the lower ReLU slopes ``a in [0, 1]`` of the
        unstable units (alpha-CROWN's idea with the hidden layers' bounds fixed): ``steps``
        projected Adam steps on the bound, from the slopes ``start``.  Every slope vector in
        ``[0, 1]`` gives a valid lower line ``a z <= relu(z)``, so every iterate's bound is valid
        and each box keeps the smallest seen (with its input coefficients)."""
        free = [sl != su for sl, su, _ in relax]
        a = [x.copy() for x in start]
        m = [np.zeros_like(x) for x in a]
        v = [np.zeros_like(x) for x in a]
        for t in range(1, steps + 1):
            u, l, grads = self._output_line(relax, a, mid, rad, grad=True)
            better = u < ub
            ub, lam = np.where(better, u, ub), np.where(better[:, None], l, lam)
            lr = 0.5 * (1.0 - (t - 1) / steps) + 0.05      # linear decay: big moves first
            for j, gj in enumerate(grads):
                gj = np.where(free[j], gj, 0.0)
                m[j] = 0.9 * m[j] + 0.1 * gj
                v[j] = 0.999 * v[j] + 0.001 * gj * gj
                step = (m[j] / (1 - 0.9 ** t)) / (np.sqrt(v[j] / (1 - 0.999 ** t)) + 1e-12)
                a[j] = np.where(free[j], np.clip(a[j] - lr * step, 0.0, 1.0), a[j])
        u, l = self._output_line(relax, a, mid, rad)
        better = u < ub
        return np.where(better, u, ub), np.where(better[:, None], l, lam)

    def _output_bound(self, relax: list, mid: np.ndarray, rad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The smaller of two output bounds per box, and its input coefficients: CROWN's lower
        slopes, and slope 0 on every unstable unit (``relu(z) >= 0``: a unit under a negative
        coefficient then adds nothing instead of a line through its pre-activation bounds).
        Both are valid, so their minimum is.  Also returns, per box, whether the zero slopes
        gave it (where :meth:`optimise_slopes` starts)."""
        crown = [sl for sl, _, _ in relax]
        zero = [np.where(sl != su, 0.0, sl) for sl, su, _ in relax]
        ub, lam = self._output_line(relax, crown, mid, rad)
        ub0, lam0 = self._output_line(relax, zero, mid, rad)
        better = ub0 < ub
        return np.where(better, ub0, ub), np.where(better[:, None], lam0, lam), better

    def _relaxation(self, lo: np.ndarray, hi: np.ndarray, mid: np.ndarray,
                    rad: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
        """The ReLU lines of every hidden layer over each box, and the last hidden layer's bounds."""
        K = lo.shape[0]
        W1, b1 = self.weights[0]
        n_layers = len(self.weights)
        bounds = [affine_range(W1, b1, lo, hi)]
        relax: list = []
        for k in range(1, n_layers):
            L, U = bounds[-1]
            relax.append(relu_lines(L, U))
            if k == n_layers - 1:
                return relax, L, U
            W, b = self.heads[k - 1]
            if self.first[k - 1] is not None:
                steps = [backsubstitute(self.weights, lam, c, relax[:-1], upper)
                         for (lam, c), upper in zip(self._first_step(k, relax[-1], K), (True, False))]
            else:
                lam0, c0 = np.broadcast_to(W, (K,) + W.shape), np.broadcast_to(b, (K, len(b)))
                steps = [backsubstitute(self.weights, lam0, c0, relax, upper) for upper in (True, False)]
            (lamU, cU), (lamL, cL) = steps
            up = cU + np.einsum("kri,ki->kr", lamU, mid) + np.einsum("kri,ki->kr", np.abs(lamU), rad)
            low = cL + np.einsum("kri,ki->kr", lamL, mid) - np.einsum("kri,ki->kr", np.abs(lamL), rad)
            iL, iU = affine_range(W, b, np.maximum(L, 0.0), np.maximum(U, 0.0))
            bounds.append((np.maximum(low, iL), np.minimum(up, iU)))
        raise AssertionError("unreachable")

    def __call__(self, lo: np.ndarray, hi: np.ndarray, alpha_steps: int = 0,
                 above: float = -np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ub, lam, vertex)`` for the boxes ``[lo_k, hi_k]`` (as :func:`output_upper_bounds`);
        with ``alpha_steps > 0`` the boxes whose CROWN bound is above ``above`` are bounded again
        with optimised output slopes (:meth:`optimise_slopes`)."""
        lo = np.atleast_2d(np.asarray(lo, dtype=float))
        hi = np.atleast_2d(np.asarray(hi, dtype=float))
        K = lo.shape[0]
        mid, rad = 0.5 * (lo + hi), 0.5 * (hi - lo)
        if len(self.weights) == 1:       # one affine layer: the exact maximum over each box
            W, b = self.last
            lam = np.broadcast_to(W, (K, W.shape[1])).copy()
            ub = b[0] + mid @ W[0] + rad @ np.abs(W[0])
            return _padded(ub), lam, np.where(lam > 0, hi, lo)
        relax, L, U = self._relaxation(lo, hi, mid, rad)
        ub, lam, zero_better = self._output_bound(relax, mid, rad)
        ub = np.minimum(ub, affine_range(*self.heads[-1], np.maximum(L, 0.0), np.maximum(U, 0.0))[1][:, 0])
        if alpha_steps > 0:
            i = np.flatnonzero(_padded(ub) > above)   # as the search prunes
            if len(i):
                sub = [tuple(x[i] for x in r) for r in relax]
                start = [np.where(zero_better[i, None] & (sl != su), 0.0, sl) for sl, su, _ in sub]
                ub[i], lam[i] = self.optimise_slopes(sub, start, mid[i], rad[i], ub[i], lam[i], alpha_steps)
        return _padded(ub), lam, np.where(lam > 0, hi, lo)


def output_upper_bounds(weights: Sequence[tuple[np.ndarray, np.ndarray]], lo: np.ndarray, hi: np.ndarray,
                        row: int = 0, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CROWN upper bounds of ``sign * z_L[row]`` over each box (module docstring).

    Returns ``(ub, lam, vertex)``: ``ub`` ``(K,)`` the bound (with :data:`ROUND_SLACK`),
    ``lam`` ``(K, n_0)`` the input coefficients of the linear bound (its sensitivity to each
    input, used to choose the branching coordinate), ``vertex`` ``(K, n_0)`` the box corner that
    maximises the linear bound (a good candidate input).  For many calls on one network, build a
    :class:`BoxBounder` once."""
    return BoxBounder(weights, row, sign)(lo, hi)


__all__ = ["FIRST_STEP_LIMIT", "ROUND_SLACK", "BoxBounder", "affine_range", "backsubstitute", "output_upper_bounds",
           "relu_lines"]
