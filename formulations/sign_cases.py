r"""Sign-enumerated convex MIQPs for single-output, one-hidden-layer networks (numpy only).

The network is ``f(x) = sum_j v_j relu(w_j . x + b_j) + c`` with ``h`` hidden units and the box
``|w|, |b|, |v|, |c| <= B``.  Positive scaling (docs/theory.md, "Sign enumeration") maps every
network in the box to one with the same function, still in the box, and ``v_j in {-B, +B}``;
a permutation then puts the ``k`` positive units first.  Hence

    min over networks  =  min_{k = 0..h}  OPT_k,

where case ``k`` fixes ``v = B s`` with ``s = (+1)*k, (-1)*(h-k)`` and is the **convex** MIQP
(mse; a MILP for mae)

    min  (1/N) sum_i R_i^2              (mse)   or  (1/N) sum_i T_i,  T >= +-R  (mae)
    s.t. Z_ij = w_j . x_i + b_j                                   (linear pre-activations)
         H_ij = relu(Z_ij)  by big-M:  H >= Z, H >= 0, H <= Z - L (1 - D), H <= U D, D binary
         R_i  = B sum_j s_j H_ij + c - y_i
         b_j <= b_{j+1}  for j, j+1 in the same sign class        (permutation symmetry)
         |w|, |b|, |c| <= B,  L <= Z <= U

with ``[L, U]`` valid bounds on the pre-activations: interval arithmetic
``|Z_ij| <= B (|x_i|_1 + 1)`` by default, or tighter ones (e.g. optimisation-based, from a
backend) passed as ``bounds``.  For 1-D inputs the **orientation cuts** are added: with the
samples sorted by ``x`` and one binary ``o_j`` per unit,

    w_j >= -B (1 - o_j),   w_j <= B o_j,
    D_{i+1,j} >= D_{i,j} - (1 - o_j),   D_{i+1,j} <= D_{i,j} + o_j   (consecutive sorted samples),

i.e. the active set of a unit is a suffix of the sorted samples when ``w_j >= 0`` and a prefix
when ``w_j <= 0``.  They are valid (every network has a model point satisfying them:
``o_j = 1[w_j >= 0]``, ``D = 1[Z > 0]``) and cut the activation patterns from ``2^N`` to ``O(N)``
per unit.  ``residual_bound`` (from an incumbent loss ``UB``: ``|R_i| <= sqrt(N UB)`` for mse,
``N UB`` for mae) removes only points worse than the incumbent; when it leaves a residual's
interval image ``B s.H + c - y`` empty for some sample, no network of the case beats the
incumbent and :func:`build_sign_case` raises :class:`CaseExcludedError` (e.g. targets above
``B`` with every read-out weight negative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .builder import Operand, affine_rows
from .encodings import get_encoding
from .errors import InputError
from .model import Model
from .problem import TrainingProblem

class CaseExcludedError(InputError):
    """The residual bound leaves no network in a sign case: every network of the case has a
    loss above the incumbent's (the case is closed, not an input error of the user's)."""


#: losses the sign-enumerated cases support (both give a convex objective on the residuals)
CASE_LOSSES = ("mse", "mae")


def sign_enumeration_reason(problem: TrainingProblem) -> str | None:
    """``None`` if ``problem`` fits the sign enumeration, else the one-line reason it does not."""
    if problem.n_layers != 2:
        return f"needs one hidden layer (widths {problem.widths} have {problem.n_layers - 1})"
    if problem.widths[-1] != 1:
        return f"needs a single output (widths {problem.widths})"
    if problem.frozen:
        return "needs no frozen layers"
    if problem.weight_bound is None:
        return "needs a weight box B"
    if problem.loss not in CASE_LOSSES:
        return f"loss {problem.loss!r} not supported"
    return None


def case_signs(hidden: int, k: int) -> np.ndarray:
    """Read-out signs of case ``k``: ``k`` times +1, then ``hidden - k`` times -1."""
    if not 0 <= k <= hidden:
        raise InputError(f"case k={k} outside 0..{hidden}")
    return np.where(np.arange(hidden) < k, 1.0, -1.0)


def interval_preactivation_bounds(problem: TrainingProblem) -> tuple[np.ndarray, np.ndarray]:
    """``|Z_ij| <= B (|x_i|_1 + 1)`` for every sample and unit, shape ``(N, h)``."""
    lo, hi = problem.bounds()[0]
    return lo, hi


def canonical_weights(problem: TrainingProblem, weights: Sequence[tuple[np.ndarray, np.ndarray]]
                      ) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Map a network in the box to its case: scale every unit to ``|v_j| = B`` (a unit with
    ``v_j = 0`` becomes ``w_j = b_j = 0``, ``v_j = +B``), put the positive units first and sort the
    biases inside each sign class.  The function (hence the loss) is unchanged; returns
    ``(k, weights)``."""
    problem.check_weights(weights)
    B = float(problem.weight_bound)
    W1, b1 = (np.asarray(a, dtype=float) for a in weights[0])
    W2, b2 = (np.asarray(a, dtype=float) for a in weights[1])
    v = W2[0]
    a = np.abs(v) / B                          # <= 1 inside the box: in-weights shrink
    W1, b1 = W1 * a[:, None], b1 * a
    s = np.where(v < 0, -1.0, 1.0)             # v = 0: a zero unit, either sign fits; take +
    order = np.lexsort((b1, -s))               # positives first, then by bias within a class
    k = int((s > 0).sum())
    return k, [(W1[order], b1[order]), ((B * s[order])[None, :], b2.copy())]


@dataclass
class SignCaseModel:
    """The Model of one sign case plus the map from its point back to the network."""

    model: Model
    problem: TrainingProblem
    k: int
    signs: np.ndarray
    orientation: bool

    def weights(self, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        v = np.asarray(v, dtype=float)
        blk = self.model.blocks
        B = float(self.problem.weight_bound)
        return [(v[blk["W1"]], v[blk["b1"]]), ((B * self.signs)[None, :], v[blk["c"]])]

    def point_from_weights(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """The model point of a network of this case (``|v_j| = B`` with this case's signs):
        forward-pass values, ``D = 1[Z > 0]``, ``o_j = 1[w_j >= 0]``."""
        P = self.problem
        W1, b1 = (np.asarray(a, dtype=float) for a in weights[0])
        W2, b2 = (np.asarray(a, dtype=float) for a in weights[1])
        B = float(P.weight_bound)
        if not np.allclose(W2[0], B * self.signs, rtol=0, atol=1e-12 * B):
            raise InputError(f"weights are not of case k={self.k} (read-out must be B * signs)")
        blk = self.model.blocks
        v = np.zeros(self.model.n_vars)
        Z = P.X @ W1.T + b1
        H = np.maximum(Z, 0.0)
        R = H @ W2[0] + b2[0] - P.Y[:, 0]
        v[blk["W1"]], v[blk["b1"]], v[blk["c"]] = W1, b1, b2
        v[blk["Z1"]], v[blk["X1"]], v[blk["D1"]] = Z, H, (Z > 0).astype(float)
        v[blk["R"]] = R
        if "T" in blk:
            v[blk["T"]] = np.abs(R)
        if "o" in blk:
            v[blk["o"]] = (W1[:, 0] >= 0).astype(float)
        return v


def residual_bound_from_loss(problem: TrainingProblem, loss_upper: float) -> float:
    """Largest ``|R_i|`` of any point with loss ``<= loss_upper``."""
    N = problem.n_samples
    ub = max(float(loss_upper), 0.0)
    return float(np.sqrt(N * ub)) if problem.loss == "mse" else float(N * ub)


def build_sign_case(problem: TrainingProblem, k: int, bounds: tuple[np.ndarray, np.ndarray] | None = None,
                    orientation: bool | None = None, residual_bound: float | None = None,
                    domain: str = "binary", hinge_cuts: bool = True) -> SignCaseModel:
    """Case ``k`` (``k`` positive read-out weights) as a convex MIQP; see the module docstring.

    ``bounds``: ``(L, U)`` of shape ``(N, h)`` valid for every network of the box (default:
    interval arithmetic); they are intersected with the interval bounds.  ``orientation``: the
    1-D orientation cuts (default: on when the input is 1-D).  ``domain="interval"`` gives the
    continuous relaxation (activation and orientation variables in ``[0, 1]``), used for bound
    tightening.
    """
    reason = sign_enumeration_reason(problem)
    if reason:
        raise InputError(f"sign enumeration {reason}")
    P = problem
    N, n0, h = P.n_samples, P.widths[0], P.widths[1]
    B = float(P.weight_bound)
    s = case_signs(h, k)
    ilo, ihi = interval_preactivation_bounds(P)
    if bounds is None:
        lo, hi = ilo, ihi
    else:
        lo = np.maximum(np.broadcast_to(np.asarray(bounds[0], dtype=float), (N, h)), ilo)
        hi = np.minimum(np.broadcast_to(np.asarray(bounds[1], dtype=float), (N, h)), ihi)
        if np.any(lo > hi + 1e-9):
            raise InputError("pre-activation bounds are empty (lower above upper)")
        hi = np.maximum(hi, lo)
    if orientation is None:
        orientation = n0 == 1
    if orientation and n0 != 1:
        raise InputError(f"orientation cuts need a 1-D input, got {n0} input columns")
    m = Model(f"sign-case-k{k}")
    W1 = m.add_var("W1", (h, n0), -B, B)
    b1 = m.add_var("b1", (h,), -B, B)
    c = m.add_var("c", (1,), -B, B)
    lin, _, const = affine_rows(Operand(P.X, False), Operand(W1, True), Operand(b1, True))
    Z = m.add_var("Z1", (N, h), lo, hi)
    m.add_constraints("affine1", "==", np.broadcast_to(const, (N, h)),
                      linear=[(1.0, Z)] + [(-cf, i) for cf, i in lin], shape=(N, h))
    blocks = get_encoding("bigm").add_relu(m, Z, lo, hi, domain, "1")
    H, D = blocks["X"], blocks["D"]
    y = P.Y[:, 0]
    # R bounds: the interval image of B s.H + c - y, cut by the incumbent when given
    hmax = np.maximum(hi, 0.0)
    r_lo = -B * (hmax * (s < 0)).sum(axis=1) - B - y
    r_hi = B * (hmax * (s > 0)).sum(axis=1) + B - y
    if residual_bound is not None:
        r_lo, r_hi = np.maximum(r_lo, -residual_bound), np.minimum(r_hi, residual_bound)
        if np.any(r_lo > r_hi):
            i = int(np.argmax(r_lo - r_hi))
            raise CaseExcludedError(
                f"case k={k}: no network of the case fits the residual bound {residual_bound:.6g} "
                f"(sample {i}: residual in [{r_lo[i] + 0.0:.6g}, {r_hi[i] + 0.0:.6g}] before the bound)")
    R = m.add_var("R", (N,), r_lo, r_hi)
    # R - B sum_j s_j H_ij - c = -y
    m.add_constraints("residual", "==", -y, linear=[(1.0, R[:, None]), (-B * s[None, :], H), (-1.0, c[None, :])],
                      shape=(N,))
    for name, cls in (("pos", np.flatnonzero(s > 0)), ("neg", np.flatnonzero(s < 0))):
        if len(cls) > 1:
            m.add_constraints(f"order_b_{name}", "<=", np.zeros(len(cls) - 1),
                              linear=[(1.0, b1[cls[:-1]]), (-1.0, b1[cls[1:]])])
    if orientation:
        o = m.add_var("o", (h,), 0.0, 1.0, integer=(domain == "binary"))
        w = W1[:, 0]
        m.add_constraints("orient_w_lo", ">=", np.full(h, -B), linear=[(1.0, w), (-B, o)])
        m.add_constraints("orient_w_hi", "<=", np.zeros(h), linear=[(1.0, w), (-B, o)])
        order = np.argsort(P.X[:, 0], kind="stable")
        if N > 1:
            Da, Db = D[order[:-1]], D[order[1:]]          # consecutive sorted samples, (N-1, h)
            m.add_constraints("orient_up", ">=", np.full((N - 1, h), -1.0),
                              linear=[(1.0, Db), (-1.0, Da), (-1.0, o[None, :])], shape=(N - 1, h))
            m.add_constraints("orient_down", "<=", np.zeros((N - 1, h)),
                              linear=[(1.0, Db), (-1.0, Da), (-1.0, o[None, :])], shape=(N - 1, h))
            if hinge_cuts:
                _add_hinge_cuts(m, P.X[order, 0], H[order], w, o, B)
    if P.loss == "mse":
        m.set_objective(quadratic=[(1.0 / N, R, R)])
    else:
        T = m.add_var("T", (N,), 0.0, np.maximum(np.abs(r_lo), np.abs(r_hi)))
        m.add_constraints("abs_pos", ">=", np.zeros(N), linear=[(1.0, T), (-1.0, R)])
        m.add_constraints("abs_neg", ">=", np.zeros(N), linear=[(1.0, T), (1.0, R)])
        m.set_objective(linear=[(1.0 / N, T)])
    m.meta.update(encoding="sign-enumerated", case=k, signs=s.tolist(), orientation=bool(orientation),
                  domain=domain)
    return SignCaseModel(m, P, k, s, bool(orientation))


def _add_hinge_cuts(m: Model, xs: np.ndarray, Hs: np.ndarray, w: np.ndarray, o: np.ndarray, B: float) -> None:
    """Slope and convexity cuts on ``H_j(x) = relu(w_j x + b_j)`` along the sorted samples ``xs``
    (``Hs`` the matching rows of H).  With ``dx_i = x_{i+1} - x_i >= 0`` and ``dH_i = H_{i+1,j} - H_{i,j}``:

        slope in [0, w_j] if o_j = 1, in [w_j, 0] if o_j = 0:
            dH >= -B dx (1 - o),  dH <= B dx o,  dH <= w dx + B dx (1 - o),  dH >= w dx - B dx o
        convexity (relu of an affine function is convex in x), on distinct consecutive x:
            dH_i dx_{i-1} >= dH_{i-1} dx_i

    Both hold at every network (``o = 1[w >= 0]``) and need no activation binary, so they bound
    the relaxation: the read-out of a sign class is convex (concave) with slopes in ``[-B^2, B^2]``.
    Equal inputs get ``dx = 0`` and hence equal activations.
    """
    dx = np.diff(xs)[:, None]                                  # (N-1, 1)
    Ha, Hb = Hs[:-1], Hs[1:]
    n, h = Ha.shape
    z = np.zeros((n, h))
    ow = o[None, :]
    m.add_constraints("slope_o_lo", ">=", -B * dx * np.ones((1, h)), linear=[(1.0, Hb), (-1.0, Ha), (-B * dx, ow)],
                      shape=(n, h))
    m.add_constraints("slope_o_hi", "<=", z, linear=[(1.0, Hb), (-1.0, Ha), (-B * dx, ow)], shape=(n, h))
    m.add_constraints("slope_w_hi", "<=", B * dx * np.ones((1, h)),
                      linear=[(1.0, Hb), (-1.0, Ha), (-dx, w[None, :]), (B * dx, ow)], shape=(n, h))
    m.add_constraints("slope_w_lo", ">=", z, linear=[(1.0, Hb), (-1.0, Ha), (-dx, w[None, :]), (B * dx, ow)],
                      shape=(n, h))
    # convexity between consecutive distinct x: representatives of each distinct value
    keep = np.concatenate([[True], dx[:, 0] > 0])
    reps = np.flatnonzero(keep)
    if len(reps) >= 3:
        xr, Hr = xs[reps], Hs[reps]
        d = np.diff(xr)[:, None]
        H0, H1, H2 = Hr[:-2], Hr[1:-1], Hr[2:]
        # (H2 - H1) d0 - (H1 - H0) d1 >= 0
        d0, d1 = d[:-1], d[1:]
        m.add_constraints("convex", ">=", np.zeros((len(reps) - 2, h)),
                          linear=[(d0, H2), (-(d0 + d1), H1), (d1, H0)], shape=(len(reps) - 2, h))


def sign_cases(problem: TrainingProblem) -> list[int]:
    """The cases ``k = 0..h`` (number of positive read-out weights) to solve."""
    return list(range(problem.widths[1] + 1))
