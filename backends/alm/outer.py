"""Inner block-coordinate loop and the outer Conn-Gould-Toint multiplier/penalty loop.

Outer iteration k, with penalty ``mu``, feasibility target ``eta`` and inner target ``omega``:

1. inner: sweeps (:func:`blocks.sweep`) until the projected gradient of L is ``<= omega``
   (checked every ``check_every`` sweeps), L stops decreasing (relative change below
   ``stall_rtol``), ``max_inner`` sweeps, or the time limit;
2. converged if ``||C||_inf <= tol`` and the projected gradient is ``<= stat_tol``;
3. if ``||C||_inf <= eta``: first-order multiplier step ``Lam += C / mu`` and tighten
   ``eta``, ``omega``; else shrink the penalty parameter ``mu <- tau mu`` (``mu >= mu_min``) and
   reset ``eta``, ``omega`` from the new ``mu``.

With ``polish`` the loop also stops (reason ``"polish"``) once ``||C||_inf <= polish_at``; the
caller then refines the weights (:mod:`unrectify.backends.alm.polish`).

Every outer iteration appends a history record and calls ``callback(record)`` with the record
plus ``"weights"`` (the iterate's weights, live arrays: copy what is kept); a callback returning
True stops the run (reason ``"callback"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unrectify.formulations.problem import TrainingProblem

from .blocks import sweep
from .options import ALMOptions
from .state import Context, Metrics, State, evaluate, update_multipliers

#: stop reasons and the status each one maps to (a limit is reported like SCIP's iteration limits)
STOP_STATUS = {
    "converged": "local",
    "stalled": "time_limit",
    "polish_iters": "time_limit",
    "max_outer": "time_limit",
    "time_limit": "time_limit",
    "callback": "time_limit",
    "nonfinite": "error",
}


class StallMonitor:
    """``stalled``: with ``W = max(window, k // 4)`` after ``k`` outer iterations, the mean
    objective of the last ``W`` iterations is not below ``(1 - obj_rtol)`` times the mean of the
    ``W`` before them, and the violation did not fall below ``viol_ratio`` times its best value
    before the last ``W`` (violation progress counts only while that best is above
    ``viol_floor``, the feasibility tolerance).  :meth:`update` returns True when that happens
    (never before ``2 * window`` iterations).

    Window means, not single values: the reduced method measures its objective after stochastic
    passes, and it fluctuates by several per cent between outer iterations; a best-single-value
    rule took that noise for a stall (digits 25 %: stopped at 38 of 60 s while the objective
    was still falling by about 1 % a second).  The window grows with the run (a quarter of it):
    when outer iterations are cheap (0.1 s on digits) a fixed 20-iteration window is a couple of
    seconds, over which a slow but steady decrease is within the noise."""

    def __init__(self, window: int, obj_rtol: float, viol_ratio: float, viol_floor: float = 0.0) -> None:
        self.window, self.obj_rtol, self.viol_ratio = int(window), float(obj_rtol), float(viol_ratio)
        self.viol_floor = float(viol_floor)
        self.objs: list[float] = []
        self.viols: list[float] = []

    def update(self, objective: float, viol: float) -> bool:
        self.objs.append(float(objective))
        self.viols.append(float(viol))
        k = len(self.objs)
        w = max(self.window, k // 4)
        if k < 2 * w:
            return False
        last, prev = self.objs[k - w:], self.objs[k - 2 * w:k - w]
        obj_progress = sum(last) / w < (1.0 - self.obj_rtol) * (sum(prev) / w)
        best_before = min(self.viols[:k - w])
        viol_progress = best_before > self.viol_floor and min(self.viols[k - w:]) < self.viol_ratio * best_before
        return not (obj_progress or viol_progress)


@dataclass
class RunOutcome:
    stop_reason: str
    metrics: Metrics
    outer: int
    sweeps: int


def inner_loop(ctx: Context, st: State, opts: ALMOptions, omega: float, deadline: float | None) -> tuple[int, Metrics]:
    """Sweeps until stationarity ``<= omega``, stall, ``max_inner`` or the deadline."""
    prev = math.inf
    m: Metrics | None = None
    s = 0
    while s < opts.max_inner:
        sweep(ctx, st)
        s += 1
        if s % opts.check_every == 0 or s == opts.max_inner:
            m = evaluate(ctx, st)
            if not math.isfinite(m.al) or m.pgrad <= omega:
                break
            if prev - m.al <= opts.stall_rtol * max(abs(m.al), 1.0):
                break
            prev = m.al
        if deadline is not None and time.perf_counter() >= deadline:
            break
    if m is None or (s % opts.check_every != 0 and s != opts.max_inner):  # last sweep not evaluated
        m = evaluate(ctx, st)
    return s, m


def outer_loop(ctx: Context, st: State, problem: TrainingProblem, opts: ALMOptions, *,
               deadline: float | None, t0: float, history: list[dict], restart: int = 0,
               callback: Callable[[dict], Any] | None = None, bar: Any = None) -> RunOutcome:
    """Run the ALM from ``st`` (modified in place) and return why it stopped."""
    eta, omega = opts.eta0, opts.omega0
    stall = StallMonitor(opts.stall_window, opts.stall_obj_rtol, opts.stall_viol_ratio, opts.tol)
    sweeps_total = 0
    reason = "max_outer"
    k = 0
    for k in range(1, opts.max_outer + 1):
        n, m = inner_loop(ctx, st, opts, omega, deadline)
        sweeps_total += n
        rec = {
            "restart": restart, "outer": k, "loss": m.objective, "forward_loss": problem.forward_loss(st.weights),
            "viol": m.viol, "pgrad": m.pgrad, "mu": st.mu, "eta": eta, "omega": omega, "al": m.al,
            "sweeps": n, "seconds": time.perf_counter() - t0,
        }
        history.append(rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(r=restart, loss=f"{m.objective:.4g}", viol=f"{m.viol:.1e}", pgrad=f"{m.pgrad:.1e}",
                            mu=f"{st.mu:.1e}", refresh=False)
        if not (math.isfinite(m.al) and math.isfinite(m.viol)):
            reason = "nonfinite"
            break
        # every finite iterate is shown to the callback, the last one before convergence included
        stop = callback is not None and bool(callback({**rec, "weights": st.weights}))
        if m.viol <= opts.tol and m.pgrad <= opts.stat_tol:
            reason = "converged"
            break
        if opts.polish and m.viol <= opts.polish_at:
            reason = "polish"
            break
        if stop:
            reason = "callback"
            break
        if deadline is not None and time.perf_counter() >= deadline:
            reason = "time_limit"
            break
        if k == opts.max_outer:
            break
        if stall.update(m.objective, m.viol):
            reason = "stalled"
            break
        if m.viol <= eta:
            update_multipliers(ctx, st)
            eta = max(eta * opts.eta_decay, opts.tol)
            omega = max(omega * opts.omega_decay, opts.stat_tol)
        else:
            st.set_mu(max(st.mu * opts.tau, opts.mu_min))
            eta = max(opts.eta0 * (st.mu / opts.mu0) ** 0.1, opts.tol)
            omega = max(opts.omega0 * st.mu / opts.mu0, opts.stat_tol)
    return RunOutcome(stop_reason=reason, metrics=m, outer=k, sweeps=sweeps_total)
