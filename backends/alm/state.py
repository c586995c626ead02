"""ALM iterate: variables, multipliers, and the functions evaluated on them.

Relaxed split form (docs/theory.md). Layers ``l = 1..L``, ``X_0`` = data; hidden layers
``l < L`` carry ``Z, X, D, P, Q`` (each ``N x n_l``), the output layer carries ``Z_L``::

    C1_l = Z_l - (X_{l-1} W_l^T + 1 b_l^T)      (every layer)
    C2_l = X_l - D_l * Z_l                       (hidden layers; * is elementwise)
    C3_l = D_l * Z_l - P_l                       (D Z >= 0 with slack P >= 0)
    C4_l = (1 - D_l) * Z_l + Q_l                 ((1 - D) Z <= 0 with slack Q >= 0)
    0 <= D <= 1,  P, Q >= 0,  |W|, |b| <= B (optional)

Objective: the ALM minimises ``F(Z_L) = N * loss`` (the *sum* over samples of the squared or
absolute error), so ``mu`` and the multipliers are per-entry quantities whose meaning does not
depend on N; reported losses are the usual means.  Augmented Lagrangian::

    L = F(Z_L) + sum_k <Lam_k, C_k> + 1/(2 mu) sum_k ||C_k||_F^2
      = F(Z_L) + 1/(2 mu) sum_k (||C_k + U_k||_F^2 - ||U_k||_F^2),   U_k = mu Lam_k.

The iterate stores the *scaled* multipliers ``U_k = mu Lam_k``: every block update is a
least-squares fit to ``-U_k``-shifted targets, so this saves a multiply per use; a change of
``mu`` rescales them (``U *= mu_new / mu_old``), the multiplier update is ``U_k += C_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from unrectify.formulations.network import forward
from unrectify.formulations.problem import TrainingProblem

Weights = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Hidden:
    """Variables and scaled multipliers ``U_k = mu Lam_k`` of one hidden layer (all ``N x n_l``)."""

    Z: np.ndarray
    X: np.ndarray
    D: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    U1: np.ndarray
    U2: np.ndarray
    U3: np.ndarray
    U4: np.ndarray


@dataclass
class Context:
    """Problem data cast to the working dtype, plus the constant Gram matrix of the inputs."""

    X0: np.ndarray
    Y: np.ndarray
    loss: str
    bound: float | None
    frozen: frozenset[int]  # 0-based layer indices whose weights are data
    dtype: np.dtype
    gram0: np.ndarray  # [X0, 1]^T [X0, 1] in float64, constant across sweeps
    box_newton_dim: int = 64
    box_iters: int = 100

    @property
    def n_samples(self) -> int:
        return int(self.X0.shape[0])


@dataclass
class State:
    """Weights (float64), hidden layers, output pre-activation ``Z_L`` with its scaled
    multiplier ``U1L``, and the penalty parameter ``mu``."""

    weights: Weights
    hidden: list[Hidden]
    ZL: np.ndarray
    U1L: np.ndarray
    mu: float
    extra: dict = field(default_factory=dict)

    def nbytes(self) -> int:
        """Bytes held by the iterate's arrays (variables and multipliers)."""
        n = self.ZL.nbytes + self.U1L.nbytes + sum(W.nbytes + b.nbytes for W, b in self.weights)
        for h in self.hidden:
            n += sum(a.nbytes for a in (h.Z, h.X, h.D, h.P, h.Q, h.U1, h.U2, h.U3, h.U4))
        return n

    def set_mu(self, mu: float) -> None:
        """Change ``mu`` keeping the multipliers ``Lam = U / mu`` fixed."""
        r = float(mu) / self.mu
        for U in all_multipliers(self):
            U *= r
        self.mu = float(mu)

    def lambdas(self) -> list[list[np.ndarray]]:
        """Unscaled multipliers ``Lam_k = U_k / mu`` per layer (copies)."""
        return [[U / self.mu for U in multipliers(self, l)] for l in range(len(self.weights))]


def make_context(problem: TrainingProblem, dtype: str = "float64", box_newton_dim: int = 64,
                 box_iters: int = 100) -> Context:
    dt = np.dtype(dtype)
    X0 = np.ascontiguousarray(problem.X, dtype=dt)
    Y = np.ascontiguousarray(problem.Y, dtype=dt)
    return Context(X0=X0, Y=Y, loss=problem.loss, bound=problem.weight_bound,
                   frozen=frozenset(l - 1 for l in problem.frozen), dtype=dt,
                   gram0=augmented_gram(problem.X.astype(np.float64, copy=False)),
                   box_newton_dim=box_newton_dim, box_iters=box_iters)


def augmented_gram(H: np.ndarray) -> np.ndarray:
    """``[H, 1]^T [H, 1]`` in float64 without forming ``[H, 1]`` (memory O(n^2), not O(N n))."""
    n = H.shape[1]
    G = np.empty((n + 1, n + 1))
    G[:n, :n] = H.T @ H
    s = H.sum(axis=0, dtype=np.float64)
    G[:n, n] = s
    G[n, :n] = s
    G[n, n] = H.shape[0]
    return G


def state_from_forward(ctx: Context, weights: Sequence[tuple[np.ndarray, np.ndarray]], mu: float) -> State:
    """The feasible split iterate of ``weights``: Z from the forward pass, X = relu(Z),
    D = 1[Z > 0], P = D Z, Q = -(1 - D) Z, zero multipliers (every C_k is exactly 0)."""
    dt = ctx.dtype
    ws = [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64).reshape(-1)) for W, b in weights]
    hidden: list[Hidden] = []
    zs, xs = forward(ws, ctx.X0, dtype=dt)   # the one forward pass, in the working dtype
    for Z, X in zip(zs[:-1], xs[:-1]):
        D = (Z > 0).astype(dt)
        Q = np.maximum(-Z, 0)
        # np.zeros (calloc: pages are mapped on first write) rather than zeros_like, which
        # fills and so page-faults every multiplier array up front (measured 0.1 s per 40 MB)
        hidden.append(Hidden(Z=Z, X=X, D=D, P=X.copy(), Q=Q, U1=np.zeros(Z.shape, dt), U2=np.zeros(Z.shape, dt),
                             U3=np.zeros(Z.shape, dt), U4=np.zeros(Z.shape, dt)))
    ZL = zs[-1]
    return State(weights=ws, hidden=hidden, ZL=ZL, U1L=np.zeros(ZL.shape, dt), mu=float(mu))


def affine(H: np.ndarray, W: np.ndarray, b: np.ndarray, dt: np.dtype) -> np.ndarray:
    """``H W^T + b`` in the working dtype (one GEMM)."""
    out = H @ W.T.astype(dt, copy=False)
    out += b.astype(dt, copy=False)
    return out


def layer_input(ctx: Context, st: State, l: int) -> np.ndarray:
    return ctx.X0 if l == 0 else st.hidden[l - 1].X


def loss_sum(ctx: Context, ZL: np.ndarray) -> float:
    """``F(Z_L) = N * loss``: sum of squared (mse) or absolute (mae) errors, in float64."""
    R = ZL - ctx.Y
    if ctx.loss == "mse":
        return float(np.einsum("ij,ij->", R, R, dtype=np.float64))
    return float(np.abs(R).sum(dtype=np.float64))


def residuals(ctx: Context, st: State, l: int) -> list[np.ndarray]:
    """``[C1, C2, C3, C4]`` of layer ``l`` (0-based); only ``[C1]`` for the output layer."""
    W, b = st.weights[l]
    H = layer_input(ctx, st, l)
    if l == len(st.weights) - 1:
        C1 = st.ZL - affine(H, W, b, ctx.dtype)
        return [C1]
    h = st.hidden[l]
    C1 = h.Z - affine(H, W, b, ctx.dtype)
    DZ = h.D * h.Z
    return [C1, h.X - DZ, DZ - h.P, h.Z - DZ + h.Q]


def multipliers(st: State, l: int) -> list[np.ndarray]:
    """Scaled multipliers ``[U1, U2, U3, U4]`` of layer ``l`` (``[U1]`` for the output layer)."""
    if l == len(st.weights) - 1:
        return [st.U1L]
    h = st.hidden[l]
    return [h.U1, h.U2, h.U3, h.U4]


def all_multipliers(st: State) -> list[np.ndarray]:
    return [U for l in range(len(st.weights)) for U in multipliers(st, l)]


def violation(ctx: Context, st: State) -> float:
    """``max_k ||C_k||_inf`` (bounds on D, P, Q and the weight box hold by construction)."""
    v = 0.0
    for l in range(len(st.weights)):
        for C in residuals(ctx, st, l):
            v = max(v, float(np.abs(C).max(initial=0.0)))
    return v


def augmented_lagrangian(ctx: Context, st: State) -> float:
    """The value of ``L`` (float64 accumulation)."""
    val = loss_sum(ctx, st.ZL)
    inv = 0.5 / st.mu
    for l in range(len(st.weights)):
        for C, U in zip(residuals(ctx, st, l), multipliers(st, l)):
            # <Lam, C> + ||C||^2/(2 mu) with Lam = U/mu, accumulated in float64
            val += inv * (2.0 * float(np.vdot(U, C).real) + float(np.vdot(C, C).real))
    return val


def update_multipliers(ctx: Context, st: State) -> float:
    """First-order update ``Lam_k += C_k / mu`` (``U_k += C_k``); returns ``||C||_inf`` before it."""
    v = 0.0
    for l in range(len(st.weights)):
        for C, U in zip(residuals(ctx, st, l), multipliers(st, l)):
            v = max(v, float(np.abs(C).max(initial=0.0)))
            U += C
    return v


@dataclass
class Metrics:
    """One evaluation of the iterate: ``al`` = L, ``objective`` = F(Z_L)/N (the ALM's loss),
    ``viol`` = max_k ||C_k||_inf, ``pgrad`` = projected-gradient sup norm (see :func:`evaluate`)."""

    al: float
    objective: float
    viol: float
    pgrad: float


def absmax(a: np.ndarray) -> float:
    """``max |a|`` without an ``|a|`` temporary (two reductions)."""
    if a.size == 0:
        return 0.0
    return float(max(a.max(), -a.min()))


def row_blocks(n_rows: int, n_cols: int, entries: int | None = None) -> list[slice]:
    """Row slices of about ``entries`` (default :data:`BLOCK_ENTRIES`) entries (one slice for
    small arrays): the elementwise kernels run on such blocks so that their many passes hit
    cache rather than memory (a blocking of the sample axis, not a loop over samples)."""
    step = max(1, (BLOCK_ENTRIES if entries is None else entries) // max(n_cols, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


#: entries per row block of the elementwise kernels (measured: 2^16 float64 entries made the
#: Z/D/P/Q update of a 20000 x 512 layer 3.3x faster than whole-array passes)
BLOCK_ENTRIES = 1 << 16


def evaluate(ctx: Context, st: State) -> Metrics:
    """L, loss, violation and stationarity from one pass over the residuals.

    Stationarity is the sup norm of the projected gradient of ``L`` over all variables.  With
    ``G_k = Lam_k + C_k / mu = (U_k + C_k) / mu`` (the multiplier estimates):
    ``dL/dZ = G1 - D G2 + D G3 + (1 - D) G4``, ``dL/dX_l = G2_l - G1_{l+1} W_{l+1}``,
    ``dL/dD = Z (G3 - G2 - G4)``, ``dL/dP = -G3``, ``dL/dQ = G4``, ``dL/dW_l = -G1_l^T X_{l-1}``,
    ``dL/db_l = -1^T G1_l``, ``dL/dZ_L = grad F + G1_L``.  Bounded variables use
    ``v - clip(v - g, lo, hi)``; for mae the output block uses the proximal gradient
    ``Z_L - prox_F(Z_L - G1_L)``.  Weight gradients are divided by N (they sum over samples),
    so the measure is per sample and ``stat_tol`` does not depend on N.
    """
    N = ctx.n_samples
    L = len(st.weights)
    inv = 1.0 / st.mu
    B = ctx.bound
    F = loss_sum(ctx, st.ZL)
    al = F
    viol = 0.0
    s = 0.0

    def account(C: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Add <Lam, C> + ||C||^2/(2 mu) to L, C to the violation; return G = (U + C)/mu in C's memory."""
        nonlocal al, viol
        viol = max(viol, absmax(C))
        al += 0.5 * inv * (2.0 * float(np.vdot(U, C)) + float(np.vdot(C, C)))
        C += U
        C *= inv
        return C

    def weight_grad(l: int, G1: np.ndarray) -> None:
        nonlocal s
        if l in ctx.frozen:
            return
        W, b = st.weights[l]
        gW = -(G1.T @ layer_input(ctx, st, l)).astype(np.float64) / N
        gb = -G1.sum(axis=0, dtype=np.float64) / N
        for v, g in ((W, gW), (b, gb)):
            target = v - g if B is None else np.clip(v - g, -B, B)
            s = max(s, float(np.abs(v - target).max(initial=0.0)))

    # top down, so that only the G1 of the layer above is alive (memory: a few N x n_l arrays)
    (C1L,) = residuals(ctx, st, L - 1)
    G1_above = account(C1L, st.U1L)
    if ctx.loss == "mse":
        s = max(s, float(np.abs(2 * (st.ZL - ctx.Y) + G1_above).max(initial=0.0)))
    else:
        V = st.ZL - G1_above - ctx.Y
        prox = ctx.Y + np.sign(V) * np.maximum(np.abs(V) - 1.0, 0)
        s = max(s, float(np.abs(st.ZL - prox).max(initial=0.0)))
        del V, prox
    weight_grad(L - 1, G1_above)
    for l in range(L - 2, -1, -1):
        h = st.hidden[l]
        W, b = st.weights[l]
        C1 = h.Z - affine(layer_input(ctx, st, l), W, b, ctx.dtype)
        G1 = account(C1, h.U1)
        gX = G1_above @ st.weights[l + 1][0].astype(ctx.dtype, copy=False)
        del G1_above
        # the elementwise rest on row blocks (cache-sized temporaries, see blocks.row_blocks)
        for rows in row_blocks(*h.Z.shape):
            Z, X, D, P, Q = h.Z[rows], h.X[rows], h.D[rows], h.P[rows], h.Q[rows]
            DZ = D * Z
            G2 = account(X - DZ, h.U2[rows])
            G3 = account(DZ - P, h.U3[rows])
            np.subtract(Z, DZ, out=DZ)
            DZ += Q
            G4 = account(DZ, h.U4[rows])
            t = gX[rows]
            np.subtract(G2, t, out=t)  # dL/dX
            s = max(s, absmax(t))
            # T = G3 - G2 - G4 gives dL/dZ = G1 + G4 + D T and dL/dD = Z T (fewer passes)
            np.subtract(G3, G2, out=G2)
            G2 -= G4
            T = G2
            np.multiply(D, T, out=t)
            t += G1[rows]
            t += G4
            s = max(s, absmax(t))
            np.multiply(Z, T, out=t)  # dL/dD; projected: D - clip(D - g, 0, 1)
            np.subtract(D, t, out=t)
            np.clip(t, 0.0, 1.0, out=t)
            np.subtract(D, t, out=t)
            s = max(s, absmax(t))
            np.add(P, G3, out=t)  # dL/dP = -G3: P - max(P + G3, 0)
            np.maximum(t, 0.0, out=t)
            np.subtract(P, t, out=t)
            s = max(s, absmax(t))
            np.subtract(Q, G4, out=t)  # dL/dQ = G4: Q - max(Q - G4, 0)
            np.maximum(t, 0.0, out=t)
            np.subtract(Q, t, out=t)
            s = max(s, absmax(t))
        del gX
        weight_grad(l, G1)
        G1_above = G1  # read by the next, lower layer
    return Metrics(al=al, objective=F / N, viol=viol, pgrad=s)
