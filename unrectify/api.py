"""The entry verb: ``solve(problem, encoding, domain, backend, ...) -> Solution``."""

from __future__ import annotations

import time
from typing import Any

from unrectify.backends import get_backend
from unrectify.formulations import InputError, TrainingProblem, build_training_model
from unrectify.formulations.builder import TrainingModel, symmetry_kinds

from .routing import SIGN_ENUMERATED, choose_backend, choose_training_route
from .solution import Solution, certify, certify_split_iterate

#: keyword options understood by the ALM backend (the others go to exact backends)
ALM_OPTIONS = ("restarts", "seed", "max_outer", "max_inner", "tol", "dtype", "init", "progress", "callback")


def formulate(problem: TrainingProblem, encoding: str = "split", domain: str = "interval",
              symmetry_breaking: bool | str | list[str] = False) -> TrainingModel:
    """Build the declarative model (no solver involved)."""
    return build_training_model(problem, encoding, domain, symmetry_breaking)


def solve(
    problem: TrainingProblem,
    encoding: str = "split",
    domain: str = "interval",
    backend: str = "auto",
    time_limit: float | None = 60.0,
    symmetry_breaking: bool | str | list[str] = False,
    guard: bool = True,
    **backend_options: Any,
) -> Solution:
    """Formulate ``problem`` with ``encoding`` in ``domain``, solve it and certify the answer.

    ``backend="auto"`` sends small instances to an exact solver chosen by problem class and
    licence, and relaxed split instances beyond the exact limits to the ALM solver; the choice
    and its reason are in ``Solution.extra["route"]``.  ``time_limit`` is wall-clock seconds
    (exact solvers run under a guard process).  The certificate (max violation, ReLU forward-pass
    loss) is recomputed in numpy from the returned point.  ALM options (``restarts``, ``seed``,
    ``max_outer``, ``dtype``, ``init``, ``progress``, ``callback``, ...) pass through
    ``backend_options``.
    """
    route = None
    name = backend
    if backend == "auto":
        name, route = choose_training_route(problem, encoding, domain)
    if name == SIGN_ENUMERATED:   # exact route of issue 13 (unrectify/cases.py)
        from .cases import CASE_OPTIONS, solve_split_by_cases

        opts = {k: v for k, v in backend_options.items() if k in CASE_OPTIONS}
        return solve_split_by_cases(problem, domain, symmetry_breaking, time_limit, why=route, guard=guard, **opts)
    if name == "alm":
        return _solve_alm(problem, encoding, domain, time_limit, route, **backend_options)
    alm_only = sorted(set(backend_options) & set(ALM_OPTIONS))
    backend_options = {k: v for k, v in backend_options.items() if k not in ALM_OPTIONS}
    t0 = time.perf_counter()
    tm = formulate(problem, encoding, domain, symmetry_breaking)
    if name == "auto":
        name, route = choose_backend(tm.model)
    be = get_backend(name, **backend_options)
    raw = be.solve(tm.model, time_limit=time_limit, guard=guard)
    weights = activations = cert = None
    if raw.x is not None:
        weights = tm.weights(raw.x)
        activations = tm.activations(raw.x)
        cert = certify(tm, raw.x)
    extra = dict(raw.extra)
    if route:
        extra["route"] = route
    if alm_only:
        extra["ignored_options"] = alm_only
    return Solution(
        status=raw.status, objective=raw.objective, bound=raw.bound, weights=weights, activations=activations,
        seconds=time.perf_counter() - t0, backend=name, solver=raw.solver, encoding=tm.encoding.name,
        domain=domain, certificate=cert, model_stats=tm.model.stats(), symmetry_breaking=list(tm.symmetry_breaking),
        message=raw.message, point=raw.x, extra=extra,
    )


def _solve_alm(problem: TrainingProblem, encoding: str, domain: str, time_limit: float | None,
               route: str | None, **options: Any) -> Solution:
    """Relaxed split form by the augmented Lagrangian method: status ``local``, never ``optimal``."""
    from unrectify.backends.alm import solve_alm

    if encoding != "split" or domain != "interval":
        raise InputError(f"the alm backend solves the relaxed split form only (encoding split, domain interval), "
                         f"not {encoding}/{domain}")
    unknown = sorted(set(options) - set(ALM_OPTIONS) - {"strategy", "polish", "mu0", "explore"})
    t0 = time.perf_counter()
    res = solve_alm(problem, time_limit=time_limit, **options)
    cert = certify_split_iterate(problem, res.weights, res.hidden, res.output)
    extra = {"stop_reason": res.stop_reason, "restart_losses": res.restart_losses, "best_restart": res.best_restart,
             "stationarity": res.stationarity, "alm_options": res.options}
    if route:
        extra["route"] = route
    if unknown:
        extra["passed_to_alm"] = unknown
    n_h = problem.n_samples * sum(problem.hidden_widths)
    return Solution(
        status=res.status, objective=res.objective, bound=None, weights=res.weights,
        activations=[{"Z": h["Z"], "X": h["X"], "D": h["D"]} for h in res.hidden],
        seconds=time.perf_counter() - t0, backend="alm", solver="unrectify ALM (numpy)", encoding="split",
        domain="interval", certificate=cert, model_stats={"hidden_unit_samples": n_h, "class": "QCQP"},
        symmetry_breaking=list(symmetry_kinds(False)), message=res.message, history=res.history, extra=extra,
    )
