"""Gurobi through ``gurobipy``'s matrix API (optional; the pip licence is size-limited).

The pip wheel's restricted licence allows 2000 variables and 2000 constraints, and only
200 variables once any quadratic term exists (Gurobi error 10010).  :meth:`check` refuses
larger models with a one-line :class:`LicenseLimitError` before a model is built, unless a
full licence is configured (``GRB_LICENSE_FILE`` set or ``~/gurobi.lic`` present) or the
backend is created with ``license_limits=False``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unrectify.formulations.errors import LicenseLimitError
from unrectify.formulations.model import Model

from .base import Backend, Capabilities, RawResult

LIMIT_VARS = 2000
LIMIT_CONS = 2000
LIMIT_VARS_QUADRATIC = 200

STATUS_MAP = {2: "optimal", 3: "infeasible", 4: "infeasible", 9: "time_limit", 7: "time_limit",
              8: "time_limit", 10: "time_limit", 11: "time_limit", 13: "local"}


def full_licence_configured() -> bool:
    return bool(os.environ.get("GRB_LICENSE_FILE")) or (Path.home() / "gurobi.lic").exists()


def licence_problem(model: Model) -> str | None:
    """Why the restricted pip licence cannot take ``model`` (None if it can)."""
    quadratic = model.has_quadratic_constraints or model.has_quadratic_objective
    if quadratic and model.n_vars > LIMIT_VARS_QUADRATIC:
        return (f"model has {model.n_vars} variables and quadratic terms; the pip Gurobi licence allows "
                f"{LIMIT_VARS_QUADRATIC} (use --backend scip or a full Gurobi licence)")
    if model.n_vars > LIMIT_VARS or model.n_constraints > LIMIT_CONS:
        return (f"model has {model.n_vars} variables and {model.n_constraints} constraints; the pip Gurobi "
                f"licence allows {LIMIT_VARS} of each (use --backend scip or a full Gurobi licence)")
    return None


class GurobiBackend(Backend):
    name = "gurobi"
    solver = "Gurobi (gurobipy)"
    module = "gurobipy"
    capabilities = Capabilities(integer=True, quadratic_objective=True, nonconvex=True, global_optimum=True,
                                max_binaries=64, max_bilinear=400, max_vars=LIMIT_VARS, max_constraints=LIMIT_CONS)
    option_names = ("gap", "absgap", "license_limits")

    def check(self, model: Model) -> None:
        super().check(model)
        if self.options.get("license_limits", True) and not full_licence_configured():
            reason = licence_problem(model)
            if reason:
                raise LicenseLimitError(reason)

    def compile(self, model: Model, time_limit):
        import gurobipy as gp

        env = gp.Env(empty=True)
        env.setParam("OutputFlag", 0)
        env.start()
        g = gp.Model(model.name, env=env)
        vtype = np.where(model.integer, gp.GRB.INTEGER, gp.GRB.CONTINUOUS)
        lb = np.where(np.isfinite(model.lb), model.lb, -gp.GRB.INFINITY)
        ub = np.where(np.isfinite(model.ub), model.ub, gp.GRB.INFINITY)
        x = g.addMVar(model.n_vars, lb=lb, ub=ub, vtype=vtype)
        qr, qi, qj, qc = model.quad
        has_q = np.zeros(model.n_constraints, dtype=bool)
        has_q[qr] = True
        A = model.A
        sense_char = np.array(["=", "<", ">"])[np.where(model.sense == 0, 0, np.where(model.sense < 0, 1, 2))]
        lin_rows = np.flatnonzero(~has_q)
        if len(lin_rows):
            g.addMConstr(A[lin_rows], x, sense_char[lin_rows], model.rhs[lin_rows])
        q_rows = np.flatnonzero(has_q)
        if len(q_rows):
            # pad the bilinear terms of each row to a (rows, K) array and sum along K
            pos = np.searchsorted(q_rows, qr)
            start = np.searchsorted(qr, q_rows)
            k = np.arange(len(qr)) - start[pos]
            K = int(k.max()) + 1
            I = np.zeros((len(q_rows), K), dtype=np.int64)
            J = np.zeros((len(q_rows), K), dtype=np.int64)
            C = np.zeros((len(q_rows), K))
            I[pos, k], J[pos, k], C[pos, k] = qi, qj, qc
            expr = A[q_rows] @ x + (C * x[I] * x[J]).sum(axis=1)
            for sign in (0, -1, 1):
                sel = np.flatnonzero(model.sense[q_rows] == sign)
                if not len(sel):
                    continue
                lhs, rhs = expr[sel], model.rhs[q_rows[sel]]
                g.addConstr(lhs == rhs if sign == 0 else (lhs <= rhs if sign < 0 else lhs >= rhs))
        oi, oj, oq = model.Q
        obj = model.c @ x + model.obj_constant
        if len(oq):
            obj = obj + (oq * x[oi] * x[oj]).sum()
        g.setObjective(obj, gp.GRB.MINIMIZE)
        if time_limit is not None:
            g.Params.TimeLimit = float(time_limit)
        g.Params.MIPGap = float(self.options.get("gap", 1e-6))
        g.Params.MIPGapAbs = float(self.options.get("absgap", 1e-9))
        g.Params.FeasibilityTol = 1e-9
        g.Params.IntFeasTol = 1e-9
        if model.has_quadratic_constraints or not model.objective_is_convex:
            g.Params.NonConvex = 2
        return g, x, env

    def run(self, native, time_limit):
        g, x, env = native
        g.optimize()
        return g.Status

    def extract(self, native, outcome, model: Model) -> RawResult:
        g, x, env = native
        status = STATUS_MAP.get(int(outcome), "error")
        xv = np.asarray(x.X, dtype=float) if g.SolCount > 0 else None
        obj = float(g.ObjVal) if xv is not None else None   # the solver's own objective
        try:
            bound = float(g.ObjBound)    # proven bound (MIP / nonconvex); not defined for an LP
        except Exception:
            bound = None
        res = RawResult(status, xv, obj, bound, self.solver,
                        message="" if status != "error" else f"Gurobi status code {outcome}")
        g.dispose()
        env.dispose()
        return res
