"""A solver-free, array-shaped model: a QCQP in coordinate form.

Variables live in one flat vector ``v`` and are created in named, array-shaped blocks
(:meth:`Model.add_var` returns the integer index array of the block).  Constraints are
added a whole block at a time, every row being

    sum_k a_k v[i_k]  +  sum_k q_k v[j_k] v[l_k]   (<= | == | >=)   rhs

with the coefficient and index arrays broadcast to ``rows + (K,)`` (``K`` terms summed per
row).  The objective has the same linear + bilinear form plus a constant.  Nothing here
knows about a solver: backends translate the coordinate arrays (a CSR matrix for the linear
part, sorted COO triples for the bilinear part) into their native objects, and
:meth:`Model.evaluate` recomputes residuals in numpy to certify any returned point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from .errors import InputError

SENSES = {"==": 0, "<=": -1, ">=": 1}

Linear = tuple[np.ndarray | float, np.ndarray]              # (coef, index)
Bilinear = tuple[np.ndarray | float, np.ndarray, np.ndarray]  # (coef, index_a, index_b)


@dataclass
class ConstraintBlock:
    name: str
    start: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))

    @property
    def rows(self) -> slice:
        return slice(self.start, self.start + self.size)


@dataclass
class Evaluation:
    """Residuals of a point, recomputed in numpy."""

    objective: float
    max_violation: float          # constraints and bounds together
    constraint_violation: float
    bound_violation: float
    integrality_violation: float
    row_violation: np.ndarray = field(repr=False)


def _broadcast_rows(shape: tuple[int, ...], *arrays) -> tuple[np.ndarray, list[np.ndarray]]:
    """Broadcast term arrays to ``shape`` or ``shape + (K,)``; return flat row ids and arrays."""
    arrs = [np.asarray(a) for a in arrays]
    nd = max(a.ndim for a in arrs)
    if nd > len(shape) + 1:
        raise InputError(f"term with {nd} dimensions does not match constraint rows {shape}")
    base = shape + (1,) if nd == len(shape) + 1 else shape
    try:
        full = np.broadcast_shapes(base, *(a.shape for a in arrs))
    except ValueError:
        raise InputError(f"term shapes {[a.shape for a in arrs]} do not match constraint rows {shape}") from None
    if tuple(full[: len(shape)]) != tuple(shape):
        raise InputError(f"term of shape {full} does not match constraint rows {shape}")
    rows = np.arange(int(np.prod(shape, dtype=int))).reshape(shape + (1,) * (len(full) - len(shape)))
    rows = np.broadcast_to(rows, full).ravel()
    return rows, [np.broadcast_to(a, full).ravel() for a in arrs]


class Model:
    """Array-shaped mixed-integer QCQP, built by formulations and compiled by backends."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.blocks: dict[str, np.ndarray] = {}
        self.constraint_blocks: dict[str, ConstraintBlock] = {}
        self.meta: dict = {}
        self._lb: list[np.ndarray] = []
        self._ub: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._nv = 0
        self._nc = 0
        self._lin: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._quad: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._sense: list[np.ndarray] = []
        self._rhs: list[np.ndarray] = []
        self.obj_linear: list[tuple[np.ndarray, np.ndarray]] = []
        self.obj_quad: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.obj_constant = 0.0

    # -- building ----------------------------------------------------------------
    def add_var(self, name: str, shape: Sequence[int], lb=-np.inf, ub=np.inf, integer: bool = False) -> np.ndarray:
        """Create a block of variables; returns its index array of the given shape."""
        if name in self.blocks:
            raise InputError(f"variable block {name!r} defined twice")
        shape = tuple(int(s) for s in shape)
        size = int(np.prod(shape, dtype=int))
        lo = np.broadcast_to(np.asarray(lb, dtype=float), shape).ravel().copy()
        hi = np.broadcast_to(np.asarray(ub, dtype=float), shape).ravel().copy()
        if np.any(lo > hi):
            raise InputError(f"variable block {name!r} has a lower bound above its upper bound")
        idx = np.arange(self._nv, self._nv + size).reshape(shape)
        self._nv += size
        self._lb.append(lo)
        self._ub.append(hi)
        self._int.append(np.full(size, bool(integer)))
        self.blocks[name] = idx
        self._invalidate()
        return idx

    def add_constraints(
        self,
        name: str,
        sense: str,
        rhs,
        linear: Iterable[Linear] = (),
        bilinear: Iterable[Bilinear] = (),
        shape: Sequence[int] | None = None,
    ) -> ConstraintBlock:
        """Add a block of rows ``linear + bilinear (sense) rhs``, all terms broadcast to ``shape (+K)``."""
        if sense not in SENSES:
            raise InputError(f"unknown constraint sense {sense!r}")
        if name in self.constraint_blocks:
            raise InputError(f"constraint block {name!r} defined twice")
        rhs = np.asarray(rhs, dtype=float)
        shape = tuple(int(s) for s in (rhs.shape if shape is None else shape))
        size = int(np.prod(shape, dtype=int))
        block = ConstraintBlock(name, self._nc, shape)
        for coef, idx in linear:
            rows, (c, i) = _broadcast_rows(shape, coef, idx)
            self._lin.append((rows + self._nc, i.astype(np.int64), c.astype(float)))
        for coef, ia, ib in bilinear:
            rows, (c, a, b) = _broadcast_rows(shape, coef, ia, ib)
            self._quad.append((rows + self._nc, a.astype(np.int64), b.astype(np.int64), c.astype(float)))
        self._sense.append(np.full(size, SENSES[sense], dtype=np.int8))
        self._rhs.append(np.broadcast_to(rhs, shape).ravel().astype(float))
        self._nc += size
        self.constraint_blocks[name] = block
        self._invalidate()
        return block

    def set_objective(self, linear: Iterable[Linear] = (), quadratic: Iterable[Bilinear] = (), constant: float = 0.0) -> None:
        """Minimise ``sum a v + sum q v_i v_j + constant``."""
        self.obj_linear = [(np.broadcast_to(c, np.shape(i)).ravel().astype(float), np.asarray(i).ravel())
                           for c, i in linear]
        self.obj_quad = []
        for c, a, b in quadratic:
            shp = np.broadcast_shapes(np.shape(c), np.shape(a), np.shape(b))
            self.obj_quad.append(tuple(np.broadcast_to(x, shp).ravel() for x in (c, a, b)))
        self.obj_constant = float(constant)
        self._invalidate()

    def _invalidate(self) -> None:
        for key in ("lb", "ub", "integer", "A", "quad", "sense", "rhs", "c", "Q"):
            self.__dict__.pop(key, None)

    # -- compiled arrays -----------------------------------------------------------
    @property
    def n_vars(self) -> int:
        return self._nv

    @property
    def n_constraints(self) -> int:
        return self._nc

    @cached_property
    def lb(self) -> np.ndarray:
        return np.concatenate(self._lb) if self._lb else np.zeros(0)

    @cached_property
    def ub(self) -> np.ndarray:
        return np.concatenate(self._ub) if self._ub else np.zeros(0)

    @cached_property
    def integer(self) -> np.ndarray:
        return np.concatenate(self._int) if self._int else np.zeros(0, dtype=bool)

    @cached_property
    def sense(self) -> np.ndarray:
        return np.concatenate(self._sense) if self._sense else np.zeros(0, dtype=np.int8)

    @cached_property
    def rhs(self) -> np.ndarray:
        return np.concatenate(self._rhs) if self._rhs else np.zeros(0)

    @cached_property
    def A(self) -> sp.csr_matrix:
        """Linear part of the constraints (duplicates summed, explicit zeros dropped)."""
        if not self._lin:
            return sp.csr_matrix((self._nc, self._nv))
        r, i, c = (np.concatenate(x) for x in zip(*self._lin))
        A = sp.csr_matrix((c, (r, i)), shape=(self._nc, self._nv))
        A.sum_duplicates()
        A.eliminate_zeros()
        return A

    @cached_property
    def quad(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bilinear constraint terms ``(row, i, j, coef)`` with ``i <= j``, merged and sorted by row."""
        if not self._quad:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, np.zeros(0)
        r, a, b, c = (np.concatenate(x) for x in zip(*self._quad))
        return _merge_quadratic(r, a, b, c)

    @cached_property
    def c(self) -> np.ndarray:
        c = np.zeros(self._nv)
        for coef, idx in self.obj_linear:
            np.add.at(c, idx, coef)
        return c

    @cached_property
    def Q(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objective bilinear terms ``(i, j, coef)`` with ``i <= j``, merged."""
        if not self.obj_quad:
            z = np.zeros(0, dtype=np.int64)
            return z, z, np.zeros(0)
        c, a, b = (np.concatenate(x) for x in zip(*self.obj_quad))
        _, i, j, q = _merge_quadratic(np.zeros(len(a), dtype=np.int64), a.astype(np.int64), b.astype(np.int64), c.astype(float))
        return i, j, q

    # -- classification ------------------------------------------------------------
    @property
    def n_integer(self) -> int:
        return int(self.integer.sum())

    @property
    def has_quadratic_constraints(self) -> bool:
        return len(self.quad[0]) > 0

    @property
    def has_quadratic_objective(self) -> bool:
        return len(self.Q[0]) > 0

    @property
    def is_linear(self) -> bool:
        return not (self.has_quadratic_constraints or self.has_quadratic_objective)

    @property
    def objective_is_convex(self) -> bool:
        """True for a linear objective or a positive semidefinite quadratic one."""
        i, j, q = self.Q
        if len(q) == 0:
            return True
        if np.all(i == j):
            return bool(np.all(q >= 0))
        used = np.unique(np.concatenate([i, j]))
        H = np.zeros((len(used), len(used)))
        ii, jj = np.searchsorted(used, i), np.searchsorted(used, j)
        np.add.at(H, (ii, jj), q / 2)
        np.add.at(H, (jj, ii), q / 2)
        return bool(np.linalg.eigvalsh(H).min() >= -1e-12)

    @property
    def problem_class(self) -> str:
        """``LP``, ``MILP``, ``QP``, ``MIQP`` (convex quadratic objective) or ``(MI)QCQP``."""
        mi = "MI" if self.n_integer else ""
        if self.has_quadratic_constraints or not self.objective_is_convex:
            return f"{mi}QCQP" if mi else "QCQP"
        return f"{mi}QP" if self.has_quadratic_objective else f"{mi}LP"

    def stats(self) -> dict:
        return {
            "variables": self.n_vars,
            "integer_variables": self.n_integer,
            "constraints": self.n_constraints,
            "linear_nonzeros": int(self.A.nnz),
            "bilinear_terms": int(len(self.quad[0])),
            "class": self.problem_class,
        }

    # -- evaluation (solver-independent certificate) ------------------------------
    def activity(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        act = self.A @ v
        r, i, j, q = self.quad
        if len(r):
            act = act + np.bincount(r, weights=q * v[i] * v[j], minlength=self._nc)
        return act

    def objective_value(self, v: np.ndarray) -> float:
        v = np.asarray(v, dtype=float)
        i, j, q = self.Q
        return float(self.c @ v + np.sum(q * v[i] * v[j]) + self.obj_constant)

    def evaluate(self, v: np.ndarray) -> Evaluation:
        v = np.asarray(v, dtype=float)
        if v.shape != (self._nv,):
            raise InputError(f"point has shape {v.shape}, model has {self._nv} variables")
        gap = self.activity(v) - self.rhs
        row = np.where(self.sense == 0, np.abs(gap), np.where(self.sense < 0, np.maximum(gap, 0), np.maximum(-gap, 0)))
        cv = float(row.max(initial=0.0))
        bv = float(np.maximum(np.maximum(self.lb - v, v - self.ub), 0).max(initial=0.0))
        iv = float(np.abs(v[self.integer] - np.round(v[self.integer])).max(initial=0.0))
        return Evaluation(self.objective_value(v), max(cv, bv, iv), cv, bv, iv, row)

    def block_value(self, v: np.ndarray, name: str) -> np.ndarray:
        return np.asarray(v, dtype=float)[self.blocks[name]]


def _merge_quadratic(r, a, b, c):
    """Sum the coefficients of equal ``(row, min(i, j), max(i, j))`` terms, drop zero sums, sort
    by row.  A three-key ``lexsort`` (not ``np.unique(axis=1)``, whose row-wise sort of a
    structured view was 20 s for the 1.6 M terms of a 1-20000-1 network on 20 samples)."""
    r = np.asarray(r, dtype=np.int64)
    lo = np.minimum(a, b).astype(np.int64, copy=False)
    hi = np.maximum(a, b).astype(np.int64, copy=False)
    c = np.asarray(c, dtype=float)
    if len(r) == 0:
        return r, lo, hi, c
    order = np.lexsort((hi, lo, r))
    r, lo, hi, c = r[order], lo[order], hi[order], c[order]
    start = np.ones(len(r), dtype=bool)
    start[1:] = (r[1:] != r[:-1]) | (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    idx = np.flatnonzero(start)
    coef = np.add.reduceat(c, idx)
    keep = coef != 0
    return r[idx][keep], lo[idx][keep], hi[idx][keep], coef[keep]
