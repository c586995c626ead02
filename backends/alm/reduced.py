"""Reduced-space ALM of the relaxed split form with sample-block inner solves (large networks).

Why a second method.  The block-coordinate ALM of :mod:`unrectify.backends.alm.outer` keeps
``Z, X, D, P, Q`` as free variables tied by the equalities C1-C4.  At scale (digits, 1500 x
16-256-256-64) it stalls: measured, its inner sweeps lower the objective while ``||C1||`` and
``||C2||`` stay near 5e-2 (each sweep is one exact block minimisation, so information moves one
layer per sweep; the coupled Z/X/weight blocks are badly conditioned once ``mu`` is small), the
outer loop therefore shrinks ``mu`` on every step (``mu`` -> 3e-10) and the violation stops
moving (docs/alm.md, "Why the block ALM stalls at scale").

Here C1 and C2 are kept *exactly* by substitution.  With ``X_0`` the data, for hidden layers
``l = 1..L-1``::

    Z_l = X_{l-1} W_l^T + 1 b_l^T,    X_l = D_l * Z_l,    Z_L = X_{L-1} W_L^T + 1 b_L^T

so ``Z`` and ``X`` are functions of the primal variables ``(W, b, D)``, ``D_l in [0,1]^{N x n_l}``.
What remains of the relaxed split form are the sign constraints (the slacks P, Q eliminated)::

    g^a_l = -D_l * Z_l <= 0,        g^b_l = (1 - D_l) * Z_l <= 0,

and the problem is ``min F(Z_L(W, b, D)) / N`` s.t. ``g <= 0``, ``0 <= D <= 1`` (plus the optional
weight box).  Its feasible set is the ReLU graph (theorem of docs/theory.md), so at a feasible
point ``X = relu(Z)``; in general ``|X - relu(Z)| = max(g^a, g^b, 0)`` entrywise, which is the
split form's ``||C||_inf`` with optimal slacks, the violation reported here.

Augmented Lagrangian (Powell-Hestenes-Rockafellar, penalty ``rho = 1 / mu``, multipliers
``lam^a, lam^b >= 0`` per entry), normalised per sample::

    L_rho = (1/N) sum_i [ F_i + sum_{l,j} (1/(2 rho)) ( max(0, lam^a + rho g^a)^2 - (lam^a)^2
                                                   + max(0, lam^b + rho g^b)^2 - (lam^b)^2 ) ]

Outer loop (Birgin-Martinez, ALGENCAN style, "Practical augmented Lagrangian methods", SIAM
2014): after an inner solve, ``lam <- min(max(0, lam + rho g), lam_max)`` (safeguarded); with
``V_k = max |min(-g, lam / rho)|`` (feasibility-complementarity), ``rho <- gamma rho`` only when
``V_k > r V_{k-1}`` (infeasibility did not fall by the factor ``r``), and ``rho <= rho_max``.

Inner solve.  ``L_rho`` is a sum over samples: the weights are shared, ``D`` and the multipliers
are per sample.  Each inner iteration takes a sample block (mini-batch) ``I`` and

1. during the forward pass, layer by layer, replaces ``D_I`` by the exact minimiser of its
   penalty terms plus a Gauss-Newton proximal term (:meth:`_Run.refresh_d`, closed form): the
   sign constraints of entries whose ``z`` changed sign since the last visit are restored before
   the gradient is taken, so the penalty does not pin ``W`` to a stale activation pattern;
2. takes the gradient of ``L_rho`` on ``I`` by one backpropagation through ``X = D * Z``::

       dL/dZ_l = (dL/dX_l - m^a - m^b) * D_l + m^b,    dL/dD_l = (dL/dX_l - m^a - m^b) * Z_l
       m^a = max(0, lam^a + rho g^a),  m^b = max(0, lam^b + rho g^b)

3. makes an Adam step on ``(W, b)`` and a proximal-gradient step on ``D_I``
   (``D <- prox_penalty(D - c / kappa)``, ``c = dL/dX * Z``, the same closed form), i.e. a
   stochastic block-coordinate method on the AL subproblem (``inner_epochs`` passes over the
   data per outer iteration, more on small data sets: at least ``outer_samples`` samples).  The prox puts entries *on* the bounds 0 and 1.

Inner solves are inexact (a fixed number of passes), so the iterates are not certified KKT
points; the final full-batch stationarity is measured and reported, never assumed.

Binary D.  At the end ``D`` is made 0/1 by ``D = 1[Z > 0]`` layer by layer, i.e. the ReLU
forward pass of the weights.  At a feasible point this changes no ``X`` and so no loss (the
theorem); in general the change of ``X`` is bounded by the violation.  The reported
``forward_loss`` is that of the binary network, ``objective`` that of the relaxed iterate, and
``binary_fraction`` the fraction of the relaxed ``D`` within 1e-3 of {0, 1} before rounding.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unrectify.formulations.problem import TrainingProblem

from .threads import blas_thread_count, blas_threads

Weights = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class ReducedOutcome:  # noqa: D101
    """What the reduced-space ALM hands back to :func:`unrectify.backends.alm.solve_alm`."""

    weights: Weights
    D: list[np.ndarray]  # relaxed D of the final iterate (working dtype), before rounding
    lam_a: list[np.ndarray]
    lam_b: list[np.ndarray]
    stop_reason: str
    objective: float  # F(Z_L)/N of the relaxed iterate
    viol: float  # max |X - relu(Z)| = split-form ||C||_inf with optimal slacks
    pgrad: float  # full-batch projected gradient of L_rho (per sample), at the end
    rho: float
    outer: int
    steps: int
    binary_fraction: float
    stats: dict = field(default_factory=dict)

    def iterate(self, problem: TrainingProblem, dtype: np.dtype) -> tuple[list[dict], np.ndarray]:
        """The split-form iterate of this outcome: per hidden layer ``Z`` (substituted),
        ``X = D * Z`` and ``D``; and the output ``Z_L`` (C1 and C2 hold by construction)."""
        dt = np.dtype(dtype)
        H = np.asarray(problem.X, dtype=dt)
        hidden = []
        for (W, b), D in zip(self.weights[:-1], self.D):
            Z = H @ W.T.astype(dt) + b.astype(dt)
            H = D * Z
            hidden.append({"Z": Z, "X": H, "D": D})
        W, b = self.weights[-1]
        return hidden, H @ W.T.astype(dt) + b.astype(dt)


#: values of D and of the multipliers below this are set to 0 (see refresh_d)
TINY = 1e-30
#: fewest hidden-layer entries (rows x widest hidden layer) per worker thread for a step to be
#: split, i.e. 128 rows at width 256: measured on 2 cores (392-256-256-784, float32,
#: benchmarks/alm_reduced_speed.py) a 256-row step ran 1.03-1.08x as fast on two threads as on
#: one and a 512-row step 1.14-1.54x; a 128-row step split in two 64-row parts ran up to 1.15x
#: slower: GIL hand-offs outweigh the parallel element-wise work on small blocks
MIN_PART_ENTRIES = 128 * 256
#: fewest weights per thread for the Adam update to be split: element-wise chains on 2^15-entry
#: float32 blocks ran 1.2x slower on two threads than on one, on 2^16-entry blocks 1.4x faster
MIN_SLICE = 1 << 16


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class _Run:
    """The iterate and its vectorised kernels (all arrays in the working dtype)."""

    def __init__(self, problem: TrainingProblem, weights: Weights, dtype: np.dtype, opts: Any) -> None:
        self.dt = dt = np.dtype(dtype)
        self.X0 = np.ascontiguousarray(problem.X, dtype=dt)
        self.Y = np.ascontiguousarray(problem.Y, dtype=dt)
        self.loss = problem.loss
        self.B = problem.weight_bound
        self.frozen = frozenset(l - 1 for l in problem.frozen)
        self.N = self.X0.shape[0]
        # weights, gradient and Adam moments live in flat vectors (W_l, b_l are views), so the
        # Adam update is a few vector operations instead of five per parameter array
        shapes = [(np.shape(W), np.size(b)) for W, b in weights]
        n = sum(int(np.prod(sw)) + nb for sw, nb in shapes)
        self.theta = np.empty(n, dt)
        self.grad = np.zeros(n, dt)
        self.m = np.zeros(n, dt)
        self.v = np.zeros(n, dt)
        self.buf = np.empty(n, dt)
        self.W, self.b = [], []
        self.segments = []  # flat ranges of the trained layers (for the weight box)
        self.layout = []  # (start of W_l, start of b_l, end, shape of W_l) in the flat vectors
        i = 0
        for l, ((W, b), (sw, nb)) in enumerate(zip(weights, shapes)):
            j = i + int(np.prod(sw))
            self.layout.append((i, j, j + nb, sw))
            self.W.append(self.theta[i:j].reshape(sw))
            self.b.append(self.theta[j:j + nb])
            self.W[-1][...] = W
            self.b[-1][...] = np.reshape(b, -1)
            if l not in self.frozen:
                self.segments.append(slice(i, j + nb))
            i = j + nb
        self.gW, self.gb = self.views(self.grad)
        self.L = len(self.W)
        self.widest = max((W.shape[0] for W in self.W[:-1]), default=self.W[-1].shape[0])
        self.workers, self.pool, self.spare, self.spare_views, self.cuts = 1, None, [], [], []
        # rows per chunk of the full-data passes: ~2^20 entries of the widest layer, so their
        # temporaries stay small next to the N x n_l variables
        self.chunk = max(256, (1 << 20) // max(max(W.shape) for W in self.W))
        # D from the forward pass of the start weights (feasible start), multipliers zero
        self.D = [np.empty((self.N, W.shape[0]), dt) for W in self.W[:-1]]
        for rows in _chunks(self.N, self.chunk):
            H = self.X0[rows]
            for l in range(self.L - 1):
                Z = H @ self.W[l].T + self.b[l]
                self.D[l][rows] = Z > 0
                H = Z * self.D[l][rows]
        self.la = [np.zeros_like(D) for D in self.D]
        self.lb = [np.zeros_like(D) for D in self.D]
        self.rho = float(opts.rho0)
        self.t = 0

    def views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-layer ``(W_l, b_l)``-shaped views of a flat parameter-sized vector."""
        return ([flat[i:j].reshape(sw) for i, j, _, sw in self.layout],
                [flat[j:k] for _, j, k, _ in self.layout])

    def start_workers(self, n: int) -> None:
        """Run each step's sample block, the Adam update and the outer pass's chunks on ``n``
        threads (data parallel: rows are split, the weight gradient is the sum of the parts'
        gradients).  numpy's element-wise kernels release the GIL, so the D steps and the
        multiplier algebra, about half of a step at decoder size, use every core; the caller
        runs BLAS single-threaded meanwhile (:func:`reduced_alm`)."""
        if n <= 1 or self.pool is not None:
            return
        from concurrent.futures import ThreadPoolExecutor

        self.workers = int(n)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="unrectify-alm")
        self.spare = [np.zeros_like(self.grad) for _ in range(self.workers - 1)]
        self.spare_views = [self.views(g) for g in self.spare]
        n = self.theta.size  # one slice of the flat vector per worker for the Adam update
        self.cuts = [slice(n * k // self.workers, n * (k + 1) // self.workers) for k in range(self.workers)]

    def stop_workers(self) -> None:
        """Shut the worker threads down (the run goes on serially)."""
        if self.pool is not None:
            self.pool.shutdown()
        self.workers, self.pool, self.spare, self.spare_views, self.cuts = 1, None, [], [], []

    def parts(self, rows: np.ndarray) -> list[np.ndarray]:
        """``rows`` split into one contiguous part per worker (one part when a part would have
        fewer than ``MIN_PART_ENTRIES`` hidden-layer entries: there a thread hand-off costs more
        than it saves)."""
        if self.workers == 1 or len(rows) * self.widest < self.workers * MIN_PART_ENTRIES:
            return [rows]
        return np.array_split(rows, self.workers)

    def nbytes(self) -> int:
        """Bytes of the variables and multipliers (W, b, D, lam^a, lam^b)."""
        return self.theta.nbytes + sum(a.nbytes for a in (*self.D, *self.la, *self.lb))

    def kps(self) -> list[np.ndarray]:
        """Per hidden layer the proximal weight of D: the Gauss-Newton curvature of the loss in
        ``d`` through the next layer is ``2 z^2 ||W_{l+1}[:, j]||^2``; ``kp = 2 d_damp ||W_{l+1}[:, j]||^2``."""
        return [(2.0 * self.d_damp) * np.einsum("ij,ij->j", self.W[h + 1], self.W[h + 1]) for h in range(self.L - 1)]

    def forward(self, rows: slice | np.ndarray, refresh: bool = False, kps: list | None = None):
        """Layer inputs, pre-activations, D and the multipliers of the relaxed network on
        ``rows``; with ``refresh`` each hidden layer's ``D[rows]`` is first replaced by its
        penalty block minimiser (:meth:`refresh_d`) given the layer's ``Z`` (bottom up, so each
        ``Z`` sees the new ``D`` below it) and written back.  The multipliers are gathered once
        here for the whole step (``rows`` is usually an index array, so each gather copies)."""
        H = self.X0[rows]
        acts, zs, ds, las, lbs = [H], [], [], [], []
        if refresh and kps is None:
            kps = self.kps()
        for l in range(self.L):
            Z = H @ self.W[l].T
            Z += self.b[l]
            zs.append(Z)
            if l < self.L - 1:
                Dl = self.D[l][rows]
                la, lb = self.la[l][rows], self.lb[l][rows]
                if refresh:
                    Dl = self.refresh_d(Dl, Z, la, lb, kps[l])
                    self.D[l][rows] = Dl
                ds.append(Dl)
                las.append(la)
                lbs.append(lb)
                H = Z * Dl
                acts.append(H)
        return acts, zs, ds, las, lbs

    def refresh_d(self, D0: np.ndarray, Z: np.ndarray, la: np.ndarray, lb: np.ndarray, kp: np.ndarray) -> np.ndarray:
        """Proximal step on the penalty part in D (W, b and the other layers fixed), per entry::

            argmin_{d in [0,1]}  (kappa/2)(d - d0)^2 + (1/(2 rho))[max(0, la - rho z d)^2
                                                                + max(0, lb + rho z (1 - d))^2]

        with the Gauss-Newton weight ``kappa = kp z^2`` (``kp = 2 d_damp ||W_{l+1}[:, j]||^2``,
        the loss curvature in ``d`` through the next layer).  Convex piecewise quadratic in
        ``d``; dividing its derivative by ``t = |z|``:

        * ``z > 0``: the ``lb`` term is active on all of [0, 1], the ``la`` term for
          ``d < la / (rho t)``; ``d = (kp d0 + rho + lb/t) / (kp + rho)`` if that is past the
          breakpoint, else ``(kp d0 + rho + (la + lb)/t) / (kp + 2 rho)``;
        * ``z < 0``: the same problem in ``1 - d`` with ``la`` and ``lb`` swapped (substitute
          ``d = 1 - d'``: ``la - rho z d = la + rho t (1 - d')`` and ``lb + rho z (1 - d) =
          lb - rho t d'``), so one formula serves both signs: with ``(a, c) = (lb, la)`` for
          ``z > 0`` and ``(la, lb)`` for ``z < 0``, ``d0' = d0`` or ``1 - d0``,
          ``d' = max((kp d0' + rho + a/t)/(kp + rho), min((kp d0' + rho + (a + c)/t)/(kp + 2 rho), c/(rho t)))``
          and ``d = d'`` or ``1 - d'``;
        * ``z = 0``: ``d0`` (the value does not depend on d);

        then clipped to [0, 1] (exact: the derivative is monotone).  With zero multipliers it is
        ``(kp d0 + rho)/(kp + rho)`` for z > 0 and ``kp d0/(kp + rho)`` for z < 0: as ``rho``
        grows, ``1[z > 0]``, and the entry's violation is ``|z| kp / (kp + rho)``."""
        rho = self.rho
        dt = Z.dtype
        # masks are applied by multiplication: np.where / copyto(where=) / boolean indexing were
        # measured ~10x slower than a multiply on these arrays (random masks)
        s = np.sign(Z)  # +1, -1, 0
        posf = (Z > 0).astype(dt)
        negf = (Z < 0).astype(dt)
        t = np.abs(Z)
        np.fmax(t, 1e-20, out=t)
        # a: the multiplier active on all of [0, 1] (lb for z > 0, la for z < 0), c: the other
        # (selected by 0/1 products, exact; a sum-and-subtract would round the smaller one)
        a = lb * posf
        a += la * negf
        c = la * posf
        c += lb * negf
        a /= t
        c /= t
        # mirrored start d0' = d0 (z > 0), 1 - d0 (z < 0); 0 where z = 0 (overwritten below)
        d0m = D0 * s
        d0m += negf
        g = kp * d0m
        g += rho
        g += a  # kp d0' + rho + a/t
        d = g + c
        d /= kp + 2.0 * rho
        c /= rho
        np.fmin(d, c, out=d)
        g /= kp + rho
        np.fmax(d, g, out=d)
        # back to d: d' (z > 0), 1 - d' (z < 0), d0 (z = 0)
        d *= s
        d += negf
        zf = s * s
        np.subtract(1.0, zf, out=zf)
        zf *= D0
        d += zf
        # flush values below TINY to 0: repeated shrinking (d <- kp d / (kp + rho)) otherwise
        # walks D into subnormal floats
        d *= d >= TINY
        np.fmin(d, 1.0, out=d)
        return d

    def grads(self, rows, scale: float, kps: list | None = None, out: tuple[list, list] | None = None):
        """Gradient of ``scale * (F + penalty)`` on the sample block ``rows`` (one forward pass,
        with the penalty prox step in D when ``self.refresh``, and one backpropagation).
        Returns the weight gradients (views of ``self.grad``, or of the flat vector whose
        :meth:`views` ``out`` is; ``None`` for frozen layers),
        ``dL/dX_l`` per hidden layer (other terms than the layer's own penalty) and the
        pre-activations, D and multipliers of the block."""
        acts, zs, ds, las, lbs = self.forward(rows, refresh=self.refresh, kps=kps)
        R = zs[-1] - self.Y[rows]
        dZ = (2.0 * scale) * R if self.loss == "mse" else scale * np.sign(R)
        gW: list = [None] * self.L
        gb: list = [None] * self.L
        dXs: list = [None] * (self.L - 1)
        rho = self.rho
        oW, ob = (self.gW, self.gb) if out is None else out
        for l in range(self.L - 1, -1, -1):
            if l not in self.frozen:
                gW[l] = np.matmul(dZ.T, acts[l], out=oW[l])
                gb[l] = np.sum(dZ, axis=0, out=ob[l])
            if l == 0:
                break
            dX = dZ @ self.W[l]
            h = l - 1
            dXs[h] = dX
            Z, D = zs[h], ds[h]
            DZ = D * Z
            ma = DZ * -rho
            ma += las[h]
            np.fmax(ma, 0.0, out=ma)
            mb = Z - DZ
            mb *= rho
            mb += lbs[h]
            np.fmax(mb, 0.0, out=mb)
            # dL/dZ = dL/dX D - m^a D + m^b (1 - D) = (dL/dX - m^a - m^b) D + m^b
            ma += mb
            ma *= -scale
            ma += dX
            ma *= D
            mb *= scale
            ma += mb
            dZ = ma
        return gW, gb, dXs, zs, ds, las, lbs

    def penalty_value(self, rows) -> float:
        """Loss sum plus penalty sum on ``rows`` (for tests: the function whose gradient
        :meth:`grads` returns, up to constants in the multipliers)."""
        _, zs, ds, _, _ = self.forward(rows)
        R = zs[-1] - self.Y[rows]
        val = float(np.sum(R * R)) if self.loss == "mse" else float(np.abs(R).sum())
        for h in range(self.L - 1):
            DZ = ds[h] * zs[h]
            ma = np.maximum(self.la[h][rows] - self.rho * DZ, 0.0)
            mb = np.maximum(self.lb[h][rows] + self.rho * (zs[h] - DZ), 0.0)
            val += (0.5 / self.rho) * float(np.sum(ma * ma) + np.sum(mb * mb))
        return val

    def outer_pass(self, lam_max: float, refresh: bool, update: bool, chunk: int | None = None) -> dict:
        """One pass over all samples (chunked): the D block step (``refresh``), then the
        measures of the new iterate, then (``update``) the safeguarded PHR multiplier update
        ``lam <- clip(lam + rho g, 0, lam_max)``.  Returns the objective ``F/N`` of the relaxed
        iterate, the ReLU forward-pass loss of its weights (``D = 1[Z > 0]``), the violation
        ``max |X - relu(Z)|``, the ALGENCAN feasibility-complementarity measure
        ``max |min(-g, lam/rho)|`` (before the update) and the fraction of D within 1e-3 of {0, 1}."""
        kps = self.kps() if refresh else None
        chunks = _chunks(self.N, chunk or self.chunk)
        if self.pool is None:
            parts = [self._outer_chunk(rows, lam_max, refresh, update, kps) for rows in chunks]
        else:
            parts = list(self.pool.map(lambda rows: self._outer_chunk(rows, lam_max, refresh, update, kps), chunks))
        F, Fb = (math.fsum(p[i] for p in parts) for i in (0, 1))
        viol, comp = (max((p[i] for p in parts), default=0.0) for i in (2, 3))
        nbin, ntot = (sum(p[i] for p in parts) for i in (4, 5))
        return {"objective": F / self.N, "forward_loss": Fb / self.N, "viol": viol, "comp": comp,
                "binary_fraction": nbin / ntot if ntot else 1.0}

    def _outer_chunk(self, rows: slice, lam_max: float, refresh: bool, update: bool,
                     kps: list | None) -> tuple[float, float, float, float, int, int]:
        """:meth:`outer_pass` on one chunk of rows: ``(F, F of the binary network, violation,
        complementarity, entries of D near {0, 1}, entries)``."""
        rho = self.rho
        acts, zs, ds, _, _ = self.forward(rows, refresh=refresh, kps=kps)
        R = zs[-1] - self.Y[rows]
        F = float(np.einsum("ij,ij->", R, R, dtype=np.float64)) if self.loss == "mse" else float(np.abs(R).sum())
        # the binary network (ReLU forward pass); while its layer input equals the relaxed one
        # (D = 1[Z > 0] on the whole chunk, usual once rho is large) the relaxed Z is reused
        same = True
        H = self.X0[rows]
        for l in range(self.L):
            Zb = zs[l] if same else H @ self.W[l].T + self.b[l]
            if l < self.L - 1:
                H = np.maximum(Zb, 0.0)
                same = same and np.array_equal(H, acts[l + 1])
        if same:
            Fb = F
        else:
            Zb -= self.Y[rows]
            Fb = float(np.einsum("ij,ij->", Zb, Zb, dtype=np.float64)) if self.loss == "mse" else float(np.abs(Zb).sum())
        viol = comp = 0.0
        nbin = ntot = 0
        for h in range(self.L - 1):
            Z, D = zs[h], ds[h]
            ga = -D * Z
            gb = Z + ga
            la, lb = self.la[h][rows], self.lb[h][rows]  # views (rows is a slice)
            viol = max(viol, float(ga.max(initial=0.0)), float(gb.max(initial=0.0)))
            comp = max(comp, float(np.abs(np.minimum(-ga, la / rho)).max(initial=0.0)),
                       float(np.abs(np.minimum(-gb, lb / rho)).max(initial=0.0)))
            nbin += int(np.count_nonzero(np.minimum(D, 1.0 - D) <= 1e-3))
            ntot += D.size
            if update:
                la += rho * ga
                la *= la >= TINY  # clips at 0 and flushes subnormals (multiply: see refresh_d)
                np.fmin(la, lam_max, out=la)
                lb += rho * gb
                lb *= lb >= TINY
                np.fmin(lb, lam_max, out=lb)
        return F, Fb, viol, comp, nbin, ntot

    def step(self, rows: np.ndarray, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        """One inner iteration on the sample block ``rows``: gradient at the current iterate
        (after the penalty prox step in D), an Adam step on (W, b), and a proximal-gradient
        step on ``D[rows]``: ``D <- prox_P(D - c / kappa)`` with ``c = dL/dX * Z`` (the rest of
        L's derivative in D) and the Gauss-Newton metric ``kappa = kp Z^2``, i.e. the exact
        minimiser over [0, 1] of ``c (d - d0) + (kappa/2)(d - d0)^2 + penalty(d)``."""
        scale = 1.0 / len(rows)
        # one kp per step (from the weights before the update) for both D steps
        kps = self.kps() if (self.refresh or self.d_step) else None
        parts = self.parts(rows)
        if len(parts) == 1:
            self._block(rows, scale, kps, None)
        else:  # the D steps need no updated weight, so each part makes its own after its gradient
            outs = [None, *self.spare_views]
            for f in [self.pool.submit(self._block, p, scale, kps, o) for p, o in zip(parts, outs)]:
                f.result()
        self.t += 1
        c1 = 1.0 - beta1 ** self.t
        c2 = 1.0 - beta2 ** self.t
        a = lr * math.sqrt(c2) / c1
        spare = self.spare[:len(parts) - 1]
        if self.pool is None or self.theta.size < self.workers * MIN_SLICE:
            self._adam(slice(None), spare, a, beta1, beta2, eps)
        else:
            for f in [self.pool.submit(self._adam, c, spare, a, beta1, beta2, eps) for c in self.cuts]:
                f.result()
        if self.B is not None:
            for seg in self.segments:
                np.clip(self.theta[seg], -self.B, self.B, out=self.theta[seg])

    def _block(self, rows: np.ndarray, scale: float, kps: list | None, out: tuple[list, list] | None) -> None:
        """The gradient on ``rows`` (into ``out``, see :meth:`grads`) and, with ``d_step``, the
        proximal-gradient step on ``D[rows]`` (:meth:`step`)."""
        _, _, dXs, zs, ds, las, lbs = self.grads(rows, scale, kps, out)
        if not self.d_step:
            return
        for h in range(self.L - 1):
            Z = zs[h]
            kp = kps[h] + 1e-12
            t = Z + (Z == 0)  # 1 where z = 0 (the step there is a no-op: refresh_d keeps d0)
            # d0 - c/kappa with c = dX Z (scaled like kappa by 1/|I|): d0 - dX / (scale kp Z)
            t *= scale * kp
            target = dXs[h] / t
            np.subtract(ds[h], target, out=target)
            self.D[h][rows] = self.refresh_d(target, Z, las[h], lbs[h], kp)

    def _adam(self, cut: slice, spare: list[np.ndarray], a: float, beta1: float, beta2: float, eps: float) -> None:
        """Adam on the entries ``cut`` of the flat vector, after adding the other parts'
        gradients (frozen layers have zero gradient, hence zero moments and steps)."""
        g, m, v, buf = self.grad[cut], self.m[cut], self.v[cut], self.buf[cut]
        for other in spare:
            g += other[cut]
        m *= beta1
        np.multiply(g, 1.0 - beta1, out=buf)
        m += buf
        v *= beta2
        np.multiply(g, g, out=buf)
        buf *= 1.0 - beta2
        v += buf
        np.sqrt(v, out=buf)
        buf += eps
        np.divide(m, buf, out=buf)
        buf *= a
        self.theta[cut] -= buf


def forward_loss(problem: TrainingProblem, weights: Weights, chunk: int = 2048) -> float:
    """``problem.forward_loss(weights)`` (float64) computed on row chunks, so that its
    temporaries stay small next to the ALM's variables at N = 60 000."""
    X, Y = problem.X, problem.Y
    total = 0.0
    for rows in _chunks(X.shape[0], chunk):
        H = np.asarray(X[rows], dtype=np.float64)
        for l, (W, b) in enumerate(weights):
            H = H @ W.T + b
            if l < len(weights) - 1:
                np.maximum(H, 0.0, out=H)
        H -= Y[rows]
        total += float(np.einsum("ij,ij->", H, H)) if problem.loss == "mse" else float(np.abs(H).sum())
    return total / max(X.shape[0], 1)


def binarize(problem: TrainingProblem, weights: Weights) -> tuple[list[dict], np.ndarray, float]:
    """Binary D of ``weights``: ``D_l = 1[Z_l > 0]`` layer by layer (the ReLU forward pass), with
    ``X = D * Z``, the output and the loss.  At a feasible relaxed iterate this changes no ``X``
    (``x = d z = relu(z)`` forces d = 1 where z > 0 and d z = 0 where z <= 0), so the loss is
    unchanged (theorem of docs/theory.md); the solvers report this loss as ``forward_loss``."""
    H = np.asarray(problem.X, dtype=np.float64)
    hidden = []
    for W, b in weights[:-1]:
        Z = H @ np.asarray(W).T + b
        D = (Z > 0).astype(np.float64)
        H = D * Z
        hidden.append({"Z": Z, "X": H, "D": D})
    W, b = weights[-1]
    out = H @ np.asarray(W).T + b
    R = out - problem.Y
    n = max(R.shape[0], 1)
    loss = float(np.sum(R * R) / n) if problem.loss == "mse" else float(np.abs(R).sum() / n)
    return hidden, out, loss


def stationarity(run: _Run, chunk: int | None = None) -> float:
    """Sup norm of the full-batch projected gradient of ``L_rho / N``: weights (gradient of the
    per-sample mean) and D (per-sample derivative ``(dL/dX - m^a - m^b) Z``, projected on [0, 1])."""
    gW = [np.zeros_like(W, dtype=np.float64) for W in run.W]
    gb = [np.zeros_like(b, dtype=np.float64) for b in run.b]
    s = 0.0
    refresh = run.refresh
    run.refresh = False
    try:
        for rows in _chunks(run.N, chunk or run.chunk):
            gWc, gbc, dXs, zs, ds, las, lbs = run.grads(rows, 1.0 / run.N)
            for l in range(run.L):
                if gWc[l] is not None:
                    gW[l] += gWc[l]
                    gb[l] += gbc[l]
            for h in range(run.L - 1):
                Z, D = zs[h], ds[h]
                DZ = D * Z
                m = np.maximum(las[h] - run.rho * DZ, 0.0) + np.maximum(lbs[h] + run.rho * (Z - DZ), 0.0)
                g = (run.N * dXs[h] - m) * Z
                s = max(s, float(np.abs(D - np.clip(D - g, 0.0, 1.0)).max(initial=0.0)))
    finally:
        run.refresh = refresh
    for l in range(run.L):
        if l in run.frozen:
            continue
        for v, g in ((run.W[l], gW[l]), (run.b[l], gb[l])):
            t = v - g if run.B is None else np.clip(v - g, -run.B, run.B)
            s = max(s, float(np.abs(v - t).max(initial=0.0)))
    return s


def cosine_lr(lr: float, elapsed: float, budget: float | None, outer: int, max_outer: int) -> float:
    """``lr (1 + cos(pi f)) / 2`` with ``f`` the used fraction of whichever budget runs out first
    (seconds or outer iterations), as the Adam decoders decay theirs."""
    f = outer / max_outer
    if budget is not None and budget > 0:
        f = max(f, elapsed / budget)
    return 0.5 * lr * (1.0 + math.cos(math.pi * min(f, 1.0)))


def reduced_alm(problem: TrainingProblem, weights: Weights, opts: Any, *, deadline: float | None, t0: float,
                history: list[dict], restart: int = 0, callback: Callable[[dict], Any] | None = None,
                seed: int = 0) -> ReducedOutcome:
    """Run the reduced-space ALM from ``weights`` (see the module docstring)."""
    from .outer import StallMonitor

    run = _Run(problem, weights, opts.dtype, opts)
    run.d_damp = float(opts.d_damp)
    run.refresh = bool(opts.d_refresh)
    run.d_step = bool(opts.d_step)
    rng = np.random.default_rng([int(seed), 7919, restart])
    N = run.N
    bs = min(int(opts.batch_size), N)
    # an outer iteration is a full-data pass (D step, measures, multiplier update), estimated at
    # about the cost of one pass of inner steps (not profiled); on small data sets it runs after
    # at least outer_samples samples of inner steps (digits, N = 1500: every 6 passes)
    passes = max(int(opts.inner_epochs), -(-int(opts.outer_samples) // N))
    prev_comp = math.inf
    stall = StallMonitor(opts.stall_window, opts.stall_obj_rtol, opts.stall_viol_ratio, opts.tol)
    reason = "max_outer"
    steps = 0
    k = 0
    # data-parallel threads on the cores BLAS would use (BLAS single-threaded meanwhile; the
    # callback, e.g. a validation pass, runs between outer iterations with the usual setting)
    run.start_workers(blas_thread_count())

    def lane():
        return blas_threads(1) if run.workers > 1 else contextlib.nullcontext()

    try:
        with lane():
            m = run.outer_pass(opts.lam_max, refresh=False, update=False)
        t_start = time.perf_counter()
        lr = opts.lr
        for k in range(1, opts.max_outer + 1):
            stop = False
            with lane():
                for _ in range(passes):
                    perm = rng.permutation(N)
                    for s in range(0, N, bs):
                        run.step(np.sort(perm[s:s + bs]), lr)
                        steps += 1
                        if steps % 8 == 0:
                            now = time.perf_counter()
                            if deadline is not None and now >= deadline:
                                stop = True
                                break
                            if opts.lr_schedule == "cosine":
                                lr = cosine_lr(opts.lr, now - t_start, deadline - t_start if deadline is not None else None,
                                               k - 1, opts.max_outer)
                    if stop:
                        break
                m = run.outer_pass(opts.lam_max, refresh=run.refresh, update=not stop)
            rec = {"restart": restart, "outer": k, "phase": "reduced", "loss": m["objective"],
                   "forward_loss": m["forward_loss"], "viol": m["viol"], "comp": m["comp"], "pgrad": float("nan"),
                   "mu": 1.0 / run.rho, "rho": run.rho, "binary_fraction": m["binary_fraction"], "steps": steps,
                   "sweeps": 0, "seconds": time.perf_counter() - t0}
            history.append(rec)
            if not (math.isfinite(m["objective"]) and math.isfinite(m["viol"])):
                reason = "nonfinite"
                break
            if callback is not None and callback({**rec, "weights": list(zip(run.W, run.b))}):
                reason = "callback"
                break
            if stop or (deadline is not None and time.perf_counter() >= deadline):
                reason = "time_limit"
                break
            if stall.update(m["objective"], m["viol"]):
                reason = "stalled"
                break
            # ALGENCAN: raise rho only when infeasibility-complementarity fell by less than the factor
            if m["comp"] > opts.feas_ratio * prev_comp and m["comp"] > opts.tol:
                run.rho = min(run.rho * opts.rho_growth, opts.rho_max)
            prev_comp = m["comp"]
    finally:
        run.stop_workers()
    pgrad = stationarity(run) if reason != "nonfinite" else float("nan")
    if reason in ("max_outer", "time_limit", "stalled") and m["viol"] <= opts.tol and pgrad <= opts.stat_tol:
        reason = "converged"  # both tolerances shown to hold at the returned iterate
    return ReducedOutcome(
        weights=[(W.astype(np.float64), b.astype(np.float64)) for W, b in zip(run.W, run.b)],
        D=run.D, lam_a=run.la, lam_b=run.lb, stop_reason=reason, objective=m["objective"], viol=m["viol"],
        pgrad=pgrad, rho=run.rho, outer=k, steps=steps, binary_fraction=m["binary_fraction"],
        stats={"nbytes": run.nbytes(), "forward_loss": m["forward_loss"]})
