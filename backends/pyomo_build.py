"""Translate a :class:`unrectify.formulations.Model` into a Pyomo ``ConcreteModel`` with indexed components.

One indexed ``Var`` over all variables (domain and bounds by rule) and one indexed
``Constraint`` over all rows, each row read from the CSR linear part and the row-sorted
bilinear triples; Pyomo builds the components through its own indexed construction.
"""

from __future__ import annotations

import numpy as np

from unrectify.formulations.model import Model


def to_pyomo(model: Model):
    import pyomo.environ as pyo

    lb, ub, integer = model.lb, model.ub, model.integer
    binary = integer & (lb >= 0) & (ub <= 1)
    A = model.A
    qr, qi, qj, qc = model.quad
    qptr = np.searchsorted(qr, np.arange(model.n_constraints + 1))
    sense, rhs = model.sense, model.rhs
    # plain Python lists: Pyomo works with Python scalars, and indexing lists is cheaper than arrays
    a_ptr, a_idx, a_val = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
    q_i, q_j, q_c, q_ptr = qi.tolist(), qj.tolist(), qc.tolist(), qptr.tolist()
    lbl = [None if not np.isfinite(x) else float(x) for x in lb]
    ubl = [None if not np.isfinite(x) else float(x) for x in ub]

    pm = pyo.ConcreteModel(name=model.name)
    n = model.n_vars

    def domain(_, i):
        if binary[i]:
            return pyo.Binary
        return pyo.Integers if integer[i] else pyo.Reals

    pm.v = pyo.Var(range(n), domain=domain, bounds=lambda _, i: (lbl[i], ubl[i]))
    v = pm.v

    def row(_, r):
        terms = [a_val[k] * v[a_idx[k]] for k in range(a_ptr[r], a_ptr[r + 1])]
        terms += [q_c[k] * v[q_i[k]] * v[q_j[k]] for k in range(q_ptr[r], q_ptr[r + 1])]
        if not terms:
            return pyo.Constraint.Skip
        expr = pyo.quicksum(terms)
        s = sense[r]
        if s == 0:
            return expr == float(rhs[r])
        return expr <= float(rhs[r]) if s < 0 else expr >= float(rhs[r])

    pm.c = pyo.Constraint(range(model.n_constraints), rule=row)
    c = model.c
    oi, oj, oq = model.Q
    obj_terms = [float(c[i]) * v[int(i)] for i in np.flatnonzero(c)]
    obj_terms += [float(q) * v[int(i)] * v[int(j)] for i, j, q in zip(oi, oj, oq)]
    pm.obj = pyo.Objective(expr=pyo.quicksum(obj_terms) + model.obj_constant, sense=pyo.minimize)
    return pm


def values(pm, n: int) -> np.ndarray:
    vals = pm.v.extract_values()
    return np.array([np.nan if vals[i] is None else vals[i] for i in range(n)], dtype=float)
