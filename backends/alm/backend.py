"""The ALM solver as a registered backend: a problem-level backend of the one solving chain.

It takes the :class:`TrainingProblem` itself (no Model is built: the relaxed split form is held
as arrays), solves it by :func:`unrectify.backends.alm.solve_alm`, certifies the returned
iterate in numpy (:func:`unrectify.formulations.certificate.certify_split_iterate`) and
returns the same :class:`~unrectify.backends.results.Solution` as every backend.  Its answers
are local (status ``local`` or ``time_limit``), never ``optimal``: ``global_optimum=False``.

The option defaults below are the only ones: ``solve(..., backend="alm")``, ``backend="auto"``
routed here, ``verify`` and the command line all get them.
"""

from __future__ import annotations

import time
from dataclasses import fields

from unrectify.formulations.certificate import certify_split_iterate
from unrectify.formulations.errors import InputError
from unrectify.formulations.problem import TrainingProblem

from ..base import Backend, Capabilities, RawResult
from ..results import Solution

#: solve_alm's own keyword arguments (the rest are ALMOptions fields)
_CALL_OPTIONS = ("restarts", "seed", "init", "progress", "callback", "threads", "polish_callback")


def _option_names() -> tuple[str, ...]:
    from .options import ALMOptions

    return _CALL_OPTIONS + tuple(f.name for f in fields(ALMOptions))


def check_alm_kwargs(options: dict) -> None:
    """Check keyword options for :func:`solve_alm` without solving: unknown names, and the
    values of :class:`ALMOptions` fields by its own checks (an :class:`InputError` either way)."""
    from .options import ALMOptions

    unknown = sorted(k for k in options if k not in _option_names())
    if unknown:
        raise InputError(f"unknown ALM option(s) {', '.join(unknown)}")
    fields_ = {f.name for f in fields(ALMOptions)}
    try:
        ALMOptions.from_kwargs(**{k: v for k, v in options.items() if k in fields_})
    except (TypeError, ValueError) as exc:   # InputError is a ValueError
        raise InputError(str(exc)) from None


class AlmBackend(Backend):
    """Augmented Lagrangian method on the relaxed split form (numpy; local solutions)."""

    name = "alm"
    solver = "unrectify ALM (numpy)"
    module = "numpy"
    capabilities = Capabilities(integer=False, quadratic_objective=True, nonconvex=True, global_optimum=False,
                                needs_box=False, level="problem", domains=("interval",), encodings=("split",))
    option_names = _option_names()
    #: the defaults of the ALM backend, whichever way it is reached (docs/alm.md)
    option_defaults = {"restarts": 10, "seed": 0}

    @classmethod
    def check_resources(cls, problem: TrainingProblem, time_limit: float | None, **options) -> None:
        """Memory of ``restarts`` restarts and the time of the first weight update
        (:func:`unrectify.backends.alm.resources.check_resources`), with this backend's defaults."""
        from dataclasses import fields

        from .options import ALMOptions
        from .resources import check_resources
        from .solver import _use_reduced

        restarts = options.get("restarts", cls.option_defaults["restarts"])
        names = {f.name for f in fields(ALMOptions)}
        opts = ALMOptions.from_kwargs(**{k: v for k, v in options.items() if k in names})
        check_resources(problem, restarts, time_limit, _use_reduced(problem, opts))

    def solve_problem(self, problem: TrainingProblem, encoding: str = "split", domain: str = "interval",
                      time_limit: float | None = 60.0, symmetry_breaking: bool | str | list[str] = False,
                      guard: bool = True) -> Solution:
        """Train ``problem`` by the ALM (``symmetry_breaking`` and ``guard`` do not apply: no
        model is built, and the solver keeps its own time limit)."""
        from .solver import solve_alm

        if not isinstance(problem, TrainingProblem):
            raise InputError(f"the alm backend needs a TrainingProblem, got {type(problem).__name__}")
        reason = self.takes(problem, encoding, domain)
        if reason:
            raise InputError(reason)
        t0 = time.perf_counter()
        res = solve_alm(problem, time_limit=time_limit, **self.options)
        cert = certify_split_iterate(problem, res.weights, res.hidden, res.output)
        raw = RawResult(res.status, None, res.objective, None, self.solver, res.seconds, res.message,
                        {"stop_reason": res.stop_reason, "restart_losses": res.restart_losses,
                         "best_restart": res.best_restart, "stationarity": res.stationarity,
                         "alm_options": res.options})
        n_h = problem.n_samples * sum(problem.hidden_widths)
        return self.make_solution(
            raw, cert, weights=res.weights, activations=[{"Z": h["Z"], "X": h["X"], "D": h["D"]} for h in res.hidden],
            seconds=time.perf_counter() - t0, encoding="split", domain="interval",
            model_stats={"hidden_unit_samples": n_h, "class": "QCQP"}, symmetry_breaking=[], history=res.history)


__all__ = ["AlmBackend"]
