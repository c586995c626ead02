"""Final refinement of an ALM iterate on its activation pattern, with KKT multipliers.

The ALM finds the activation pattern and the basin quickly, but block-coordinate sweeps
converge slowly in the tail.  Once the violation is small the weights are refined on the
identified pattern and the iterate is replaced by the exact forward pass of the refined weights
(every ``C_k = 0``) with multipliers built by backpropagation.

Degenerate entries.  Kinks often end exactly on a data point (``z_ij = 0``; there the relaxed
form lets ``d_ij`` take any value in [0, 1]).  With ``S`` the entries whose forward pre-activation
is within ``deg_tol`` of 0, the refinement solves (SLSQP, small networks)

    min_w  F(w) / N      s.t.  z_s(w) = 0 (s in S),  |w| <= B,

or, for networks with more than ``max_weights`` weights, L-BFGS-B without the ``S`` constraints.
Multipliers of the split form: with ``Phi = F - sum_s nu_s z_s`` and ``delta_l = dPhi/dZ_l``
(backpropagation with relu'(0) = 0 and ``-nu`` injected at the entries of S), put
``Lam1_l = -delta_l``, ``Lam2_l = Lam1_{l+1} W_{l+1}`` and per entry

* active (D = 1): ``Lam3 = 0``, ``Lam4 = max(0, -Lam2)``;
* inactive (D = 0): ``Lam4 = 0``, ``Lam3 = min(0, Lam2)``;
* degenerate (z = 0, ``Lam1 = nu``): ``nu >= Lam2``: D = 1, ``Lam3 = Lam2 - nu``, ``Lam4 = 0``;
  ``nu <= 0``: D = 0, ``Lam3 = 0``, ``Lam4 = -nu``; otherwise D = nu / Lam2, ``Lam3 = Lam4 = 0``.

Then the partial derivatives of L in Z, X, D, P, Q vanish or point out of their active bounds, and
``dL/dW_l = -Lam1_l^T X_{l-1}`` is ``dPhi/dW_l``: the projected gradient of L (what
:func:`state.evaluate` measures) is the projected gradient of ``Phi / N`` in the box, with
``nu`` the least-squares multipliers on the free weights.  A small value certifies a KKT point
of the relaxed split problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrectify.formulations.network import forward

from .state import Context, State, state_from_forward

Weights = list[tuple[np.ndarray, np.ndarray]]


def pack(weights: Weights) -> np.ndarray:
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in weights])


def unpack(theta: np.ndarray, widths: tuple[int, ...]) -> Weights:
    out, k = [], 0
    for l in range(1, len(widths)):
        n, m = widths[l], widths[l - 1]
        W = theta[k:k + n * m].reshape(n, m)
        k += n * m
        out.append((W, theta[k:k + n]))
        k += n
    return out


def _offsets(widths: tuple[int, ...]) -> list[tuple[int, int]]:
    """Start of ``W_l`` and of ``b_l`` in the packed vector, per layer."""
    out, k = [], 0
    for l in range(1, len(widths)):
        n, m = widths[l], widths[l - 1]
        out.append((k, k + n * m))
        k += n * m + n
    return out


def forward_all(weights: Weights, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Layer inputs ``acts[l]`` (``acts[0] = X``) and pre-activations ``zs[l]`` of every layer
    (the one forward pass, :func:`unrectify.formulations.network.forward`, in the arrays' own dtype)."""
    zs, outs = forward(weights, X, dtype=None)
    return [X, *outs[:-1]], zs


def loss_and_grad(weights: Weights, X: np.ndarray, Y: np.ndarray, loss: str) -> tuple[float, Weights]:
    """Mean forward-pass loss and its gradient (backpropagation, relu'(0) = 0)."""
    acts, zs = forward_all(weights, X)
    return backprop(weights, acts, [z > 0 for z in zs[:-1]], zs[-1] - Y, loss)


def backprop(weights: Weights, acts: list[np.ndarray], masks: list[np.ndarray], R: np.ndarray,
             loss: str) -> tuple[float, Weights]:
    """Mean loss of the output residual ``R`` and its weight gradient, given each layer's input
    ``acts[l]`` and the derivative masks of the hidden layers (``1[z > 0]``, or a fixed
    activation pattern ``D``)."""
    N = R.shape[0]
    if loss == "mse":
        f = float(np.einsum("ij,ij->", R, R)) / N
        delta = (2.0 / N) * R
    else:
        f = float(np.abs(R).sum()) / N
        delta = np.sign(R) / N
    grads: Weights = []
    for l in range(len(weights) - 1, -1, -1):
        grads.append((delta.T @ acts[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ weights[l][0]) * masks[l - 1]
    return f, grads[::-1]


def degenerate_set(zs: list[np.ndarray], tol: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per hidden layer, (samples, units) of the entries with ``|z| <= tol``."""
    return [np.nonzero(np.abs(Z) <= tol) for Z in zs[:-1]]


def z_jacobian(weights: Weights, acts: list[np.ndarray], zs: list[np.ndarray],
               S: list[tuple[np.ndarray, np.ndarray]], widths: tuple[int, ...],
               masks: list[np.ndarray] | None = None) -> np.ndarray:
    """``d z_s / d theta`` for every listed entry (rows) and packed weight (columns), by a
    backpropagation batched over the entries of each layer.  ``acts`` are the layer inputs;
    the activation derivative of hidden layer m is ``masks[m]`` (default ``zs[m] > 0``)."""
    offs = _offsets(widths)
    n_w = offs[-1][1] + widths[-1]
    rows = []
    for l, (ii, jj) in enumerate(S):
        k = ii.size
        if k == 0:
            continue
        J = np.zeros((k, n_w))
        oW, ob = offs[l]
        n_in = widths[l]
        cols = oW + jj[:, None] * n_in + np.arange(n_in)[None, :]
        J[np.arange(k)[:, None], cols] = acts[l][ii]
        J[np.arange(k), ob + jj] = 1.0
        delta = weights[l][0][jj].copy()  # dz/dx of the layer input, k x n_{l-1}
        for m in range(l - 1, -1, -1):
            delta *= (zs[m] > 0)[ii] if masks is None else masks[m][ii]
            oW, ob = offs[m]
            J[:, oW:ob] = (delta[:, :, None] * acts[m][ii][:, None, :]).reshape(k, -1)
            J[:, ob:ob + widths[m + 1]] = delta
            delta = delta @ weights[m][0]
        rows.append(J)
    return np.vstack(rows) if rows else np.zeros((0, n_w))


@dataclass
class Refined:
    weights: Weights
    S: list[tuple[np.ndarray, np.ndarray]]
    nu: list[np.ndarray]  # multipliers of z_s = 0 (sum-loss scale), one array per hidden layer
    iterations: int
    method: str


def refine(problem, weights: Weights, *, deg_tol: float, max_iter: int, max_weights: int, ftol: float,
           deadline: float | None = None, monitor=None, dtype: str = "float64") -> Refined:
    """Refine ``weights`` on their pattern (see the module docstring); ``deadline``
    (``time.perf_counter()`` seconds) stops the iterations early, and so does
    ``monitor(iteration, weights, loss)`` returning True (``loss`` = F / N at those weights;
    e.g. early stopping on validation data).  ``dtype="float32"`` evaluates the loss and
    gradient of the L-BFGS-B path (large networks) in float32 (half the time per iteration;
    L-BFGS-B itself and the returned weights stay float64); the SLSQP path of small networks,
    whose KKT multipliers are certified, is always float64."""
    import time

    from scipy.optimize import minimize

    widths = problem.widths
    count = [0]

    def stop_at_deadline(intermediate_result=None) -> None:
        if deadline is not None and time.perf_counter() >= deadline:
            raise StopIteration
        if monitor is not None:
            count[0] += 1
            x = np.asarray(getattr(intermediate_result, "x", intermediate_result), dtype=np.float64)
            f = getattr(intermediate_result, "fun", None)
            w = [(W.copy(), b.copy()) for W, b in unpack(x, widths)]
            if monitor(count[0], w, float(f) if f is not None else problem.forward_loss(w)):
                raise StopIteration

    X, Y, loss = problem.X, problem.Y, problem.loss
    B = problem.weight_bound
    N = X.shape[0]
    mask = np.concatenate([np.full(W.size + b.size, (l + 1) not in problem.frozen) for l, (W, b) in enumerate(weights)])
    theta0 = pack(weights)
    acts, zs = forward_all(weights, X)
    S = degenerate_set(zs, deg_tol)

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = loss_and_grad(unpack(t, widths), X, Y, loss)
        return f, pack(g) * mask

    X32 = Y32 = None

    def fun32(t: np.ndarray) -> tuple[float, np.ndarray]:
        w = [(W.astype(np.float32), b.astype(np.float32)) for W, b in unpack(t, widths)]
        f, g = loss_and_grad(w, X32, Y32, loss)
        return f, pack(g).astype(np.float64) * mask

    bounds = None
    if B is not None:
        bounds = list(zip(np.where(mask, -B, theta0), np.where(mask, B, theta0)))
    small = int(mask.sum()) <= max_weights
    if small:
        def cons_f(t: np.ndarray) -> np.ndarray:
            _, z = forward_all(unpack(t, widths), X)
            return np.concatenate([z[l][ii, jj] for l, (ii, jj) in enumerate(S)])

        def cons_j(t: np.ndarray) -> np.ndarray:
            w = unpack(t, widths)
            a, z = forward_all(w, X)
            return z_jacobian(w, a, z, S, widths) * mask

        n_s = sum(ii.size for ii, _ in S)
        constraints = [{"type": "eq", "fun": cons_f, "jac": cons_j}] if n_s else []
        res = minimize(fun, theta0, jac=True, method="SLSQP", bounds=bounds, constraints=constraints,
                       callback=stop_at_deadline,
                       options={"maxiter": int(max_iter), "ftol": ftol})
        method = "slsqp"
    else:
        S = [(np.zeros(0, int), np.zeros(0, int)) for _ in S]
        if np.dtype(dtype) == np.float32:
            X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
        res = minimize(fun if X32 is None else fun32, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                       callback=stop_at_deadline,
                       options={"maxiter": int(max_iter), "gtol": 0.0, "ftol": ftol, "maxcor": 20})
        method = "lbfgsb"
    theta = np.asarray(res.x, dtype=np.float64)
    if B is not None:
        theta = np.where(mask, np.clip(theta, -B, B), theta0)
    if not np.all(np.isfinite(theta)):
        theta = theta0
    new = [(W.copy(), b.copy()) for W, b in unpack(theta, widths)]
    # least-squares multipliers of the S constraints on the free (not at a bound) weights
    nu = [np.zeros(ii.size) for ii, _ in S]
    n_s = sum(ii.size for ii, _ in S)
    if n_s:
        acts, zs = forward_all(new, X)
        J = z_jacobian(new, acts, zs, S, widths)
        # the gradient of F with relu'(z) = 0 on S (z_s is ~0 up to rounding; counting it as
        # active would put its pass-through term into nu as well as into Lam2, see kkt_state)
        masks = [z > 0 for z in zs[:-1]]
        for l, (ii, jj) in enumerate(S):
            masks[l][ii, jj] = False
        _, g = backprop(new, acts, masks, zs[-1] - Y, loss)
        free = mask.astype(bool)
        if B is not None:
            free &= np.abs(theta) < B * (1 - 1e-9)
        sol = np.linalg.lstsq(J[:, free].T, N * pack(g)[free], rcond=None)[0]
        k = 0
        for l, (ii, _) in enumerate(S):
            nu[l] = sol[k:k + ii.size]
            k += ii.size
    return Refined(weights=new, S=S, nu=nu, iterations=int(getattr(res, "nit", 0)), method=method)


def kkt_state(ctx: Context, ref: Refined, mu: float) -> State:
    """Forward-pass iterate of the refined weights with the multipliers of the module docstring
    (stored as ``U = mu Lam``)."""
    st = state_from_forward(ctx, ref.weights, mu)
    lam = -2.0 * (st.ZL - ctx.Y) if ctx.loss == "mse" else -np.sign(st.ZL - ctx.Y)
    st.U1L[...] = mu * lam
    for l in range(len(st.hidden) - 1, -1, -1):
        h = st.hidden[l]
        lam2 = lam @ st.weights[l + 1][0].astype(ctx.dtype, copy=False)
        on = h.D > 0
        lam1 = np.where(on, lam2, 0.0)
        lam3 = np.where(on, 0.0, np.minimum(lam2, 0.0))
        lam4 = np.where(on, np.maximum(-lam2, 0.0), 0.0)
        ii, jj = ref.S[l]
        if ii.size:
            nu, l2 = ref.nu[l], lam2[ii, jj]
            up, down = nu >= l2, nu <= 0
            mid = ~up & ~down
            d = np.where(up, 1.0, 0.0)
            d[mid] = nu[mid] / l2[mid]
            h.D[ii, jj] = d
            h.X[ii, jj] = np.maximum(h.Z[ii, jj], 0.0)  # = relu(z), |z| tiny: C2 stays tiny
            h.P[ii, jj] = np.maximum(d * h.Z[ii, jj], 0.0)
            h.Q[ii, jj] = np.maximum(-(1 - d) * h.Z[ii, jj], 0.0)
            lam1[ii, jj] = nu
            lam3[ii, jj] = np.where(up, l2 - nu, 0.0)
            lam4[ii, jj] = np.where(down, -nu, 0.0)
        h.U1[...] = mu * lam1
        h.U2[...] = mu * lam2
        h.U3[...] = mu * lam3
        h.U4[...] = mu * lam4
        lam = lam1
    return st
