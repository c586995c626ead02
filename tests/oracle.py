"""An independent global optimum for tiny 1-D-input, one-hidden-layer problems (tests only).

Positive scaling gives ``v relu(w x + b) = s relu(u x + c)`` with ``s = sign(v)``,
``u = |v| w``, ``c = |v| b``; under the box ``|v|, |w|, |b| <= B`` the reachable ``(u, c)`` are
exactly ``|u|, |c| <= B^2``.  For fixed signs ``s`` and a fixed activation pattern ``a_ij`` the
network output ``sum_j s_j a_ij (u_j x_i + c_j) + c0`` is linear in ``(u, c, c0)`` and the pattern
is the polyhedron ``(2 a_ij - 1)(u_j x_i + c_j) >= 0``: a convex QP (mse) or LP (mae).  With a
1-D input the patterns of a unit are thresholds on the sorted data, so enumerating signs and
threshold patterns and taking the best subproblem gives the global optimum.
"""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np

LAST_QP_COUNT = 0
"""QPs the last :func:`enumerate_optimum` call solved (after pruning by the relaxation)."""


def threshold_patterns(x: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(x)
    n = len(x)
    pats = {}
    for k in range(n + 1):
        for active in (order[k:], order[:k]):
            a = np.zeros(n)
            a[active] = 1.0
            pats[a.tobytes()] = a
    return list(pats.values())


def _pattern_combos(n_pats: int, signs: tuple[float, ...]) -> np.ndarray:
    """``(C, hidden)`` pattern indices; units with equal sign are interchangeable, so their
    patterns are enumerated as multisets (non-decreasing index along a run of equal signs)."""
    hidden = len(signs)
    grid = np.stack(np.meshgrid(*[np.arange(n_pats)] * hidden, indexing="ij"), -1).reshape(-1, hidden)
    keep = np.ones(grid.shape[0], dtype=bool)
    for j in range(hidden - 1):
        if signs[j] == signs[j + 1]:
            keep &= grid[:, j] <= grid[:, j + 1]
    return grid[keep]


def _relaxed_mse(P: np.ndarray, combos: np.ndarray, s: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per combo, the least-squares value with the pattern and box constraints dropped: a
    lower bound on that combo's QP (a relaxation), computed for all combos at once."""
    n = len(x)
    A = P[combos].transpose(0, 2, 1)                       # (C, n, hidden)
    M = np.concatenate([A * s * x[None, :, None], A * s, np.ones((A.shape[0], n, 1))], axis=2)
    G = np.einsum("cni,cnj->cij", M, M)
    g = np.einsum("cni,n->ci", M, y)
    z = np.einsum("cij,cj->ci", np.linalg.pinv(G, hermitian=True), g)
    return (y @ y - np.einsum("ci,ci->c", g, z)) / n


def enumerate_optimum(X: np.ndarray, Y: np.ndarray, hidden: int, B: float, loss: str = "mse",
                      prune: bool = True) -> float:
    """Global optimum by enumeration of signs and threshold patterns (one convex QP/LP each).
    For mse, every combo first gets the value of its unconstrained least-squares relaxation
    (vectorised); QPs are solved in increasing order of that lower bound and the enumeration
    stops once the bound reaches the best QP value: exact, as a combo whose relaxation is not
    below the incumbent cannot improve on it. ``prune=False`` solves every combo's QP."""
    x = np.asarray(X, dtype=float).reshape(-1)
    y = np.asarray(Y, dtype=float).reshape(-1)
    n = len(x)
    u = cp.Variable(hidden)
    c = cp.Variable(hidden)
    c0 = cp.Variable()
    Mu = cp.Parameter((n, hidden))   # s_j a_ij x_i
    Mc = cp.Parameter((n, hidden))   # s_j a_ij
    Gu = cp.Parameter((n, hidden))   # (2a_ij - 1) x_i
    Gc = cp.Parameter((n, hidden))   # (2a_ij - 1)
    pred = Mu @ u + Mc @ c + c0
    r = pred - y
    obj = cp.sum_squares(r) / n if loss == "mse" else cp.norm1(r) / n
    cons = [cp.abs(u) <= B * B, cp.abs(c) <= B * B, cp.abs(c0) <= B]
    cons += [cp.multiply(Gu[:, j], u[j]) + cp.multiply(Gc[:, j], c[j]) >= 0 for j in range(hidden)]
    prob = cp.Problem(cp.Minimize(obj), cons)
    P = np.asarray(threshold_patterns(x))
    best = np.inf
    work = []  # (relaxation bound or -inf, signs, combo)
    for signs in itertools.product((-1.0, 1.0), repeat=hidden):
        s = np.asarray(signs)
        combos = _pattern_combos(len(P), signs)
        if loss == "mse" and prune:
            lb = np.concatenate([_relaxed_mse(P, ch, s, x, y) for ch in np.array_split(combos, -(-len(combos) // 20000))])
        else:
            lb = np.full(len(combos), -np.inf)
        work += [(lb, s, combos)]
    lb = np.concatenate([w[0] for w in work])
    S = np.concatenate([np.repeat(w[1][None], len(w[2]), 0) for w in work])
    C = np.concatenate([w[2] for w in work])
    global LAST_QP_COUNT
    LAST_QP_COUNT = 0
    for k in np.argsort(lb, kind="stable"):
        # the relaxation's rounding error is far below this margin
        if lb[k] >= best * (1 + 1e-9) + 1e-14:
            break
        A = P[C[k]].T
        s = S[k]
        Mu.value = A * s * x[:, None]
        Mc.value = A * s
        Gu.value = (2 * A - 1) * x[:, None]
        Gc.value = 2 * A - 1
        prob.solve(solver=cp.CLARABEL)
        LAST_QP_COUNT += 1
        if prob.status == "optimal" and prob.value < best:
            best = prob.value
    return float(best)


def first_layer_optimum(X, Y, v: np.ndarray, c0: float, B: float, loss: str = "mae") -> float:
    """Global optimum of training ``(w, b)`` of a 1-D-input hidden layer under a fixed read-out
    ``f(x) = sum_j v_j relu(w_j x + b_j) + c0`` with ``|w|, |b| <= B``, by pattern enumeration
    (each pattern is an LP/QP in ``(w, b)``)."""
    x = np.asarray(X, dtype=float).reshape(-1)
    y = np.asarray(Y, dtype=float).reshape(-1)
    v = np.asarray(v, dtype=float).reshape(-1)
    n, hidden = len(x), len(v)
    w = cp.Variable(hidden)
    b = cp.Variable(hidden)
    Mw = cp.Parameter((n, hidden))
    Mb = cp.Parameter((n, hidden))
    Gw = cp.Parameter((n, hidden))
    Gb = cp.Parameter((n, hidden))
    r = Mw @ w + Mb @ b + c0 - y
    obj = cp.sum_squares(r) / n if loss == "mse" else cp.norm1(r) / n
    cons = [cp.abs(w) <= B, cp.abs(b) <= B]
    cons += [cp.multiply(Gw[:, j], w[j]) + cp.multiply(Gb[:, j], b[j]) >= 0 for j in range(hidden)]
    prob = cp.Problem(cp.Minimize(obj), cons)
    pats = threshold_patterns(x)
    best = np.inf
    for combo in itertools.product(range(len(pats)), repeat=hidden):
        A = np.stack([pats[k] for k in combo], axis=1)
        Mw.value = A * v * x[:, None]
        Mb.value = A * v
        Gw.value = (2 * A - 1) * x[:, None]
        Gb.value = 2 * A - 1
        prob.solve(solver=cp.CLARABEL)
        if prob.status == "optimal" and prob.value < best:
            best = prob.value
    return float(best)


def output_layer_optimum(H: np.ndarray, Y, B: float, loss: str = "mse") -> float:
    """Box-constrained linear regression of ``Y`` on fixed features ``H`` (frozen hidden layer)."""
    from scipy.optimize import linprog, lsq_linear

    y = np.asarray(Y, dtype=float).reshape(-1)
    n, k = H.shape
    A = np.hstack([H, np.ones((n, 1))])
    if loss == "mse":
        res = lsq_linear(A, y, bounds=(-B, B), tol=1e-14, lsmr_tol="auto", max_iter=10000)
        return float(np.sum((A @ res.x - y) ** 2) / n)
    # min sum t  s.t.  -t <= A p - y <= t
    c = np.concatenate([np.zeros(k + 1), np.ones(n) / n])
    G = np.block([[A, -np.eye(n)], [-A, -np.eye(n)]])
    h = np.concatenate([y, -y])
    bounds = [(-B, B)] * (k + 1) + [(0, None)] * n
    res = linprog(c, A_ub=G, b_ub=h, bounds=bounds, method="highs")
    return float(res.fun)
