"""HiGHS through ``highspy`` for linear models (LP / MILP), built directly from the CSR arrays."""

from __future__ import annotations

import os
import sys

import numpy as np

from unrectify.formulations.model import Model

from .base import Backend, Capabilities, RawResult

STATUS_MAP = {
    "kOptimal": "optimal",
    "kTimeLimit": "time_limit",
    "kIterationLimit": "time_limit",
    "kSolutionLimit": "time_limit",
    "kInfeasible": "infeasible",
    "kUnboundedOrInfeasible": "infeasible",
}

INF = 1e30

_BANNER_SHOWN = False


def silence_banner() -> None:
    """HiGHS prints a two-line banner to the C-level stdout when the first ``Highs()`` of a
    process is built (once per process, whatever ``output_flag`` says).  Build that first
    instance here with file descriptor 1 pointed at /dev/null, so no solve prints it; forked
    guard children inherit the "already shown" state."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                highspy.Highs()
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)
    _BANNER_SHOWN = True


class HighsBackend(Backend):
    """Exact LP/MILP solver; refuses bilinear constraints and quadratic objectives."""

    name = "highs"
    solver = "HiGHS (highspy)"
    module = "highspy"
    capabilities = Capabilities(integer=True, quadratic_objective=False, nonconvex=False, global_optimum=True,
                                auto_classes=("LP", "MILP"))
    option_names = ("gap",)

    def preload(self) -> None:
        silence_banner()

    def compile(self, model: Model, time_limit):
        import highspy

        silence_banner()
        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(self.options.get("verbose", False)))
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        h.setOptionValue("mip_rel_gap", float(self.options.get("gap", 1e-9)))
        h.setOptionValue("primal_feasibility_tolerance", 1e-9)
        h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        lo = np.where(model.sense >= 0, model.rhs, -INF)   # >= and == rows
        hi = np.where(model.sense <= 0, model.rhs, INF)    # <= and == rows
        lb = np.where(np.isfinite(model.lb), model.lb, -INF)
        ub = np.where(np.isfinite(model.ub), model.ub, INF)
        n = model.n_vars
        h.addVars(n, lb, ub)
        h.changeColsCost(n, np.arange(n, dtype=np.int32), model.c)
        if model.n_constraints:
            Ar = model.A.tocsr()
            h.addRows(model.n_constraints, lo, hi, Ar.nnz, Ar.indptr[:-1].astype(np.int32),
                      Ar.indices.astype(np.int32), Ar.data)
        ints = np.flatnonzero(model.integer).astype(np.int32)
        if len(ints):
            h.changeColsIntegrality(len(ints), ints, np.full(len(ints), highspy.HighsVarType.kInteger))
        h.changeObjectiveOffset(model.obj_constant)
        return h

    def run(self, native, time_limit):
        native.run()
        return native.getModelStatus()

    def extract(self, native, outcome, model: Model) -> RawResult:
        key = str(outcome).split(".")[-1]
        status = STATUS_MAP.get(key, "error")
        info = native.getInfo()
        x = None
        if info.primal_solution_status == 2:  # feasible point available
            x = np.asarray(native.getSolution().col_value, dtype=float)
        # the solver's own objective (the certificate recomputes it independently)
        objective = float(info.objective_function_value) if x is not None else None
        # a proven bound only: HiGHS reports a dual bound for MIPs; an LP gets none (never the primal copied)
        bound = None
        if model.n_integer and np.isfinite(info.mip_dual_bound):
            bound = float(info.mip_dual_bound)
        return RawResult(status, x, objective, bound, self.solver,
                         message="" if status != "error" else f"HiGHS model status {key}")
