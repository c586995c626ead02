"""The entry verb: ``solve(problem, encoding, domain, backend, ...) -> Solution``.

One chain for every backend: problem -> route (``backend="auto"``) -> the backend's
:meth:`~unrectify.backends.Backend.solve_problem` (formulation, compile/solve/extract, numpy
certificate, status gate) -> :class:`Solution`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unrectify.backends import Solution, get_backend, refuse_foreign_options, refuse_unknown_options
from unrectify.formulations import InputError, TrainingProblem, build_training_model
from unrectify.formulations.builder import TrainingModel

from .routing import route as choose_route


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

    ``backend="auto"`` picks a backend from the registry's capability flags
    (:func:`unrectify.routing.route`): an exact solver chosen by model class and licence for
    instances within its size limits, else a backend that takes the problem itself (the ALM
    solver for the relaxed split form), whose answer is not certified.  The choice and its
    reason, followed by the outcome (``; result: <status>, certified`` or ``not certified``), are
    in ``Solution.route`` (and ``Solution.extra["route"]``).  A backend reached
    through ``auto`` runs exactly as when named: same defaults, same options.  ``time_limit`` is
    wall-clock seconds (exact solvers run under a guard process).  The certificate (max
    violation, ReLU forward-pass loss) is recomputed in numpy from the returned point, and
    ``status`` is ``optimal`` only when the solver reported a global optimum and the
    certificate agrees (``Solution.certified``).  Backend options (e.g. ``gap`` for SCIP,
    ``restarts``, ``seed``, ``max_outer`` for the ALM) pass through ``backend_options``; an option
    no backend takes is refused (a typo), and so is one a named backend does not take; under
    ``auto`` those that only other backends take are listed in ``Solution.extra["ignored_options"]``.
    """
    if not isinstance(problem, TrainingProblem):
        raise InputError(f"solve needs a TrainingProblem, got {type(problem).__name__}")
    if not isinstance(guard, (bool, np.bool_)):
        raise InputError(f"guard must be True or False, got {guard!r}")
    refuse_unknown_options(backend_options)
    if backend != "auto":
        refuse_foreign_options(backend, backend_options)
    reason = None
    name = backend
    if backend == "auto":
        chosen = choose_route(problem, encoding, domain, symmetry_breaking)
        name, reason = chosen.backend, chosen.reason
    be = get_backend(name, **backend_options)
    sol = be.solve_problem(problem, encoding, domain, time_limit=time_limit, symmetry_breaking=symmetry_breaking,
                           guard=guard)
    if reason:
        # the route states the intent; the outcome is what the user must not misread
        outcome = f"{reason}; result: {sol.status}, {'certified' if sol.certified_optimal else 'not certified'}"
        sol.route = outcome
        sol.extra["route"] = outcome
    return sol


__all__ = ["formulate", "solve"]
