"""Entry verbs for fixed-weight networks: ``optimize_output`` (verification) and ``invert``.

Both formulate the problem solver-free (:mod:`formulations.fixed_weight`), pick a backend
(``backend="auto"``: HiGHS for the linear ``bigm``/``binary`` models, SCIP for bilinear or
quadratic ones; the reason is in ``FixedSolution.extra["route"]``), solve under a wall-clock
guard and certify the answer in numpy: the model's constraint violation at the returned
point, and an ordinary forward pass of the network at the returned input compared with the
model's output variables.  For a tight encoding or the binary domain the two agree up to
solver tolerances (``OUTPUT_TOL``); a non-tight relaxation (e.g. ``bigm``/``interval``) is
caught by the same check.

Example::

    from formulations.fixed_weight import FixedNetwork
    from unrectify.fixed import optimize_output, invert
    net = FixedNetwork([(W1, b1), (W2, b2)], input_lo=0.0, input_hi=1.0)
    sol = optimize_output(net, 0, "max")          # exact max of output 0 over the box
    sol.objective, sol.bound, sol.input, sol.certified_optimal
    inv = invert(net, target=[0.3], norm="l1")    # the input whose output is closest to 0.3
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from backends import get_backend
from formulations.encodings import Encoding
from formulations.fixed_weight import (FixedNetwork, FixedWeightModel, build_inversion_model,
                                       build_output_bound_model)

from .routing import choose_backend

#: the model's outputs must equal the forward pass to OUTPUT_TOL * max(1, |y|)
OUTPUT_TOL = 1e-6
#: largest constraint/bound/integrality violation still called feasible
VIOLATION_TOL = 1e-6


@dataclass
class FixedSolution:
    """Result of a fixed-weight solve, in the user's sense (``max`` objectives are maxima).

    ``input``, ``output`` (the model's output variables) and ``forward_output`` (the numpy
    forward pass at ``input``) have shape ``(n)`` for a single problem and ``(B, n)`` for a
    batch.  ``objective`` is the solver's objective (summed over rows), ``forward_objective``
    the same objective recomputed from ``forward_output``; ``bound`` is the solver's proven
    bound (an upper bound for ``max``, a lower bound otherwise).  ``output_gap`` is
    ``max |forward_output - output|`` and ``forward_agrees`` says it is within ``OUTPUT_TOL``.
    """

    status: str
    objective: float | None
    bound: float | None
    input: np.ndarray | None
    output: np.ndarray | None
    forward_output: np.ndarray | None
    forward_objective: float | None
    row_objectives: np.ndarray | None
    max_violation: float | None
    output_gap: float | None
    forward_agrees: bool
    seconds: float
    build_seconds: float
    backend: str
    solver: str
    encoding: str
    domain: str
    kind: str
    model_stats: dict = field(default_factory=dict)
    message: str = ""
    point: np.ndarray | None = field(default=None, repr=False)
    extra: dict = field(default_factory=dict)

    @property
    def certified_optimal(self) -> bool:
        """Optimal status, a feasible point, and the forward pass equal to the model's output."""
        return (self.status == "optimal" and self.max_violation is not None
                and self.max_violation <= VIOLATION_TOL and self.forward_agrees)

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-12)

    def summary(self) -> dict:
        return {
            "kind": self.kind, "encoding": self.encoding, "domain": self.domain, "backend": self.backend,
            "solver": self.solver, "status": self.status, "objective": self.objective, "bound": self.bound,
            "forward_objective": self.forward_objective, "max_violation": self.max_violation,
            "output_gap": self.output_gap, "certified_optimal": self.certified_optimal,
            "seconds": self.seconds, "build_seconds": self.build_seconds, "message": self.message,
        }


def solve_fixed(fm: FixedWeightModel, backend: str = "auto", time_limit: float | None = 60.0,
                guard: bool = True, build_seconds: float = 0.0, **backend_options: Any) -> FixedSolution:
    """Solve a built :class:`FixedWeightModel` and certify the answer against a forward pass."""
    t0 = time.perf_counter()
    model = fm.model
    route = None
    name = backend
    if backend == "auto":
        name, route = choose_backend(model)
    raw = get_backend(name, **backend_options).solve(model, time_limit=time_limit, guard=guard)
    extra = dict(raw.extra)
    if route:
        extra["route"] = route
    extra["bounds"] = fm.bound_method
    x = y = fwd = rows = None
    viol = gap = fobj = None
    agrees = False
    sign = fm.sign
    if raw.x is not None:
        x = fm.input_value(raw.x)
        y = fm.output_value(raw.x)
        fwd = fm.net.forward(x)
        viol = float(model.evaluate(raw.x).max_violation)
        gap = float(np.abs(fwd - y).max(initial=0.0))
        agrees = bool(np.all(np.abs(fwd - y) <= OUTPUT_TOL * np.maximum(1.0, np.abs(fwd))))
        rows = fm.row_objectives(y)
        fobj = fm.objective_from_outputs(fwd)
        if not fm.batched:
            x, y, fwd = x[0], y[0], fwd[0]
    obj = None if raw.objective is None else sign * raw.objective
    bound = None if raw.bound is None else sign * raw.bound
    return FixedSolution(
        status=raw.status, objective=obj, bound=bound, input=x, output=y, forward_output=fwd,
        forward_objective=fobj, row_objectives=rows, max_violation=viol, output_gap=gap, forward_agrees=agrees,
        seconds=build_seconds + (time.perf_counter() - t0), build_seconds=build_seconds, backend=name,
        solver=raw.solver, encoding=fm.encoding.name, domain=fm.domain, kind=fm.kind,
        model_stats=model.stats(), message=raw.message, point=raw.x, extra=extra)


def optimize_output(net: FixedNetwork, output_index: int | Sequence[int] = 0, sense: str = "max",
                    encoding: str | Encoding = "bigm", domain: str = "binary", backend: str = "auto",
                    time_limit: float | None = 60.0, bounds: str = "interval", guard: bool = True,
                    **backend_options: Any) -> FixedSolution:
    """Maximise (or minimise) output ``output_index`` of ``net`` over its input box.

    ``bounds`` is the pre-activation bound method (``interval`` or the tighter ``crown``);
    a sequence of output indices gives one independent row each.  See
    :func:`formulations.fixed_weight.build_output_bound_model` for the mathematics.
    """
    t0 = time.perf_counter()
    fm = build_output_bound_model(net, output_index, sense, encoding, domain, bounds)
    return solve_fixed(fm, backend, time_limit, guard, time.perf_counter() - t0, **backend_options)


def invert(net: FixedNetwork, target, norm: str = "l1", encoding: str | Encoding = "bigm",
           domain: str = "binary", backend: str = "auto", time_limit: float | None = 60.0,
           bounds: str = "interval", guard: bool = True, **backend_options: Any) -> FixedSolution:
    """The input in the box whose output is closest to ``target`` in ``norm`` (``l1``, squared
    ``l2`` or ``linf``); ``target`` ``(n_L,)`` or ``(B, n_L)`` (independent rows).  See
    :func:`formulations.fixed_weight.build_inversion_model`."""
    t0 = time.perf_counter()
    fm = build_inversion_model(net, target, norm, encoding, domain, bounds)
    return solve_fixed(fm, backend, time_limit, guard, time.perf_counter() - t0, **backend_options)


__all__ = ["FixedNetwork", "FixedSolution", "OUTPUT_TOL", "invert", "optimize_output", "solve_fixed"]
