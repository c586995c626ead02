"""SCIP through Pyomo's ``scip_direct`` interface: the default global (MI)QCQP solver."""

from __future__ import annotations

import math

import numpy as np

from unrectify.formulations.model import Model

from .base import Backend, Capabilities, RawResult
from .pyomo_build import to_pyomo, values

# Pyomo termination condition name -> unrectify status
STATUS_MAP = {
    "optimal": "optimal",
    "globallyOptimal": "optimal",
    "locallyOptimal": "local",
    "maxTimeLimit": "time_limit",
    "maxIterations": "time_limit",
    "maxEvaluations": "time_limit",
    "infeasible": "infeasible",
    "infeasibleOrUnbounded": "infeasible",
}

#: relative gap at which SCIP stops and reports "optimal" (a certified global optimum up to it)
DEFAULT_GAP = 1e-6
DEFAULT_ABSGAP = 1e-9
DEFAULT_FEASTOL = 1e-9
#: SCIP's largest limits/time (a longer limit means no limit to SCIP)
SCIP_MAX_TIME = 1e20


class ScipBackend(Backend):
    """Spatial branch-and-bound on the (MI)QCQP; ``optimal`` means certified to ``gap``."""

    name = "scip"
    solver = "SCIP (pyomo scip_direct)"
    module = "pyscipopt"
    capabilities = Capabilities(integer=True, quadratic_objective=True, nonconvex=True, global_optimum=True,
                                max_binaries=64, max_bilinear=400)
    option_names = ("gap", "absgap", "feastol", "scip_options")

    def require(self) -> None:
        super().require()
        from unrectify.formulations.errors import SolverUnavailableError
        import importlib.util
        if importlib.util.find_spec("pyomo") is None:
            raise SolverUnavailableError("backend 'scip' needs the Python package 'pyomo', which is not installed")

    def preload(self) -> None:
        import pyomo.environ as pyo
        import pyscipopt  # noqa: F401

        pyo.SolverFactory("scip_direct")

    def compile(self, model: Model, time_limit):
        return to_pyomo(model)

    def run(self, native, time_limit):
        import pyomo.environ as pyo

        opt = pyo.SolverFactory("scip_direct")
        if time_limit is not None:
            opt.options["limits/time"] = min(float(time_limit), SCIP_MAX_TIME)
        opt.options["limits/gap"] = float(self.options.get("gap", DEFAULT_GAP))
        # an absolute gap too: a relative gap can never close at an optimum of 0
        opt.options["limits/absgap"] = float(self.options.get("absgap", DEFAULT_ABSGAP))
        opt.options["numerics/feastol"] = float(self.options.get("feastol", DEFAULT_FEASTOL))
        opt.options["display/verblevel"] = 0
        for k, v in self.options.get("scip_options", {}).items():
            opt.options[k] = v
        results = opt.solve(native, load_solutions=False)
        return results

    def extract(self, native, results, model: Model) -> RawResult:
        import logging

        # Pyomo warns when loading an incumbent after a time limit; the status says it already
        logging.getLogger("pyomo.core").setLevel(logging.ERROR)
        tc = str(results.solver.termination_condition)
        status = STATUS_MAP.get(tc, "error")
        x = None
        objective = None
        if len(results.solution) > 0 or status in ("optimal", "time_limit"):
            try:
                native.solutions.load_from(results)
                x = values(native, model.n_vars)
                if np.any(np.isnan(x)):
                    x = None
            except Exception:  # no incumbent (e.g. time limit before the first solution)
                x = None
        if x is not None:
            # SCIP's own primal value (minimisation: the upper bound); the certificate recomputes it
            objective = _finite(results.problem.upper_bound)
        bound = _finite(results.problem.lower_bound)   # SCIP's proven bound, or none
        msg = "" if status != "error" else f"SCIP ended with termination condition {tc}"
        return RawResult(status, x, objective, bound, self.solver, message=msg)


def _finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
