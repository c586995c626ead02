"""Local search over activation patterns around a KKT point (small networks).

The ALM converges to a KKT point whose activation pattern ``D = 1[Z > 0]`` stays close to the
one it started from; a better solution is often one sample away: one kink moved across one
data point.  For a fixed pattern ``D`` the training problem is the smooth program

    min_w  F_D(w) / N   s.t.  (2 D_l - 1) * Z_l(w) >= 0  (every hidden entry),  |w| <= B,

with ``F_D`` the loss of the network whose hidden layers are ``X_l = D_l * Z_l`` (equal to the
ReLU network wherever the constraints hold).  From the incumbent pattern, each candidate move
flips one entry per side of each hidden unit's kink (the active sample with the smallest
``z`` and the inactive one with the largest), closest first; the pattern program is solved by
SLSQP from the incumbent weights, and the first candidate whose ReLU forward-pass loss is lower
is accepted.  Moves repeat until none improves or ``max_moves`` is reached.
"""

from __future__ import annotations

import numpy as np

from unrectify.formulations.network import forward

from .polish import Weights, backprop, forward_all, pack, unpack, z_jacobian


def _pattern_loss_grad(theta: np.ndarray, problem, D: list[np.ndarray], mask: np.ndarray) -> tuple[float, np.ndarray]:
    weights = unpack(theta, problem.widths)
    X, Y = problem.X, problem.Y
    zs, outs = forward(weights, X, dtype=None, masks=D)   # the network linearised at pattern D
    f, grads = backprop(weights, [X, *outs[:-1]], D, zs[-1] - Y, problem.loss)
    return f, pack(grads) * mask


def _pattern_constraints(theta: np.ndarray, problem, D: list[np.ndarray]) -> np.ndarray:
    weights = unpack(theta, problem.widths)
    zs, _ = forward(weights[:-1], problem.X, dtype=None, masks=D)   # hidden pre-activations only
    return np.concatenate([((2 * D[l] - 1) * Z).ravel() for l, Z in enumerate(zs)])


def _pattern_jacobian(theta: np.ndarray, problem, D: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    weights = unpack(theta, problem.widths)
    zs, outs = forward(weights, problem.X, dtype=None, masks=D)
    zs, acts = zs[:-1], [problem.X, *outs[:-1]]
    S = [np.nonzero(np.ones_like(Z, dtype=bool)) for Z in zs]  # every hidden entry, row-major
    J = z_jacobian(weights, acts, zs, S, problem.widths, masks=D)
    sign = np.concatenate([(2 * D[l] - 1).ravel() for l in range(len(D))])
    return (J * sign[:, None]) * mask


def solve_pattern(problem, weights: Weights, D: list[np.ndarray], max_iter: int = 100,
                  deadline: float | None = None) -> Weights:
    """SLSQP on the pattern program of ``D`` from ``weights`` (frozen layers fixed); stops at
    ``deadline`` (``time.perf_counter()`` seconds) with the iterate reached."""
    import time

    from scipy.optimize import minimize

    def stop_at_deadline(intermediate_result=None) -> None:
        # one SLSQP iteration on N x width sign constraints can take 0.1 s: check every one
        if deadline is not None and time.perf_counter() >= deadline:
            raise StopIteration

    mask = np.concatenate([np.full(W.size + b.size, (l + 1) not in problem.frozen) for l, (W, b) in enumerate(weights)])
    theta0 = pack(weights)
    B = problem.weight_bound
    bounds = None if B is None else list(zip(np.where(mask, -B, theta0), np.where(mask, B, theta0)))
    D = [d.astype(float) for d in D]
    res = minimize(_pattern_loss_grad, theta0, args=(problem, D, mask), jac=True, method="SLSQP", bounds=bounds,
                   constraints=[{"type": "ineq", "fun": lambda t: _pattern_constraints(t, problem, D),
                                 "jac": lambda t: _pattern_jacobian(t, problem, D, mask)}],
                   callback=stop_at_deadline, options={"maxiter": int(max_iter), "ftol": 1e-15})
    theta = np.asarray(res.x, dtype=np.float64)
    if B is not None:
        theta = np.where(mask, np.clip(theta, -B, B), theta0)
    if not np.all(np.isfinite(theta)):
        return [(W.copy(), b.copy()) for W, b in weights]
    return [(W.copy(), b.copy()) for W, b in unpack(theta, problem.widths)]


def candidate_flips(zs: list[np.ndarray]) -> list[tuple[int, int, int, float]]:
    """(layer, sample, unit, |z|) of the entries next to each hidden unit's kink, closest first."""
    out = []
    for l, Z in enumerate(zs[:-1]):
        pos = np.where(Z > 0, Z, np.inf)
        neg = np.where(Z <= 0, -Z, np.inf)
        for arr in (pos, neg):
            i = np.argmin(arr, axis=0)
            v = arr[i, np.arange(Z.shape[1])]
            out += [(l, int(i[j]), j, float(v[j])) for j in np.flatnonzero(np.isfinite(v))]
    return sorted(out, key=lambda c: c[3])


def pattern_search(problem, weights: Weights, *, max_moves: int = 10, deadline: float | None = None) -> tuple[Weights, int]:
    """First-improvement local search over one-entry pattern flips; returns the weights and the
    number of accepted moves."""
    import time

    w = [(W.copy(), b.copy()) for W, b in weights]
    f = problem.forward_loss(w)
    moves = 0
    for _ in range(max_moves):
        _, zs = forward_all(w, problem.X)
        D = [Z > 0 for Z in zs[:-1]]
        improved = False
        for l, i, j, _ in candidate_flips(zs):
            if deadline is not None and time.perf_counter() >= deadline:
                return w, moves
            Dn = [d.copy() for d in D]
            Dn[l][i, j] = not Dn[l][i, j]
            wn = solve_pattern(problem, w, Dn, deadline=deadline)
            fn = problem.forward_loss(wn)
            if fn < f - 1e-9 * max(abs(f), 1e-12):
                w, f, improved = wn, fn, True
                moves += 1
                break
        if not improved:
            break
    return w, moves
