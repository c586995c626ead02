"""The entry verb: ``solve(problem, encoding, domain, backend, ...) -> Solution``."""

from __future__ import annotations

import time
from typing import Any

from backends import get_backend
from formulations import TrainingProblem, build_training_model
from formulations.builder import TrainingModel

from .routing import choose_backend
from .solution import Solution, certify


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

    ``backend="auto"`` picks an exact solver by problem class, size and licence (the reason is
    in ``Solution.extra["route"]``).  ``time_limit`` is wall-clock seconds, enforced by a guard
    around the solver process.  The certificate (max violation, ReLU forward-pass loss) is
    recomputed in numpy from the returned point.
    """
    t0 = time.perf_counter()
    tm = formulate(problem, encoding, domain, symmetry_breaking)
    route = None
    name = backend
    if backend == "auto":
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
    return Solution(
        status=raw.status, objective=raw.objective, bound=raw.bound, weights=weights, activations=activations,
        seconds=time.perf_counter() - t0, backend=name, solver=raw.solver, encoding=tm.encoding.name,
        domain=domain, certificate=cert, model_stats=tm.model.stats(), symmetry_breaking=list(tm.symmetry_breaking),
        message=raw.message, point=raw.x, extra=extra,
    )
