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


def enumerate_optimum(X: np.ndarray, Y: np.ndarray, hidden: int, B: float, loss: str = "mse") -> float:
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
    pats = threshold_patterns(x)
    best = np.inf
    for signs in itertools.product((-1.0, 1.0), repeat=hidden):
        # units with equal sign are interchangeable: enumerate their patterns as multisets
        for combo in itertools.product(range(len(pats)), repeat=hidden):
            if any(signs[j] == signs[j + 1] and combo[j] > combo[j + 1] for j in range(hidden - 1)):
                continue
            A = np.stack([pats[k] for k in combo], axis=1)
            s = np.asarray(signs)
            Mu.value = A * s * x[:, None]
            Mc.value = A * s
            Gu.value = (2 * A - 1) * x[:, None]
            Gc.value = 2 * A - 1
            prob.solve(solver=cp.CLARABEL)
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
