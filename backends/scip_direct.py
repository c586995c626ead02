"""SCIP through PySCIPOpt directly (no Pyomo): the same solver as ``scip``, without the Pyomo
build, and with an objective cut-off and a warm start.

Options: ``gap``, ``absgap``, ``feastol`` (as ``scip``), ``objlimit`` (solutions with objective
``>= objlimit`` are discarded: with none better the status is ``infeasible`` and the model's
optimum is proven ``>= objlimit``, reported in ``extra["cutoff"]``), ``start`` (a model point
handed to SCIP as a solution if it is feasible), ``scip_options`` (raw SCIP parameters).
A quadratic objective is moved into epigraph constraints: ``v_k^2 <= t_k`` per term of a separable
convex one (minimise ``sum q_k t_k + c.v``), else ``q(v) + c.v <= t`` (minimise ``t``).
"""

from __future__ import annotations

import numpy as np

from unrectify.formulations.model import Model

from .base import Backend, Capabilities, RawResult
from .scip import DEFAULT_ABSGAP, DEFAULT_FEASTOL, DEFAULT_GAP, SCIP_MAX_TIME, check_scip_options

STATUS_MAP = {"optimal": "optimal", "gaplimit": "optimal", "timelimit": "time_limit", "infeasible": "infeasible",
              "inforunbd": "infeasible", "nodelimit": "time_limit", "userinterrupt": "time_limit",
              "sollimit": "time_limit", "stallnodelimit": "time_limit", "totalnodelimit": "time_limit",
              "memlimit": "time_limit"}


class ScipDirectBackend(Backend):
    """Spatial branch-and-bound by SCIP, model handed over by PySCIPOpt; ``optimal`` = certified to ``gap``."""

    name = "scip-direct"
    solver = "SCIP (pyscipopt)"
    module = "pyscipopt"
    capabilities = Capabilities(integer=True, quadratic_objective=True, nonconvex=True, global_optimum=True)
    option_names = ("gap", "absgap", "feastol", "objlimit", "start", "scip_options")

    def check_options(self) -> None:
        check_scip_options(self.name, self.options)

    def preload(self) -> None:
        import pyscipopt  # noqa: F401

    def compile(self, model: Model, time_limit):
        import time

        import pyscipopt as ps

        self._t_compile = time.perf_counter()   # the time limit covers the hand-over too
        sm = ps.Model(model.name)
        sm.hideOutput()
        lb, ub, integer = model.lb, model.ub, model.integer
        binary = integer & (lb >= 0) & (ub <= 1)
        vtype = np.where(binary, "B", np.where(integer, "I", "C"))
        x = [sm.addVar(name=f"v{i}", vtype=str(vtype[i]), lb=None if not np.isfinite(lb[i]) else float(lb[i]),
                       ub=None if not np.isfinite(ub[i]) else float(ub[i])) for i in range(model.n_vars)]
        A = model.A
        qr, qi, qj, qc = model.quad
        qptr = np.searchsorted(qr, np.arange(model.n_constraints + 1))
        a_ptr, a_idx, a_val = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
        q_i, q_j, q_c, q_ptr = qi.tolist(), qj.tolist(), qc.tolist(), qptr.tolist()
        sense, rhs = model.sense.tolist(), model.rhs.tolist()
        for r in range(model.n_constraints):
            terms = [a_val[k] * x[a_idx[k]] for k in range(a_ptr[r], a_ptr[r + 1])]
            terms += [q_c[k] * x[q_i[k]] * x[q_j[k]] for k in range(q_ptr[r], q_ptr[r + 1])]
            if not terms:
                continue
            e = ps.quicksum(terms)
            s = sense[r]
            sm.addCons(e == rhs[r] if s == 0 else (e <= rhs[r] if s < 0 else e >= rhs[r]), name=f"c{r}")
        c = model.c
        oi, oj, oq = model.Q
        lin = ps.quicksum(float(c[i]) * x[int(i)] for i in np.flatnonzero(c))
        if len(oq) and np.all(oi == oj) and np.all(oq > 0):
            # separable convex objective: one epigraph t_k >= v_k^2 per term, so SCIP's tangent
            # cuts approximate every square on its own (much tighter LP bounds than one sum)
            ts = [sm.addVar(name=f"sq{k}", lb=0.0, ub=None) for k in range(len(oq))]
            for t, i in zip(ts, oi.tolist()):
                sm.addCons(x[i] * x[i] - t <= 0)
            sm.setObjective(ps.quicksum(float(q) * t for q, t in zip(oq, ts)) + lin + model.obj_constant, "minimize")
        elif len(oq):
            t = sm.addVar(name="obj_epigraph", lb=None, ub=None)
            quad = ps.quicksum(float(q) * x[int(i)] * x[int(j)] for i, j, q in zip(oi, oj, oq))
            sm.addCons(quad + lin - t <= 0, name="objective")
            sm.setObjective(t + model.obj_constant, "minimize")
        else:
            sm.setObjective(lin + model.obj_constant, "minimize")
        return sm, x

    def run(self, native, time_limit):
        sm, x = native
        if time_limit is not None:
            import time

            spent = time.perf_counter() - getattr(self, "_t_compile", time.perf_counter())
            sm.setParam("limits/time", min(float(max(time_limit - spent, 0.01)), SCIP_MAX_TIME))
        sm.setParam("limits/gap", float(self.options.get("gap", DEFAULT_GAP)))
        sm.setParam("limits/absgap", float(self.options.get("absgap", DEFAULT_ABSGAP)))
        sm.setParam("numerics/feastol", float(self.options.get("feastol", DEFAULT_FEASTOL)))
        for k, v in self.options.get("scip_options", {}).items():
            sm.setParam(k, v)
        objlimit = self.options.get("objlimit")
        if objlimit is not None and np.isfinite(objlimit):
            sm.setObjlimit(float(objlimit))
        start = self.options.get("start")
        if start is not None:
            sol = sm.createSol()
            for var, val in zip(x, np.asarray(start, dtype=float).tolist()):
                sm.setSolVal(sol, var, val)
            self._start_accepted = bool(sm.addSol(sol))
        sm.optimize()
        return sm.getStatus()

    def extract(self, native, outcome, model: Model) -> RawResult:
        sm, x = native
        status = STATUS_MAP.get(str(outcome), "error")
        point = objective = None
        if sm.getNSols() > 0:
            best = sm.getBestSol()
            point = np.array([sm.getSolVal(best, v) for v in x], dtype=float)
            objective = float(model.objective_value(point))
        bound = None
        try:
            b = float(sm.getDualbound())
            bound = b if np.isfinite(b) and abs(b) < 1e19 else None
        except Exception:  # no bound before the root is solved
            bound = None
        extra = {"nodes": int(sm.getNNodes()), "solver_objective": None if point is None else float(sm.getObjVal())}
        objlimit = self.options.get("objlimit")
        if objlimit is not None and np.isfinite(objlimit):
            extra["cutoff"] = float(objlimit)
            if status == "infeasible":
                bound = float(objlimit)   # nothing below the cut-off: the optimum is >= it
        if hasattr(self, "_start_accepted"):
            extra["start_accepted"] = self._start_accepted
        msg = "" if status != "error" else f"SCIP ended with status {outcome}"
        return RawResult(status, point, objective, bound, self.solver, message=msg, extra=extra)
