"""Starting weights: kinks inside the data range, stratified and pattern-diverse restarts,
and perturbations ("hops") of an incumbent.

Why: the ALM largely keeps the activation pattern it starts from (docs/alm.md), so
where each hidden unit's kink ``w.x + b = 0`` sits relative to the data decides which local
solution a restart reaches.  Dead and always-active units are the main failure, hence every
start puts each kink at a data quantile of the unit's projection.

Kink start of hidden layer ``l`` with input ``H`` (``N x n_{l-1}``): for unit ``j`` draw a
direction ``v_j ~ N(0, I)``, project ``t = H v_j``, place the kink at the ``q_j``-quantile
``c_j`` of ``t`` (linear interpolation between order statistics, so every gap between two
data projections is equally likely), and set ``w_j = v_j / s_j``, ``b_j = -c_j / s_j`` with
``s_j = std(t)`` (pre-activations of unit variance).  A positive rescaling (which keeps the
kink and the orientation) brings ``|w_j|, |b_j|`` inside the box.  The output layer is then
the exact box-constrained least-squares fit to the targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unrectify.formulations.network import predict
from unrectify.formulations.problem import TrainingProblem

from .boxls import box_ls_wide, box_qp
from .state import augmented_gram

Weights = list[tuple[np.ndarray, np.ndarray]]


def _kink_layer(H: np.ndarray, n_out: int, q: np.ndarray, rng: np.random.Generator,
                B: float | None, signs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    V = rng.standard_normal((n_out, H.shape[1]))
    if signs is not None:  # orientation: the sign of each direction's first coordinate
        V[:, 0] = np.abs(V[:, 0]) * signs
    T = H @ V.T  # N x n_out projections
    Ts = np.sort(T, axis=0)
    pos = q * (H.shape[0] - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, H.shape[0] - 1)
    frac = pos - lo
    cols = np.arange(n_out)
    c = (1 - frac) * Ts[lo, cols] + frac * Ts[hi, cols]
    sd = T.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    W = V / sd[:, None]
    b = -c / sd
    if B is not None:
        m = np.maximum(np.abs(W).max(axis=1), np.abs(b))
        s = np.minimum(1.0, B / np.maximum(m, 1e-300))
        W *= s[:, None]
        b *= s
    return W, b


def fit_output(H: np.ndarray, Y: np.ndarray, B: float | None, old: tuple[np.ndarray, np.ndarray] | None = None,
               **box: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact box-constrained least squares ``min ||H W^T + 1 b^T - Y||^2``, ``|W|, |b| <= B``
    (plus a tiny proximal term to ``old``); through the ``(n+1)^2`` Gram, or, when ``H`` is wider
    than tall, through the ``N x N`` kernel (`box_ls_wide`: O(N^2 n) time, O(N n) memory)."""
    n = H.shape[1]
    if n + 1 > max(H.shape[0], box.get("newton_dim", 64)):
        # wider than the data: the N x N kernel form, never the (n+1)^2 Gram nor its O(n^3)
        # factorisation (a 1-20000-1 net: 3.2 GB and ~80 s otherwise)
        eps = 1e-10 * max((float(np.einsum("ij,ij->", H, H)) + H.shape[0]) / (n + 1), 1e-300)
        T0 = np.zeros((n + 1, Y.shape[1])) if old is None else np.vstack([old[0].T, old[1][None, :]])
        theta = box_ls_wide(H, np.asarray(Y, dtype=np.float64), B, T0, eps,
                            **{k: v for k, v in box.items() if k == "iters"})
        return np.ascontiguousarray(theta[:n].T), theta[n].copy()
    G = augmented_gram(H)
    eps = 1e-10 * max(float(np.trace(G)) / (n + 1), 1e-300)
    G[np.diag_indices(n + 1)] += eps
    rhs = np.empty((n + 1, Y.shape[1]))
    rhs[:n] = H.T @ Y
    rhs[n] = Y.sum(axis=0)
    T0 = np.zeros_like(rhs) if old is None else np.vstack([old[0].T, old[1][None, :]])
    rhs += eps * T0
    theta = box_qp(G, rhs, B, T0, **{k: v for k, v in box.items() if k in ("newton_dim", "iters")})
    return np.ascontiguousarray(theta[:n].T), theta[n].copy()


def kink_start(problem: TrainingProblem, rng: np.random.Generator,
               quantiles: Sequence[np.ndarray] | None = None, signs: np.ndarray | None = None) -> Weights:
    """Kink-in-data start; ``quantiles[l]`` (one per unit of hidden layer ``l``) fixes the kink
    quantiles, otherwise they are uniform on (0, 1); ``signs`` (one per first-layer unit) fixes
    the orientation of the first hidden layer.  Frozen layers keep their given weights."""
    B = problem.weight_bound
    H = np.asarray(problem.X, dtype=np.float64)
    weights: Weights = []
    widths = problem.widths
    for l in range(1, len(widths) - 1):
        if l in problem.frozen:
            W, b = (np.array(a, dtype=np.float64) for a in problem.frozen[l])
        else:
            q = rng.uniform(size=widths[l]) if quantiles is None else np.asarray(quantiles[l - 1], dtype=float)
            W, b = _kink_layer(H, widths[l], q, rng, B, signs if l == 1 else None)
        weights.append((W, b))
        H = predict([(W, b)], H, relu_output=True)
    L = len(widths) - 1
    if L in problem.frozen:
        weights.append(tuple(np.array(a, dtype=np.float64) for a in problem.frozen[L]))  # type: ignore[arg-type]
    else:
        weights.append(fit_output(H, problem.Y, B))
    return weights


def stratified_quantiles(widths: Sequence[int], restart: int, n_restarts: int, rng: np.random.Generator,
                         perms: list[np.ndarray]) -> list[np.ndarray]:
    """Latin-hypercube kink quantiles: over ``n_restarts`` restarts each hidden unit visits every
    stratum ``[k/K, (k+1)/K)`` once (``perms[l][j]`` is unit j's permutation of strata)."""
    K = max(int(n_restarts), 1)
    out = []
    for l, n in enumerate(widths[1:-1]):
        strata = perms[l][:, restart % K]
        out.append((strata + rng.uniform(size=n)) / K)
    return out


def orientation_signs(n_units: int, restart: int, n_restarts: int, offset: int,
                      rng: np.random.Generator) -> np.ndarray | None:
    """Orientation design of the first hidden layer: restart ``r`` gets ``k = (r + offset) mod
    (n + 1)`` units facing "+" (a random subset) and the rest "-".  Up to permuting units, the
    number of "+" units is the orientation class of a 1-D input layer, which the ALM does not
    change (a flip needs the weight to pass through 0), so the restarts cycle through all
    classes.  ``None`` (random orientations) when there are more classes than restarts."""
    if n_units + 1 > max(n_restarts, 1):
        return None
    k = (restart + offset) % (n_units + 1)
    s = -np.ones(n_units)
    s[rng.permutation(n_units)[:k]] = 1.0
    return s


def first_layer_pattern(problem: TrainingProblem, weights: Weights) -> np.ndarray:
    """Boolean activation pattern ``Z_1 > 0`` of the first hidden layer (``N x n_1``)."""
    W, b = weights[0]
    return (problem.X @ W.T + b) > 0


def pattern_distance(a: np.ndarray, b: np.ndarray, max_match: int = 64) -> float:
    """Hamming distance between two activation patterns up to a permutation of the units
    (optimal assignment when the layer has at most ``max_match`` units, else unit by unit)."""
    if a.shape[1] > max_match:
        return float(np.count_nonzero(a != b))
    from scipy.optimize import linear_sum_assignment

    af, bf = a.astype(np.float64), b.astype(np.float64)
    # Hamming(a_i, b_j) = |a_i| + |b_j| - 2 a_i.b_j for 0/1 columns
    cost = af.sum(axis=0)[:, None] + bf.sum(axis=0)[None, :] - 2.0 * af.T @ bf
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].sum())


def pick_diverse(problem: TrainingProblem, candidates: list[Weights], seen: list[np.ndarray]) -> Weights:
    """The first candidate whose first-layer activation pattern differs (up to permuting units)
    from every pattern already visited, else the first candidate.  Novelty rather than the
    farthest pattern: the farthest one is usually a start with a dead or always-on unit."""
    for w in candidates:
        p = first_layer_pattern(problem, w)
        if all(pattern_distance(p, s) > 0 for s in seen):
            return w
    return candidates[0]


def hop(problem: TrainingProblem, weights: Weights, rng: np.random.Generator) -> Weights:
    """Perturb an incumbent: one hidden unit (a dead or always-active one if any) gets, with
    probability 1/2 each, a fresh kink position along its direction or the opposite orientation
    (sign of the first input weight) with a fresh kink; then the output layer is refitted exactly.
    Other units keep their weights."""
    ws = [(W.copy(), b.copy()) for W, b in weights]
    hidden_layers = [l for l in range(len(ws) - 1) if (l + 1) not in problem.frozen]
    if not hidden_layers:
        return ws
    l = int(rng.choice(hidden_layers))
    H = np.asarray(problem.X, dtype=np.float64)
    H = predict(ws[:l], H, relu_output=True)
    Z = H @ ws[l][0].T + ws[l][1]
    on = (Z > 0).mean(axis=0)
    degenerate = np.flatnonzero((on == 0) | (on == 1))
    j = int(rng.choice(degenerate)) if degenerate.size else int(rng.integers(Z.shape[1]))
    if rng.uniform() < 0.5:
        # flip the unit's orientation (what the ALM itself cannot do) with a fresh kink
        sign = -1.0 if ws[l][0][j][0] > 0 else 1.0
        Wj, bj = _kink_layer(H, 1, rng.uniform(size=1), rng, problem.weight_bound, np.array([sign]))
        ws[l][0][j], ws[l][1][j] = Wj[0], bj[0]
    else:
        # same direction, new kink position: b = -quantile of w.x, then back into the box
        w = ws[l][0][j]
        if not np.any(w):
            w = rng.standard_normal(w.shape)
        t = np.sort(H @ w)
        pos = rng.uniform() * (H.shape[0] - 1)
        lo = int(np.floor(pos))
        c = t[lo] + (pos - lo) * (t[min(lo + 1, len(t) - 1)] - t[lo])
        b = -c
        if problem.weight_bound is not None:
            s = min(1.0, problem.weight_bound / max(float(np.abs(w).max(initial=0.0)), abs(b), 1e-300))
            w, b = w * s, b * s
        ws[l][0][j], ws[l][1][j] = w, b
    L = len(ws)
    if L not in problem.frozen:
        H = predict(ws[l:L - 1], H, relu_output=True)
        ws[-1] = fit_output(H, problem.Y, problem.weight_bound, old=ws[-1])
    return ws
