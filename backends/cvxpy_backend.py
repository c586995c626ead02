"""cvxpy for convex models: linear constraints and a convex (PSD) quadratic or linear objective,
with integer variables when a mixed-integer solver is installed (SCIP, GUROBI, HIGHS)."""

from __future__ import annotations

import importlib.util

import numpy as np

from unrectify.formulations.errors import ModelClassError
from unrectify.formulations.model import Model

from .base import Backend, Capabilities, RawResult
from .scip import SCIP_MAX_TIME

STATUS_MAP = {
    "optimal": "optimal",
    "optimal_inaccurate": "local",
    "user_limit": "time_limit",
    "infeasible": "infeasible",
    "infeasible_inaccurate": "infeasible",
    "unbounded": "error",
}


class CvxpyBackend(Backend):
    name = "cvxpy"
    solver = "cvxpy"
    module = "cvxpy"
    capabilities = Capabilities(integer=True, quadratic_objective=True, nonconvex=False, global_optimum=True,
                                auto_classes=("LP", "QP"))
    option_names = ("solver",)

    def preload(self) -> None:
        super().preload()
        if importlib.util.find_spec("highspy") is not None:   # cvxpy's HIGHS would print its banner
            from .highs import silence_banner

            silence_banner()

    def _pick_solver(self, model: Model) -> str:
        import cvxpy as cp

        installed = set(cp.installed_solvers())
        if "solver" in self.options:
            return self.options["solver"]
        if model.n_integer:
            prefs = ["SCIP", "GUROBI"] if model.has_quadratic_objective else ["HIGHS", "SCIP", "GUROBI"]
        else:
            prefs = ["CLARABEL", "HIGHS", "SCS"] if model.has_quadratic_objective else ["HIGHS", "CLARABEL", "SCS"]
        for s in prefs:
            if s in installed:
                return s
        raise ModelClassError(f"no installed cvxpy solver handles a {model.problem_class} (tried {', '.join(prefs)})")

    def check(self, model: Model) -> None:
        super().check(model)
        self._pick_solver(model)

    def compile(self, model: Model, time_limit):
        import cvxpy as cp

        n = model.n_vars
        ints = np.flatnonzero(model.integer)
        x = cp.Variable(n, integer=(ints,)) if len(ints) else cp.Variable(n)
        cons = []
        A, rhs, s = model.A, model.rhs, model.sense
        for sign, op in ((0, "eq"), (-1, "le"), (1, "ge")):
            rows = np.flatnonzero(s == sign)
            if not len(rows):
                continue
            lhs = A[rows] @ x
            cons.append(lhs == rhs[rows] if op == "eq" else (lhs <= rhs[rows] if op == "le" else lhs >= rhs[rows]))
        fin_lb, fin_ub = np.isfinite(model.lb), np.isfinite(model.ub)
        if fin_lb.any():
            cons.append(x[np.flatnonzero(fin_lb)] >= model.lb[fin_lb])
        if fin_ub.any():
            cons.append(x[np.flatnonzero(fin_ub)] <= model.ub[fin_ub])
        obj = model.c @ x + model.obj_constant
        i, j, q = model.Q
        if len(q):
            diag = i == j
            if diag.all():
                obj = obj + cp.sum(cp.multiply(q, cp.square(x[i])))
            else:
                import scipy.sparse as sp

                H = sp.coo_matrix((q, (i, j)), shape=(n, n))
                H = ((H + H.T) / 2).tocsr()
                obj = obj + cp.quad_form(x, cp.psd_wrap(H))
        prob = cp.Problem(cp.Minimize(obj), cons)
        return prob, x, self._pick_solver(model)

    def run(self, native, time_limit):
        prob, x, solver = native
        kwargs = {}
        if time_limit is not None:
            kwargs = {"SCIP": {"scip_params": {"limits/time": min(float(time_limit), SCIP_MAX_TIME), "limits/gap": 1e-9}},
                      "HIGHS": {"time_limit": float(time_limit)},
                      "GUROBI": {"TimeLimit": float(time_limit)}}.get(solver, {})
        prob.solve(solver=solver, **kwargs)
        return prob.status

    def extract(self, native, outcome, model: Model) -> RawResult:
        prob, x, solver = native
        status = STATUS_MAP.get(str(outcome), "error")
        xv = None if x.value is None else np.asarray(x.value, dtype=float)
        obj = float(prob.value) if xv is not None and prob.value is not None else None   # the solver's own
        # cvxpy reports no dual bound: none is invented from the primal value
        return RawResult(status, xv, obj, None, f"cvxpy/{solver}",
                         message="" if status != "error" else f"cvxpy status {outcome}")
