"""Entry verbs for fixed-weight networks: ``optimize_output`` (verification) and ``invert``.

Both formulate the problem solver-free (:mod:`unrectify.formulations.fixed_weight`), pick a backend
(``backend="auto"``: HiGHS for the linear ``bigm``/``binary`` models, SCIP for bilinear or
quadratic ones; the reason is in ``FixedSolution.extra["route"]``), solve under a wall-clock
guard and certify the answer in numpy: the model's constraint violation at the returned
point, and an ordinary forward pass of the network at the returned input compared with the
model's output variables.  For a tight encoding or the binary domain the two agree up to
solver tolerances (``OUTPUT_TOL``); a non-tight relaxation (e.g. ``bigm``/``interval``) is
caught by the same check.

Example::

    from unrectify.formulations.fixed_weight import FixedNetwork
    from unrectify.fixed import optimize_output, invert
    net = FixedNetwork([(W1, b1), (W2, b2)], input_lo=0.0, input_hi=1.0)
    sol = optimize_output(net, 0, "max")          # exact max of output 0 over the box
    sol.objective, sol.bound, sol.input, sol.certified_optimal
    inv = invert(net, target=[0.3], norm="l1")    # the input whose output is closest to 0.3
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unrectify.backends import get_backend
from unrectify.formulations.encodings import Encoding
from unrectify.formulations.errors import InputError
from unrectify.formulations.fixed_weight import (
    FixedNetwork,
    FixedWeightModel,
    build_bound_tightening_model,
    build_inversion_model,
    build_output_bound_model,
)

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
    """Solve a built :class:`FixedWeightModel` and certify the answer against a forward pass.

    ``guard`` runs the solver in a forked child killed shortly after ``time_limit``."""
    t0 = time.perf_counter()
    model = fm.model
    route = None
    name = backend
    if backend == "auto":
        name, route = choose_backend(model)
    be = get_backend(name, **backend_options)
    raw = be.solve(model, time_limit=time_limit, guard=guard)
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


#: relative slack added to LP-tightened bounds (solver tolerances must not cut off feasible points)
OBBT_SLACK = 1e-6


def tighten_bounds(net: FixedNetwork, start: str = "crown", backend: str = "highs", time_limit: float | None = 60.0,
                   encoding: str | Encoding = "bigm", domain: str = "interval", max_nonzeros: int = 2_000_000,
                   guard: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Optimisation-based bound tightening (OBBT), layer by layer from ``start`` bounds.

    For layers ``2..L`` every unit is maximised and minimised over the relaxation of the network
    truncated after that layer, using the bounds already tightened for the layers before
    (:func:`unrectify.formulations.fixed_weight.build_bound_tightening_model`; with ``bigm``/``interval``
    one LP per layer, split into chunks of at most ``max_nonzeros`` nonzeros).  Each optimum is
    loosened by ``OBBT_SLACK * max(1, |v|)`` and intersected with the previous bound, so the
    result is never looser than ``start``; a chunk that is not solved to optimality in
    ``time_limit`` keeps its previous bounds.  Returns ``[(L_1, U_1), ..., (L_L, U_L)]`` for the
    builders' ``bounds=`` argument.
    """
    bounds = [(L.copy(), U.copy()) for L, U in net.bounds(start)]
    be = get_backend(backend)
    for k in range(2, net.n_layers + 1):
        n = net.widths[k]
        per_row = build_bound_tightening_model(net, k, bounds[:k], encoding, domain, units=[0]).model.A.nnz / 2
        chunk = int(max(1, min(n, max_nonzeros // max(2 * per_row, 1))))
        for start_unit in range(0, n, chunk):      # one separable model per chunk of units
            units = np.arange(start_unit, min(n, start_unit + chunk))
            fm = build_bound_tightening_model(net, k, bounds[:k], encoding, domain, units=units)
            raw = be.solve(fm.model, time_limit=time_limit, guard=guard)
            if raw.status != "optimal" or raw.x is None:
                continue
            z = fm.row_objectives(fm.output_value(raw.x))
            J = len(units)
            up, lo = z[:J], z[J:]
            L, U = bounds[k - 1]
            U[units] = np.minimum(U[units], up + OBBT_SLACK * np.maximum(1.0, np.abs(up)))
            L[units] = np.maximum(L[units], lo - OBBT_SLACK * np.maximum(1.0, np.abs(lo)))
            L[units] = np.minimum(L[units], U[units])
    return bounds


def _resolve(net: FixedNetwork, bounds, backend: str, time_limit):
    """Bounds for the builders: ``"lp"`` runs :func:`tighten_bounds` (HiGHS), other values pass."""
    if isinstance(bounds, str) and bounds == "lp":
        if not isinstance(net, FixedNetwork):
            raise InputError(f"expected a FixedNetwork, got {type(net).__name__}")
        return tighten_bounds(net, "crown", "highs", time_limit)
    return bounds


def optimize_output(net: FixedNetwork, output_index: int | Sequence[int] = 0, sense: str = "max",
                    encoding: str | Encoding = "bigm", domain: str = "binary", backend: str = "auto",
                    time_limit: float | None = 60.0, bounds: str = "interval", guard: bool = True,
                    **backend_options: Any) -> FixedSolution:
    """Maximise (or minimise) output ``output_index`` of ``net`` over its input box.

    ``bounds`` is the pre-activation bound method: ``interval``, the tighter ``crown``, ``lp``
    (:func:`tighten_bounds`, LP-based, solver time counted in ``build_seconds``) or an explicit
    list ``[(L_1, U_1), ...]``;
    ``guard`` runs the solver under a forked wall-clock guard; a sequence of output indices
    gives one independent row each.  See
    :func:`unrectify.formulations.fixed_weight.build_output_bound_model` for the mathematics.
    """
    t0 = time.perf_counter()
    fm = build_output_bound_model(net, output_index, sense, encoding, domain, _resolve(net, bounds, backend, time_limit))
    return solve_fixed(fm, backend, time_limit, guard, time.perf_counter() - t0, **backend_options)


def invert(net: FixedNetwork, target, norm: str = "l1", encoding: str | Encoding = "bigm",
           domain: str = "binary", backend: str = "auto", time_limit: float | None = 60.0,
           bounds: str = "interval", guard: bool = True, **backend_options: Any) -> FixedSolution:
    """The input in the box whose output is closest to ``target`` in ``norm`` (``l1``, squared
    ``l2`` or ``linf``); ``target`` ``(n_L,)`` or ``(B, n_L)`` (independent rows).  See
    :func:`unrectify.formulations.fixed_weight.build_inversion_model`."""
    t0 = time.perf_counter()
    fm = build_inversion_model(net, target, norm, encoding, domain, _resolve(net, bounds, backend, time_limit))
    return solve_fixed(fm, backend, time_limit, guard, time.perf_counter() - t0, **backend_options)


__all__ = [
    "OBBT_SLACK",
    "OUTPUT_TOL",
    "FixedNetwork",
    "FixedSolution",
    "invert",
    "optimize_output",
    "solve_fixed",
    "tighten_bounds",
]
