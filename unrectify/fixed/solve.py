"""Solve a fixed-weight model and certify the answer against the network's own forward pass."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from unrectify.backends import get_backend, refuse_foreign_options, refuse_unknown_options
from unrectify.formulations.certificate import VIOLATION_TOL, gate
from unrectify.formulations.encodings import Encoding
from unrectify.formulations.errors import InputError, UnknownNameError
from unrectify.formulations.fixed_weight import (FixedNetwork, FixedWeightModel, build_inversion_model,
                                                 build_output_bound_model)

from ..routing import choose_backend
from .obbt import tighten_bounds
from .result import OUTPUT_TOL, FixedSolution

#: the model-free backend of ``optimize_output`` (input-space branch and bound)
INPUT_BAB = "input-bab"


def _close(a: np.ndarray | float, b: np.ndarray | float) -> bool:
    """Every ``|a - b| <= OUTPUT_TOL * max(1, |a|)``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= OUTPUT_TOL * np.maximum(1.0, np.abs(a))))


#: random inputs of the box (and its centre) whose forward passes must not beat a reported optimum
REFUTE_SAMPLES = 2048


def _refutation(fm: FixedWeightModel, rows: np.ndarray, seed: int = 0) -> str:
    """A one-line reason why the solver's row optima ``rows`` (user sense) are wrong, or "".

    The solver's "optimal" is its own claim; a forward pass at a sampled input of the box that is
    better than a claimed optimum (beyond ``OUTPUT_TOL``) proves it wrong, e.g. after numerical
    trouble with large big-M constants."""
    if fm.kind not in ("output_bound", "inversion"):
        return ""
    net = fm.net
    rng = np.random.default_rng(seed)
    lo, hi = net.input_lo, net.input_hi
    X = np.vstack([0.5 * (lo + hi), lo + (hi - lo) * rng.random((REFUTE_SAMPLES, net.n_inputs))])
    vals = fm.sign * fm.sampled_row_objectives(net.forward(X))       # model sense: minimised
    claimed = fm.sign * np.asarray(rows, dtype=float).reshape(-1)
    best = vals.min(axis=0)
    worse = best < claimed - OUTPUT_TOL * np.maximum(1.0, np.abs(claimed))
    if not worse.any():
        return ""
    b = int(np.argmax(np.where(worse, claimed - best, -np.inf)))
    return (f"a sampled input of the box gives {fm.sign * best[b]:.10g}, better than the solver's optimum "
            f"{fm.sign * claimed[b]:.10g} (row {b}): the solver's answer is wrong, likely numerical trouble with "
            f"pre-activation bounds up to {_largest_bound(fm):.3g} (rescale the box or weights, or use "
            f"backend='{INPUT_BAB}')")


def _largest_bound(fm: FixedWeightModel) -> float:
    lb, ub = fm.model.lb, fm.model.ub
    finite = np.concatenate([lb[np.isfinite(lb)], ub[np.isfinite(ub)]])
    return float(np.abs(finite).max(initial=0.0))


def solve_fixed(fm: FixedWeightModel, backend: str = "auto", time_limit: float | None = 60.0,
                guard: bool = True, build_seconds: float = 0.0, **backend_options: Any) -> FixedSolution:
    """Solve a built :class:`FixedWeightModel` and certify the answer against a forward pass.

    ``optimal`` needs the solver's optimum, a feasible point (violation <= ``VIOLATION_TOL``),
    model outputs equal to the forward pass and the solver's objective equal to the objective
    of the forward pass (each to ``OUTPUT_TOL`` relative).  ``guard`` runs the solver in a
    forked child killed shortly after ``time_limit``."""
    refuse_unknown_options(backend_options, also=INPUT_BAB_OPTIONS)
    if backend not in ("auto", INPUT_BAB):
        refuse_foreign_options(backend, backend_options)
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
    if be.ignored_options:
        extra["ignored_options"] = list(be.ignored_options)
    extra["bounds"] = fm.bound_method
    x = y = fwd = rows = None
    viol = gap = fobj = None
    agrees = False
    sign = fm.sign
    obj = None if raw.objective is None else sign * raw.objective
    bound = None if raw.bound is None else sign * raw.bound
    if raw.x is not None:
        x = fm.input_value(raw.x)
        y = fm.output_value(raw.x)
        fwd = fm.net.forward(x)
        viol = float(model.evaluate(raw.x).max_violation)
        gap = float(np.abs(fwd - y).max(initial=0.0))
        agrees = _close(fwd, y)
        rows = fm.row_objectives(y)
        fobj = fm.objective_from_outputs(fwd)
        if not fm.batched:
            x, y, fwd = x[0], y[0], fwd[0]
    certificate_ok = (viol is not None and viol <= VIOLATION_TOL and agrees and obj is not None
                      and _close(fobj, obj))
    message = raw.message
    raw_status = raw.status
    if raw_status == "optimal" and rows is not None:
        refuted = _refutation(fm, rows)
        if refuted:
            certificate_ok, message = False, refuted
    if raw_status == "infeasible" and fm.kind in ("output_bound", "inversion"):
        # every input of the box is feasible for the network itself
        raw_status = "error"
        message = (f"the solver reported the model infeasible, but every input of the box is feasible: the "
                   f"pre-activation bounds ({fm.bound_method}) exclude the network's values, or the solver failed "
                   f"numerically (bounds up to {_largest_bound(fm):.3g})")
    status, certified = gate(raw_status, be.capabilities.global_optimum, certificate_ok)
    return FixedSolution(
        status=status, objective=obj, bound=bound, input=x, output=y, forward_output=fwd,
        forward_objective=fobj, row_objectives=rows, max_violation=viol, output_gap=gap, forward_agrees=agrees,
        seconds=build_seconds + (time.perf_counter() - t0), build_seconds=build_seconds, backend=name,
        solver=raw.solver, encoding=fm.encoding.name, domain=fm.domain, kind=fm.kind,
        model_stats=model.stats(), message=message, point=raw.x, extra=extra,
        solver_status=raw.status, solver_objective=obj, solver_bound=bound, certified=certified)


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
    gives one independent row each.  ``backend="auto"`` takes the input-space branch and bound
    for one output of a network with at most :data:`AUTO_BAB_MAX_INPUTS` inputs when encoding,
    domain and bounds are at their defaults, only its options are given and ``gap`` is at least
    :data:`AUTO_BAB_MIN_GAP` (``extra["route"]`` says so), else the MILP model's backend.  ``backend="input-bab"`` solves it without a model or MIP
    solver, by input-space branch and bound with CROWN (and optimised-slope) bounds per box
    (:mod:`unrectify.backends.input_bab`; one output index; options ``gap``, ``absgap``, ``batch``,
    ``samples``, ``max_open``, ``seed``, ``local_search``, ``alpha_steps``; ``encoding``, ``domain``
    and ``bounds`` do not apply).  See
    :func:`unrectify.formulations.fixed_weight.build_output_bound_model` for the mathematics.
    """
    refuse_unknown_options(backend_options, also=INPUT_BAB_OPTIONS)
    reason = _auto_bab_reason(net, output_index, encoding, domain, bounds, backend, backend_options)
    if reason:
        sol = _optimize_by_input_bab(net, output_index, sense, time_limit, **backend_options)
        sol.extra["route"] = (f"auto: {reason}: routed to {INPUT_BAB}, an exact route (certified if the bound "
                              f"closes within the time limit); result: {sol.status}, "
                              f"{'certified' if sol.certified_optimal else 'not certified'}")
        return sol
    if backend == INPUT_BAB:
        given = [f"{k}={v!r}" for k, v, default in (("encoding", encoding, "bigm"), ("domain", domain, "binary"),
                                                     ("bounds", bounds, "interval"))
                 if not (isinstance(v, str) and v == default)]
        if given:   # they shape a MILP model, which the branch and bound does not build
            raise InputError(f"{', '.join(given)} do{'es' if len(given) == 1 else ''} not apply to backend "
                             f"{INPUT_BAB!r} (no model is built)")
        return _optimize_by_input_bab(net, output_index, sense, time_limit, **backend_options)
    t0 = time.perf_counter()
    fm = build_output_bound_model(net, output_index, sense, encoding, domain, _resolve(net, bounds, backend, time_limit))
    return solve_fixed(fm, backend, time_limit, guard, time.perf_counter() - t0, **backend_options)


#: ``auto`` solves one output by input-space branch and bound up to this many inputs (measured:
#: it certifies every 10-input network of docs/fixed_weight.md, where no MILP route does in 60 s)
AUTO_BAB_MAX_INPUTS = 10
#: ... and a relative gap of at least this (each box bound carries a 1e-10 relative rounding slack)
AUTO_BAB_MIN_GAP = 1e-9


def _auto_bab_reason(net, output_index, encoding, domain, bounds, backend: str, options: dict) -> str:
    """Why ``auto`` takes the input-space branch and bound (``""``: it does not): one output index,
    at most :data:`AUTO_BAB_MAX_INPUTS` inputs, the model arguments at their defaults (a
    non-default encoding, domain or bounds asks for a model) and only options it takes."""
    if not (isinstance(backend, str) and backend == "auto") or not isinstance(net, FixedNetwork):
        return ""
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)):
        return ""
    if not all(isinstance(v, str) and v == d for v, d in ((encoding, "bigm"), (domain, "binary"), (bounds, "interval"))):
        return ""
    if any(k not in INPUT_BAB_OPTIONS for k in options) or len(net.weights) < 2:
        return ""
    from unrectify.backends.scip import DEFAULT_GAP
    gap = options.get("gap", DEFAULT_GAP)
    if isinstance(gap, bool) or not isinstance(gap, (int, float, np.floating, np.integer)) or not gap >= AUTO_BAB_MIN_GAP:
        return ""       # a gap below float rounding asks for the MILP (the search keeps a rounding slack)
    n0 = net.weights[0][0].shape[1]
    return f"one output of a network with {n0} inputs (<= {AUTO_BAB_MAX_INPUTS})" if n0 <= AUTO_BAB_MAX_INPUTS else ""


#: options of the input-space branch and bound (:func:`unrectify.backends.input_bab.maximize_output`)
INPUT_BAB_OPTIONS = ("gap", "absgap", "batch", "samples", "max_open", "seed", "local_search", "alpha_steps")


def _optimize_by_input_bab(net: FixedNetwork, output_index, sense: str, time_limit: float | None,
                           **options: Any) -> FixedSolution:
    """``optimize_output`` by input-space branch and bound: no model, no MIP solver; the bound
    is CROWN's over the open boxes, the answer a forward pass at an input in the box."""
    from unrectify.backends.input_bab import ALPHA_STEPS, SOLVER, maximize_output
    from unrectify.formulations.validation import positive_number

    if not isinstance(net, FixedNetwork):
        raise InputError(f"expected a FixedNetwork, got {type(net).__name__}")
    if sense not in ("max", "min"):
        raise UnknownNameError(f"unknown sense {sense!r}; choose max or min")
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)):
        raise InputError(f"backend {INPUT_BAB!r} optimises one output: output_index must be one integer, "
                         f"got {output_index!r}")
    row = int(output_index)
    if not 0 <= row < net.n_outputs:
        raise InputError(f"output_index {row} outside 0..{net.n_outputs - 1}")
    time_limit = positive_number("time_limit", time_limit, allow_none=True)
    ignored = sorted(k for k in options if k not in INPUT_BAB_OPTIONS)
    if ignored:
        raise InputError(f"backend {INPUT_BAB!r} does not take option{'s' if len(ignored) > 1 else ''} "
                         f"{', '.join(ignored)} (it takes: {', '.join(INPUT_BAB_OPTIONS)})")
    sign = 1.0 if sense == "max" else -1.0
    res = maximize_output(net.weights, net.input_lo, net.input_hi, row, sign, time_limit,
                          **{k: v for k, v in options.items() if k in INPUT_BAB_OPTIONS})
    x = res.x
    fwd = net.forward(x)                               # the certificate: an independent forward pass
    fobj = float(fwd[row])
    viol = float(max(np.max(net.input_lo - x, initial=0.0), np.max(x - net.input_hi, initial=0.0)))
    agrees = _close(fobj, sign * res.value)
    status, certified = gate(res.status, True, viol <= VIOLATION_TOL and agrees)
    steps = options.get("alpha_steps", ALPHA_STEPS)
    extra = {"route": f"{INPUT_BAB}: {SOLVER}", "bab": res.stats,
             "bounds": f"crown (per box), {steps} optimised-slope steps" if steps else "crown (per box)"}
    return FixedSolution(
        status=status, objective=fobj, bound=sign * res.bound, input=x, output=fwd,
        forward_output=fwd, forward_objective=fobj, row_objectives=np.array([fobj]), max_violation=viol,
        output_gap=0.0, forward_agrees=agrees, seconds=res.seconds, build_seconds=0.0, backend=INPUT_BAB,
        solver=SOLVER, encoding="none", domain="box", kind="output_bound", model_stats=dict(res.stats),
        message=res.message, extra=extra, solver_status=res.status, solver_objective=sign * res.value,
        solver_bound=sign * res.bound, certified=certified)


def invert(net: FixedNetwork, target, norm: str = "l1", encoding: str | Encoding = "bigm",
           domain: str = "binary", backend: str = "auto", time_limit: float | None = 60.0,
           bounds: str = "interval", guard: bool = True, **backend_options: Any) -> FixedSolution:
    """The input in the box whose output is closest to ``target`` in ``norm`` (``l1``, squared
    ``l2`` or ``linf``); ``target`` ``(n_L,)`` or ``(B, n_L)`` (independent rows).  See
    :func:`unrectify.formulations.fixed_weight.build_inversion_model`."""
    t0 = time.perf_counter()
    fm = build_inversion_model(net, target, norm, encoding, domain, _resolve(net, bounds, backend, time_limit))
    return solve_fixed(fm, backend, time_limit, guard, time.perf_counter() - t0, **backend_options)


__all__ = ["invert", "optimize_output", "solve_fixed"]
