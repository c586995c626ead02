r"""Optimisation-based bound tightening (OBBT) by linear programming (HiGHS through highspy).

For a :class:`Model` ``M`` and a set of its variables ``v_k``, OBBT computes

    lo_k = min { v_k : (v) in LP(M) },   hi_k = max { v_k : (v) in LP(M) }

over the LP relaxation ``LP(M)``: the linear rows and variable bounds of ``M`` with integrality
dropped (bilinear rows and the objective are ignored, which only enlarges the feasible set).
Every point of ``M`` lies in ``LP(M)``, so ``[lo_k, hi_k]`` contains ``v_k`` at every feasible
point: valid bounds, never looser than the variable's own.  One HiGHS instance is loaded
once; each bound is a cost change and a warm-started dual simplex re-solve.  A small slack
``OBBT_SLACK * max(1, |bound|)`` absorbs the LP's feasibility tolerance.

:func:`case_preactivation_bounds` applies this to the pre-activations of a sign case
(:mod:`unrectify.formulations.sign_cases`), whose relaxation includes the incumbent's residual
bound, the orientation and the hinge cuts.
"""

from __future__ import annotations

import time

import numpy as np

from unrectify.formulations.errors import SolverUnavailableError
from unrectify.formulations.model import Model

OBBT_SLACK = 1e-7
INF = 1e30


def lp_bounds(model: Model, index: np.ndarray, time_limit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of the variables ``index`` (any shape) over the LP relaxation of ``model``.
    Bounds not computed within ``time_limit`` (or whose LP is not solved to optimality) keep the
    variable's own bounds."""
    try:
        import highspy
    except ImportError:
        raise SolverUnavailableError("OBBT needs the Python package 'highspy', which is not installed") from None
    idx = np.asarray(index, dtype=np.int64)
    flat = idx.ravel()
    lo, hi = model.lb[flat].copy(), model.ub[flat].copy()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("dual_feasibility_tolerance", 1e-9)
    n = model.n_vars
    h.addVars(n, np.where(np.isfinite(model.lb), model.lb, -INF), np.where(np.isfinite(model.ub), model.ub, INF))
    A = model.A.tocsr()
    linear_rows = np.ones(model.n_constraints, dtype=bool)
    qr = model.quad[0]
    linear_rows[qr] = False                    # a row with a bilinear term is dropped (relaxation)
    rows = np.flatnonzero(linear_rows)
    if len(rows):
        Ar = A[rows].tocsr()
        sense, rhs = model.sense[rows], model.rhs[rows]
        h.addRows(len(rows), np.where(sense >= 0, rhs, -INF), np.where(sense <= 0, rhs, INF), Ar.nnz,
                  Ar.indptr[:-1].astype(np.int32), Ar.indices.astype(np.int32), Ar.data)
    t0 = time.perf_counter()
    all_cols = np.arange(n, dtype=np.int32)
    zero = np.zeros(n)
    for pos, col in enumerate(flat.tolist()):
        for sense_sign in (1.0, -1.0):          # min v, then max v (= -min -v)
            if time_limit is not None:
                left = time_limit - (time.perf_counter() - t0)
                if left <= 0:
                    return _shape(lo, hi, idx)
                h.setOptionValue("time_limit", float(left))
            cost = zero.copy()
            cost[col] = sense_sign
            h.changeColsCost(n, all_cols, cost)
            h.run()
            if str(h.getModelStatus()).split(".")[-1] != "kOptimal":
                continue
            val = sense_sign * float(h.getInfo().objective_function_value)
            slack = OBBT_SLACK * max(1.0, abs(val))
            if sense_sign > 0:
                lo[pos] = max(lo[pos], val - slack)
            else:
                hi[pos] = min(hi[pos], val + slack)
    return _shape(lo, hi, idx)


def _shape(lo, hi, idx):
    lo = np.minimum(lo, hi)
    return lo.reshape(idx.shape), hi.reshape(idx.shape)


def case_preactivation_bounds(problem, k: int, residual_bound: float | None = None,
                              time_limit: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """OBBT of every pre-activation ``Z_ij`` of sign case ``k`` over its LP relaxation (valid for
    every network of the case whose residuals satisfy ``|R_i| <= residual_bound``)."""
    from unrectify.formulations.sign_cases import build_sign_case

    cm = build_sign_case(problem, k, domain="interval", residual_bound=residual_bound)
    return lp_bounds(cm.model, cm.model.blocks["Z1"], time_limit)


def fixed_network_bounds(net, passes: int = 2, time_limit: float | None = None, cutoff: float | None = None,
                         output_index: int = 0, sense: str = "max", start: str = "crown"
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
    r"""OBBT of every pre-activation of a fixed-weight network (``FixedNetwork``) over the LP
    relaxation of the **whole** network (``bigm``, ``d in [0,1]``), layer by layer, ``passes`` times
    (each pass re-encodes the ReLUs with the bounds of the pass before, so the big-M rows tighten).

    With ``cutoff`` the relaxation also holds ``y_k >= cutoff`` (``sense="max"``; ``<=`` for
    ``min``): the bounds are then valid for every input whose output reaches the cut-off, which
    is all that a search for the optimum needs when ``cutoff`` is the value of a known input
    (optimality-based tightening).  Returns ``[(L_1, U_1), ..., (L_L, U_L)]`` for the builders'
    ``bounds=``, never looser than ``start``.
    """
    from unrectify.formulations.fixed_weight import build_output_bound_model

    t0 = time.perf_counter()
    bounds = [(L.copy(), U.copy()) for L, U in net.bounds(start)]
    for _ in range(max(1, int(passes))):
        for layer in range(1, net.n_layers + 1):
            left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
            if left is not None and left <= 0:
                return bounds
            fm = build_output_bound_model(net, output_index, sense, "bigm", "interval", bounds=bounds)
            m = fm.model
            if cutoff is not None:
                y = fm.outputs[0, output_index]
                if sense == "max":
                    m.add_constraints("cutoff", ">=", np.array([float(cutoff)]), linear=[(1.0, np.array([y]))])
                else:
                    m.add_constraints("cutoff", "<=", np.array([float(cutoff)]), linear=[(1.0, np.array([y]))])
            block = fm.layers[layer - 1]["Z"][0] if layer < net.n_layers else fm.outputs[0]
            lo, hi = lp_bounds(m, block, left)
            L, U = bounds[layer - 1]
            L[:] = np.maximum(L, lo)
            U[:] = np.minimum(U, hi)
            L[:] = np.minimum(L, U)
    return bounds
