r"""Local search for good inputs of ``max sign * z_L[row]`` over a box (incumbents for
:mod:`unrectify.backends.input_bab`).

Two steps, both returning inputs inside the box whose value is then taken from a forward pass
(so an incumbent never rests on the search's own arithmetic):

* :func:`ascend`: projected sign-gradient ascent from many inputs at once (vectorised over the
  inputs), with a step that shrinks geometrically from ``step0 (hi - lo)``;
* :func:`polish`: the exact maximum over the *linear region* of an input.  With the activation
  pattern ``D_l = diag(1[z_l(x) > 0])`` fixed, every pre-activation is affine in the input,
  ``z_l = A_l x + c_l`` with ``A_1 = W_1``, ``A_{l+1} = W_{l+1} D_l A_l``, so the region is the
  polyhedron ``{x in box : (2 D_l - I)(A_l x + c_l) >= 0 for all l}`` and the output is affine
  on it: one small LP (``n_0`` variables) gives the region's maximiser, a vertex where units
  switch.  The next region is the one entered by a short step along the objective's gradient
  from that vertex (or the region the vertex itself lies in, units at exactly zero counted as
  off); the walk stops when no unseen neighbouring region improves, or after ``max_lps`` LPs.

A ReLU network's maximum over a box is attained at such a vertex, generally away from the
box corners and the split points of the branch and bound, so without the polish the
incumbent of :mod:`~unrectify.backends.input_bab` stays short of the optimum by more than the
gap and the search cannot close.
"""

from __future__ import annotations

import numpy as np

from unrectify.formulations.network import forward, input_vjp, predict


def value(weights, X: np.ndarray, row: int, sign: float) -> np.ndarray:
    """``sign * z_L[row]`` at the rows of ``X`` (the project's forward pass)."""
    return sign * predict(weights, X)[:, row]


def _input_gradient(weights, X: np.ndarray, row: int, sign: float) -> np.ndarray:
    """Gradient of ``sign * z_L[row]`` in the input at every row of ``X`` (back-propagation)."""
    zs, _ = forward(weights, X)
    G = np.zeros((X.shape[0], np.asarray(weights[-1][0]).shape[0]))
    G[:, row] = sign
    return input_vjp(weights, zs, G)


def ascend(weights, X: np.ndarray, lo: np.ndarray, hi: np.ndarray, row: int = 0, sign: float = 1.0,
           steps: int = 100, step0: float = 0.05, step_end: float = 1e-4) -> np.ndarray:
    """Projected sign-gradient ascent of every row of ``X`` (module docstring); same shape."""
    X = np.clip(np.asarray(X, dtype=float), lo, hi)
    if X.shape[0] == 0 or steps < 1:
        return X
    rates = step0 * (step_end / step0) ** (np.arange(steps) / max(steps - 1, 1))
    for r in rates:
        X = np.clip(X + r * (hi - lo) * np.sign(_input_gradient(weights, X, row, sign)), lo, hi)
    return X


def _region(weights, x: np.ndarray, row: int, sign: float):
    """``(G, h, obj, key)``: the region of ``x`` as ``G y <= h``, the affine objective's
    gradient on it, and the activation pattern as bytes."""
    n0 = x.shape[0]
    A, c = np.eye(n0), np.zeros(n0)
    G, h, key = [], [], []
    for W, b in weights[:-1]:
        W, b = np.asarray(W, dtype=float), np.asarray(b, dtype=float).reshape(-1)
        A, c = W @ A, W @ c + b
        on = (A @ x + c) > 0
        s = np.where(on, -1.0, 1.0)          # on: -(A y + c) <= 0, off: A y + c <= 0
        G.append(s[:, None] * A)
        h.append(-s * c)
        key.append(on)
        A, c = A * on[:, None], c * on
    obj = sign * (np.asarray(weights[-1][0], dtype=float)[row] @ A)
    return np.vstack(G), np.concatenate(h), obj, np.packbits(np.concatenate(key)).tobytes()


def polish(weights, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, row: int = 0, sign: float = 1.0,
           max_lps: int = 20, probe: float = 1e-7) -> tuple[np.ndarray, float]:
    """Walk linear regions from ``x`` by region LPs (module docstring): ``(x_best, value)``."""
    from scipy.optimize import linprog

    best_x = np.clip(np.asarray(x, dtype=float), lo, hi)
    best = float(value(weights, best_x[None], row, sign)[0])
    seen: set[bytes] = set()
    box = list(zip(lo, hi))
    lps = 0
    # walk: the region of the new best point itself (units at exactly 0 count as off), then the
    # region a short uphill step from it leads into
    queue = [best_x]
    while queue and lps < max_lps:
        G, h, obj, key = _region(weights, queue.pop(0), row, sign)
        if key in seen:
            continue
        seen.add(key)
        lps += 1
        res = linprog(-obj, A_ub=G, b_ub=h, bounds=box, method="highs")
        if res.status != 0:     # numerically empty region around a point on a boundary
            continue
        y = np.clip(res.x, lo, hi)
        v = float(value(weights, y[None], row, sign)[0])
        if v > best + 1e-12 * (1.0 + abs(best)):
            best, best_x, queue = v, y, [y]
        if v >= best or lps == 1:
            queue.append(np.clip(best_x + probe * (hi - lo) * np.sign(obj), lo, hi))
    return best_x, best


__all__ = ["ascend", "polish", "value"]
