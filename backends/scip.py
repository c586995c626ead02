"""SCIP through Pyomo's ``scip_direct`` interface: the default global (MI)QCQP solver."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from typing import Any

import numpy as np

from unrectify.formulations.errors import InputError
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


def check_scip_settings(backend: str, settings: dict[str, Any]) -> None:
    """Every SCIP parameter in ``settings`` exists and takes its value (SCIP's own check, on a
    scratch model, its complaints on stderr silenced), so a bad one is an :class:`InputError`
    before any model is built, not a solver error after.  Skipped when PySCIPOpt is absent."""
    if not settings or importlib.util.find_spec("pyscipopt") is None:
        return
    import pyscipopt

    model = pyscipopt.Model()
    model.hideOutput()
    bad = None
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        for key, value in settings.items():
            try:
                model.setParam(str(key), value)
            except KeyError:
                bad = (key, value, "no such SCIP parameter")
            except (ValueError, TypeError, OverflowError):
                bad = (key, value, "a value SCIP does not take for it (wrong type or out of range)")
            if bad:
                break
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if bad:
        key, value, why = bad
        raise InputError(f"{backend}: SCIP parameter {key} = {value!r} (from the feastol or scip_options option): {why}")


def check_scip_options(name: str, options: dict[str, Any]) -> None:
    """The SCIP-specific options of backend ``name``: ``scip_options`` a dict of parameters SCIP
    accepts (and ``feastol`` too), ``objlimit`` finite, ``start`` a 1-D array of finite numbers."""
    if "scip_options" in options and not isinstance(options["scip_options"], dict):
        raise InputError(f"{name} option scip_options must be a dict of SCIP parameters, "
                         f"got {options['scip_options']!r}")
    if "objlimit" in options and options["objlimit"] is not None:
        f = options["objlimit"]
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, (int, float, np.number)) or not np.isfinite(f):
            raise InputError(f"{name} option objlimit must be a finite number, got {f!r}")
    if options.get("start") is not None:
        try:
            start = np.asarray(options["start"], dtype=float)
        except (TypeError, ValueError):
            start = np.array([np.nan])
        if start.ndim != 1 or not np.all(np.isfinite(start)):
            raise InputError(f"{name} option start must be a 1-D array of finite numbers (a model point)")
    if "scip_options" in options or "feastol" in options:
        settings = dict(options.get("scip_options", {}))
        if "feastol" in options:
            settings["numerics/feastol"] = options["feastol"]
        check_scip_settings(name, settings)


class ScipBackend(Backend):
    """Spatial branch-and-bound on the (MI)QCQP; ``optimal`` means certified to ``gap``."""

    name = "scip"
    solver = "SCIP (pyomo scip_direct)"
    module = "pyscipopt"
    capabilities = Capabilities(integer=True, quadratic_objective=True, nonconvex=True, global_optimum=True,
                                max_binaries=64, max_bilinear=400)
    option_names = ("gap", "absgap", "feastol", "scip_options")

    def check_options(self) -> None:
        check_scip_options(self.name, self.options)

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
