r"""The sign-enumerated exact route: one convex MIQP per read-out sign case, best over all cases.

For a single-output, one-hidden-layer network with a weight box the training optimum is the
minimum over ``k = 0..h`` of the case optima ``OPT_k`` (``k`` positive read-out weights, each at
``+-B``; :mod:`unrectify.formulations.sign_cases`, proof in docs/theory.md).  This module

1. finds an incumbent network by a few local descents (L-BFGS-B in the box, numpy/scipy),
2. optionally tightens the pre-activation bounds of every case by OBBT (LP, HiGHS) under the
   incumbent's residual bound; a case in which that bound leaves no network (e.g. targets above
   ``B`` while every read-out weight is negative) is closed at once (status ``excluded``),
3. solves every case with an exact backend (``scip-direct`` by default), each under the best
   loss known when it starts as an objective cut-off (a case with nothing better is proven
   ``>= cut-off``), in parallel processes where cores allow, sharing the time limit,
4. returns the best network over all cases with the global bound ``min_k bound_k``: status
   ``optimal`` when that bound meets the best loss within the solver gap.
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import wait as mp_wait
from typing import Any

import numpy as np

from unrectify.formulations import InputError, TrainingProblem, build_training_model
from unrectify.formulations.certificate import Certificate, certify, gate, losses_agree
from unrectify.formulations.sign_cases import (CaseExcludedError, build_sign_case, canonical_weights,
                                              residual_bound_from_loss, sign_cases, sign_enumeration_reason)

from .base import Backend, Capabilities, RawResult
from .results import Solution
from .scip import check_scip_options

ROUTE_NAME = "sign-enumerated convex MIQP"
#: SCIP parameters for the case MIQPs: 2 root cut rounds (start_case); SCIP's NLP off, because
#: its NLP heuristics (mpec, subnlp, nlpdiving, ... through Ipopt) corrupt the heap on 500-sample
#: cases (PySCIPOpt 6.3.0: glibc "free(): invalid pointer", then SIGABRT/SIGSEGV; bisected), and
#: a convex MIQP is solved by SCIP's outer approximation without it
SCIP_CASE_OPTIONS = {"separating/maxroundsroot": 2, "nlp/disable": True}
#: options of :func:`solve_sign_enumerated` that :func:`unrectify.solve` passes through
CASE_OPTIONS = ("backend", "processes", "obbt", "restarts", "seed", "gap", "absgap", "feastol", "scip_options")
#: relative / absolute gap at which the best loss and the global bound count as equal
GAP = 1e-6
ABSGAP = 1e-9


# ---------------------------------------------------------------------------- incumbent
def _loss_grad(p: np.ndarray, X: np.ndarray, y: np.ndarray, h: int, loss: str):
    n0 = X.shape[1]
    W = p[: h * n0].reshape(h, n0)
    b = p[h * n0: h * n0 + h]
    v = p[h * n0 + h: h * n0 + 2 * h]
    c = p[-1]
    Z = X @ W.T + b
    H = np.maximum(Z, 0.0)
    r = H @ v + c - y
    N = len(y)
    if loss == "mse":
        f, g = float(r @ r) / N, 2.0 * r / N
    else:
        f, g = float(np.abs(r).sum()) / N, np.sign(r) / N
    G = np.outer(g, v) * (Z > 0)
    grad = np.concatenate([(G.T @ X).ravel(), G.sum(axis=0), H.T @ g, [g.sum()]])
    return f, grad


def local_incumbent(problem: TrainingProblem, restarts: int = 32, seed: int = 0, max_iter: int = 300,
                    budget: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Best of ``restarts`` L-BFGS-B descents inside the box from random starts (a feasible
    network, not a certificate); after ``budget`` seconds no new descent starts (at least 4 run)."""
    from scipy.optimize import minimize

    P = problem
    n0, h = P.widths[0], P.widths[1]
    B = float(P.weight_bound)
    X, y = P.X, P.Y[:, 0]
    rng = np.random.default_rng(seed)
    npar = h * n0 + 2 * h + 1
    best_p, best_f = np.zeros(npar), np.inf
    t0 = time.perf_counter()
    for r in range(max(1, int(restarts))):
        if budget is not None and r >= 4 and time.perf_counter() - t0 > budget:
            break
        # start with every unit's kink at a random sample, so that no unit starts dead
        W0 = rng.uniform(-B, B, (h, n0))
        b0 = np.clip(-np.einsum("jk,jk->j", W0, X[rng.integers(0, len(y), h)]), -B, B)
        p0 = np.concatenate([W0.ravel(), b0, rng.uniform(-B, B, h), [np.clip(y.mean(), -B, B)]])
        res = minimize(_loss_grad, p0, args=(X, y, h, P.loss), jac=True, method="L-BFGS-B",
                       bounds=[(-B, B)] * npar, options={"maxiter": int(max_iter)})
        if res.fun < best_f:
            best_p, best_f = res.x, float(res.fun)
    W = best_p[: h * n0].reshape(h, n0)
    b = best_p[h * n0: h * n0 + h]
    v = best_p[h * n0 + h: h * n0 + 2 * h]
    return [(W, b), (v[None, :], best_p[-1:].copy())]


# ---------------------------------------------------------------------------- the route
def solve_sign_enumerated(problem: TrainingProblem, backend: str = "scip-direct", time_limit: float | None = 60.0,
                          processes: int | None = None, obbt: bool = False, restarts: int = 32, seed: int = 0,
                          gap: float = GAP, guard: bool = True, **backend_options: Any) -> Solution:
    """Solve ``problem`` exactly by sign enumeration (see the module docstring).

    ``backend``: any exact backend; ``scip-direct`` also takes the incumbent as an objective
    cut-off and a warm start, the others get it as a residual bound in the model only.
    ``processes``: cases solved at once (default: the usable cores, at most the number of
    cases).  ``obbt``: tighten every case's pre-activation bounds by LP first (HiGHS).
    The returned Solution has encoding ``sign-enumerated``; its point is the best case's
    model point, ``extra["cases"]`` one entry per case.
    """
    reason = sign_enumeration_reason(problem)
    if reason:
        raise InputError(f"sign enumeration {reason}")
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    P = problem
    cases = sign_cases(P)
    if processes is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        processes = max(cores, len(cases))   # all cases at once: the OS shares the cores, no case waits
    processes = max(1, min(int(processes), len(cases)))

    # 1. incumbent: a local descent, mapped to its sign case (same function, same loss)
    # (32 descents found the optimum of 100-sample 1-2-1 instances where 8 did not; at most 5% of the time)
    budget = None if time_limit is None else 0.05 * float(time_limit)
    k_inc, w_inc = canonical_weights(P, local_incumbent(P, restarts=restarts, seed=seed, budget=budget))
    inc_loss = P.forward_loss(w_inc)
    state = {"loss": inc_loss, "weights": w_inc, "k": k_inc, "source": "local descent"}
    t_inc = time.perf_counter() - t0

    # 2. per-case models (bounds tightened under the incumbent's residual bound)
    inc_cutoff = inc_loss * (1 + 1e-9) + 1e-12
    rbound = residual_bound_from_loss(P, inc_cutoff)
    obbt_info: dict = {}
    records: dict[int, dict] = {}
    models = {}
    if obbt:
        from unrectify.backends.obbt import case_preactivation_bounds
    t1 = time.perf_counter()
    for k in cases:
        try:
            bounds_k = case_preactivation_bounds(P, k, rbound) if obbt else None
            models[k] = build_sign_case(P, k, bounds=bounds_k, residual_bound=rbound)
        except CaseExcludedError as exc:
            # no network of this case fits the incumbent's residuals: closed at the cut-off
            records[k] = {"k": k, "status": "excluded", "objective": None, "bound": inc_cutoff, "seconds": 0.0,
                          "cutoff": inc_cutoff, "message": str(exc), "nodes": 0, "runs": 0}
    if obbt:
        obbt_info = {"seconds": time.perf_counter() - t1}

    supports_cutoff = backend == "scip-direct"

    def start_case(k: int, budget: float | None) -> tuple[Any, float]:
        """Start case ``k`` (a guarded child process; inline without guard or limit)."""
        cm = models[k]
        cutoff = state["loss"] * (1 + 1e-9) + 1e-12
        start = cm.point_from_weights(state["weights"]) if state["k"] == k else None
        opts = dict(backend_options)
        if backend in ("scip-direct", "scip"):
            # root cut rounds dominate these small MIQPs (measured: 2 rounds closed a 100-sample
            # case 2-6x faster than SCIP's default); a user's scip_options win
            opts["scip_options"] = {**SCIP_CASE_OPTIONS, **opts.get("scip_options", {})}
        if supports_cutoff:
            opts.update(objlimit=cutoff, gap=gap)
            if start is not None:
                opts["start"] = start
        be = _get_backend(backend, **opts)
        if not guard or budget is None:
            return be.solve(cm.model, time_limit=budget, guard=False), cutoff
        return be.start(cm.model, budget), cutoff

    def finish_case(k: int, raw: RawResult, cutoff: float) -> None:
        cm = models[k]
        if not supports_cutoff:
            cutoff = inc_cutoff            # the residual bound in the model is the only cut-off
        # infeasible under the cut-off: no network of this case is better than it
        case_bound = cutoff if raw.status == "infeasible" else raw.bound
        if case_bound is None and raw.status == "optimal":
            # a convex case solved to optimality by a global backend that reports no dual bound
            # (cvxpy, LPs): its optimum is its objective
            case_bound = raw.objective
        rec = {"k": k, "status": raw.status, "objective": raw.objective, "bound": case_bound,
               "seconds": raw.seconds, "cutoff": cutoff, "message": raw.message, "nodes": raw.extra.get("nodes")}
        if raw.x is not None:
            w = cm.weights(raw.x)
            fl = P.forward_loss(w)
            viol = cm.model.evaluate(raw.x).max_violation
            rec.update(forward_loss=fl, max_violation=viol)
            if viol <= 1e-6 and fl < state["loss"]:
                state.update(loss=fl, weights=w, k=k, source=f"case k={k}")
        prev = records.get(k)
        if prev is not None and prev.get("bound") is not None and (rec["bound"] is None or prev["bound"] > rec["bound"]):
            rec["bound"] = prev["bound"]       # an earlier run's bound is still a valid bound
        rec["runs"] = 1 + (prev or {}).get("runs", 0)
        records[k] = rec

    def run_round(pending: list[int]) -> None:
        """Solve ``pending`` with at most ``processes`` child processes at once.  Every child is
        forked from this thread while no other thread runs: forking from worker threads crashed
        children in malloc (glibc "free(): invalid pointer") on 500-sample cases."""
        queue = list(pending)
        running: dict[Any, tuple[int, Any, float]] = {}
        try:
            while queue or running:
                while queue and len(running) < processes:
                    left = None if deadline is None else deadline - time.perf_counter()
                    if left is not None and left <= 0.5:
                        queue.clear()
                        break
                    k = queue.pop(0)
                    # the time left, shared with the cases still to start after the running ones
                    waves = max(1.0, np.ceil((len(queue) + 1 + len(running)) / processes))
                    handle, cutoff = start_case(k, None if left is None else left / waves)
                    if isinstance(handle, RawResult):
                        finish_case(k, handle, cutoff)
                    else:
                        running[handle.connection] = (k, handle, cutoff)
                if not running:
                    continue
                now = time.perf_counter()
                timeout = max(0.0, min(h.deadline - (now - h.t0) for _, h, _ in running.values()))
                ready = set(mp_wait(list(running), timeout=timeout))
                now = time.perf_counter()
                for conn, (k, h, cutoff) in list(running.items()):
                    if conn in ready or now - h.t0 >= h.deadline:   # done, or past its guard deadline
                        del running[conn]
                        finish_case(k, h.result(), cutoff)
        finally:
            for _, h, _ in running.values():
                h.cancel()

    # 3. solve: cases whose status leaves their bound below the best loss are retried while time is left
    # the incumbent's case, usually hardest, last; excluded cases are closed already
    order = [k for k in cases if k != k_inc and k in models] + ([k_inc] if k_inc in models else [])
    pending = list(order)
    rounds = 0
    if deadline is not None:
        deadline -= 1.0      # kept for the final certificate and the split-model point
    while pending:
        rounds += 1
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0.5:
            break
        run_round(pending)
        pending = [k for k in pending if not _closed(records.get(k), state["loss"], gap)]
        if rounds >= 3:
            break

    # 4. global answer
    best = state["loss"]
    case_bounds = [_case_bound(records.get(k)) for k in cases]
    # a case closed by the cut-off proves only ">= cut-off", which may lie just above the best loss
    bound = None if any(b is None for b in case_bounds) else float(min(min(case_bounds), best))
    status = "optimal" if bound is not None and best - bound <= gap * abs(best) + ABSGAP else "time_limit"
    if any(r["status"] == "error" for r in records.values()) and status != "optimal":
        status = "error"
    k_best, w_best = canonical_weights(P, state["weights"])
    cm = build_sign_case(P, k_best)       # the unrestricted case model: no incumbent bound in the certificate
    point = cm.point_from_weights(w_best)
    ev = cm.model.evaluate(point)
    fl = P.forward_loss(w_best)
    gaps = float(np.abs(point[cm.model.blocks["X1"]] - np.maximum(point[cm.model.blocks["Z1"]], 0)).max())
    cert = Certificate(ev.max_violation, fl, gaps, ev.objective, losses_agree(fl, ev.objective))
    route = (f"{ROUTE_NAME}: {len(cases)} read-out sign cases (|v_j| = B, k positive), each a convex "
             f"{'MIQP' if P.loss == 'mse' else 'MILP'} by {backend}"
             + (", orientation cuts (1-D input)" if P.widths[0] == 1 else "") + (", OBBT bounds" if obbt else ""))
    extra = {"route": route, "cases": [records.get(k, {"k": k, "status": "not run"}) for k in cases],
             "incumbent": {"loss": inc_loss, "k": k_inc, "seconds": t_inc}, "best_from": state["source"],
             "processes": processes, "rounds": rounds}
    if obbt:
        extra["obbt"] = obbt_info
    solver = _get_backend(backend).solver or backend
    solver_status = status
    status, certified = gate(status, True, cert.agrees_with(fl))   # same gate as every backend
    return Solution(status=status, objective=fl, bound=bound, weights=w_best,
                    solver_status=solver_status, solver_objective=fl, solver_bound=bound, certified=certified,
                    global_solver=True,
                    activations=[{k: point[cm.model.blocks[n]] for k, n in (("Z", "Z1"), ("X", "X1"), ("D", "D1"))}],
                    seconds=time.perf_counter() - t0, backend=backend, solver=solver, encoding="sign-enumerated",
                    domain="binary", certificate=cert, model_stats=cm.model.stats() | {"cases": len(cases)},
                    symmetry_breaking=["scaling", "permutation"], point=point, extra=extra,
                    message="" if status == "optimal" else "not every case closed within the time limit")


def _get_backend(name: str, **options: Any):
    from . import get_backend   # the registry imports this module

    return get_backend(name, **options)


def _case_bound(rec: dict | None) -> float | None:
    if rec is None:
        return None
    return rec.get("bound")


def _closed(rec: dict | None, best: float, gap: float) -> bool:
    """A case is closed when its proven bound reaches the best loss (within the gap)."""
    b = _case_bound(rec)
    return b is not None and best - b <= gap * abs(best) + ABSGAP


def solve_split_by_cases(problem: TrainingProblem, domain: str = "interval",
                         symmetry_breaking: bool | str | list[str] = False, time_limit: float | None = 60.0,
                         why: str = "", **options: Any) -> Solution:
    """The split form of ``problem`` solved through the sign enumeration: the certified optimum
    is the optimum of both split forms (optimality preservation, docs/theory.md), and the
    returned point is the split model's point of the best network (``d = 1[z > 0]``)."""
    sol = solve_sign_enumerated(problem, time_limit=time_limit, **options)
    tm = build_training_model(problem, "split", domain, symmetry_breaking)
    W1, b1 = sol.weights[0]
    W2, b2 = sol.weights[1]
    perm = np.argsort(b1, kind="stable")          # global bias order: the split model's permutation cut
    weights = [(W1[perm], b1[perm]), (W2[:, perm], b2)]
    point = tm.point_from_weights(weights)
    cert = certify(tm, point)
    extra = dict(sol.extra)
    extra["route"] = (f"{why}. " if why else f"split/{domain} solved by the {ROUTE_NAME} route. ") + sol.extra["route"]
    status, certified = gate(sol.solver_status, True, cert.agrees_with(sol.objective))
    return Solution(status=status, objective=cert.objective_recomputed, bound=sol.bound, weights=weights,
                    solver_status=sol.solver_status, solver_objective=sol.solver_objective,
                    solver_bound=sol.solver_bound, certified=certified, global_solver=True,
                    activations=tm.activations(point), seconds=sol.seconds, backend=sol.backend, solver=sol.solver,
                    encoding="split", domain=domain, certificate=cert,
                    model_stats=tm.model.stats() | {"solved_as": sol.model_stats},
                    symmetry_breaking=list(tm.symmetry_breaking), message=sol.message, point=point, extra=extra)


#: largest hidden width (h + 1 cases) and activation count N h the sign-enumerated backend takes
MAX_HIDDEN = 8
MAX_ACTIVATIONS = 20000


class SignEnumeratedBackend(Backend):
    """The split form of a single-output, one-hidden-layer problem with a weight box, solved
    exactly by read-out sign enumeration (module docstring; proofs in docs/theory.md): one convex
    MIQP per case on an exact backend (``scip-direct`` by default), the certified optimum the
    best over all cases.  A problem-level backend: ``auto`` takes it for such problems beyond
    the exact backends' size limits, before any backend that cannot certify."""

    name = "sign-enumerated"
    solver = "SCIP (PySCIPOpt), one solve per read-out sign case"
    module = "pyscipopt"
    capabilities = Capabilities(integer=True, quadratic_objective=True, nonconvex=False, global_optimum=True,
                                needs_box=True, level="problem", domains=("binary", "interval"),
                                encodings=("split",))
    option_names = CASE_OPTIONS

    def check_options(self) -> None:
        check_scip_options(self.name, self.options)

    @classmethod
    def takes(cls, problem: TrainingProblem | None, encoding: str, domain: str) -> str | None:
        reason = super().takes(problem, encoding, domain)
        if reason is None and problem is not None:
            why = sign_enumeration_reason(problem)
            if why:
                return f"backend {cls.name!r}: sign enumeration {why}"
            h = problem.widths[1]
            if h > MAX_HIDDEN or problem.n_samples * h > MAX_ACTIVATIONS:
                # h + 1 cases of N h binaries each: beyond these sizes no case closes in minutes
                return (f"backend {cls.name!r}: sign enumeration is for narrow networks (hidden width <= "
                        f"{MAX_HIDDEN}, samples x width <= {MAX_ACTIVATIONS}), got width {h} with "
                        f"{problem.n_samples} samples")
            try:
                problem.bounds()      # the big-M constants of every case come from these bounds
            except InputError as exc:
                return f"backend {cls.name!r}: {exc}"
        return reason

    def solve_problem(self, problem: TrainingProblem, encoding: str = "split", domain: str = "interval",
                      time_limit: float | None = 60.0, symmetry_breaking: bool | str | list[str] = False,
                      guard: bool = True) -> Solution:
        """The split form's certified optimum through the sign cases (status gated as for every backend)."""
        reason = self.takes(problem, encoding, domain)
        if reason:
            raise InputError(reason)
        sol = solve_split_by_cases(problem, domain, symmetry_breaking, time_limit, guard=guard, **self.options)
        raw = RawResult(sol.status, sol.point, sol.objective, sol.bound, sol.solver, sol.seconds, sol.message,
                        dict(sol.extra))
        return self.make_solution(raw, sol.certificate, weights=sol.weights, activations=sol.activations,
                                  seconds=sol.seconds, encoding=sol.encoding, domain=sol.domain,
                                  model_stats=sol.model_stats, symmetry_breaking=sol.symmetry_breaking,
                                  point=sol.point)


__all__ = ["CASE_OPTIONS", "SignEnumeratedBackend", "solve_sign_enumerated", "solve_split_by_cases"]
