"""``solve_alm``: input checks, restarts (random / pattern-diverse / hops) and the result."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from unrectify.formulations.errors import InputError
from unrectify.formulations.problem import TrainingProblem
from unrectify.formulations.validation import check_weights, positive_number

from .init import (
    first_layer_pattern,
    hop,
    kink_start,
    orientation_signs,
    pick_diverse,
    stratified_quantiles,
)
from .options import ALMOptions
from .outer import STOP_STATUS, RunOutcome, outer_loop
from .patterns import pattern_search
from .polish import forward_all, kkt_state, refine
from .reduced import forward_loss as chunked_forward_loss
from .reduced import reduced_alm
from .resources import check_resources
from .result import ALMResult, RestartRecord
from .state import Metrics, evaluate, make_context, multipliers, state_from_forward
from .threads import blas_threads

Weights = list[tuple[np.ndarray, np.ndarray]]


def solve_alm(
    problem: TrainingProblem,
    *,
    restarts: int = 1,
    seed: int = 0,
    max_outer: int = 60,
    max_inner: int = 100,
    tol: float = 1e-6,
    time_limit: float | None = None,
    dtype: str = "float64",
    init: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    progress: bool = False,
    callback: Callable[[dict], Any] | None = None,
    threads: int | None = None,
    polish_callback: Callable[[int, list, float], Any] | None = None,
    **options: Any,
) -> ALMResult:
    """Train ``problem`` by the augmented Lagrangian method on the relaxed split form.

    Each restart starts from the feasible forward-pass iterate of its start weights (D in {0, 1},
    zero multipliers) and runs the outer loop of :mod:`unrectify.backends.alm.outer`.  The best restart by
    ReLU forward-pass loss of its weights is returned (every restart's loss is in
    ``restart_losses``).  ``restarts`` total ALM runs; the first starts from ``init`` when given
    (weights outside the box are clipped into it), the others as ``strategy`` says (default
    ``"diverse"``: kink starts stratified across restarts, orientation classes cycled, and
    activation patterns not visited before; see :class:`ALMOptions`).  ``seed`` makes every
    start reproducible.
    ``time_limit`` (seconds) bounds the whole call; ``tol`` is the feasibility tolerance on
    ``||C||_inf`` (``stat_tol``, default 1e-6, the stationarity one).  ``dtype`` ``"float32"``
    halves memory and doubles GEMM speed (weights and the small Gram solves stay float64).
    ``callback(record)`` is called after every outer iteration with the history record plus
    ``"weights"``, the iterate's weights (live arrays, in the working dtype: copy what is kept;
    e.g. early stopping on validation data, as the CS decoders do); True stops.  ``polish_callback(iteration, weights, loss)`` is called after every iteration of the
    polish (SLSQP / L-BFGS-B on the forward-pass loss) with a copy of the weights; True ends the
    polish there (e.g. early stopping on validation data, as the ALM CS decoder does).
    ``progress`` shows a tqdm bar.  ``threads`` limits BLAS threads for the call (None:
    the process setting; small factorisations are always single-threaded, see ``threads.py``);
    the reduced method runs that many data-parallel threads (:meth:`~.reduced._Run.start_workers`).
    Other keyword arguments are :class:`ALMOptions`.
    """
    if not isinstance(problem, TrainingProblem):
        raise InputError(f"solve_alm needs a TrainingProblem, got {type(problem).__name__}")
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1:
        raise InputError(f"restarts must be a positive integer, got {restarts!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    time_limit = positive_number("time_limit (seconds)", time_limit, allow_none=True)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise InputError(f"threads must be a positive integer or None, got {threads!r}")
    if callback is not None and not callable(callback):
        raise InputError("callback must be callable (it receives the history record of each outer iteration)")
    if polish_callback is not None and not callable(polish_callback):
        raise InputError("polish_callback must be callable (it receives iteration, weights and loss)")
    opts = ALMOptions.from_kwargs(max_outer=max_outer, max_inner=max_inner, tol=tol, dtype=dtype, **options)
    # refuse before allocating
    check_resources(problem, int(restarts), time_limit, _use_reduced(problem, opts), np.dtype(opts.dtype).itemsize)
    message = ""
    warm: Weights | None = None
    if init is not None:
        warm, clipped = _check_init(problem, init)
        if clipped:
            message = "warm-start weights outside the box were clipped into it"

    with blas_threads(threads):
        return _solve(problem, opts, restarts, seed, time_limit, warm, message, progress, callback,
                      polish_callback)


def _solve(problem: TrainingProblem, opts: ALMOptions, restarts: int, seed: int, time_limit: float | None,
           warm: Weights | None, message: str, progress: bool, callback: Callable[[dict], Any] | None,
           polish_callback: Callable[[int, list, float], Any] | None = None) -> ALMResult:
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    # the block method's context holds the input Gram (n_0 + 1)^2; the reduced method needs none
    ctx = None if _use_reduced(problem, opts) else make_context(problem, opts.dtype, opts.box_newton_dim,
                                                                 opts.box_iters)
    rng = np.random.default_rng(int(seed))
    hidden_widths = problem.widths[1:-1]
    perms = [np.array([rng.permutation(restarts) for _ in range(n)]) for n in hidden_widths]
    offset = int(rng.integers(problem.widths[1] + 1))
    n_explore = max(1, math.ceil(opts.explore * restarts))
    history: list[dict] = []
    records: list[RestartRecord] = []
    seen: list[np.ndarray] = []
    best: tuple[float, int, Any, Any] | None = None  # (forward loss, restart, state, outcome)
    best_weights = None     # the best restart's weights (a state's on blocks, the final's when reduced)
    stop_all = None

    from tqdm.auto import tqdm

    for r in range(int(restarts)):
        if deadline is not None and time.perf_counter() >= deadline and records:
            stop_all = "time_limit"
            break
        rr = np.random.default_rng([int(seed), r])
        kind, w0 = _start(problem, opts, r, restarts, warm, rr, perms, offset, n_explore, seen, best_weights)
        if restarts > 1:  # patterns only steer later restarts
            seen.append(first_layer_pattern(problem, w0))
        if _use_reduced(problem, opts):
            fl, final, rec = _run_reduced(problem, opts, w0, kind, r, seed, t0, deadline, history, callback,
                                          polish_callback)
            records.append(rec)
            if restarts > 1:
                seen.append(first_layer_pattern(problem, final["weights"]))
            if best is None or fl < best[0]:
                best, best_weights = (fl, r, final, None), final["weights"]
            if final["stop_reason"] == "callback":
                stop_all = "callback"
                break
            continue
        st = state_from_forward(ctx, w0, opts.mu0)
        bar = tqdm(total=opts.max_outer, desc=f"alm {r + 1}/{restarts}", disable=not progress, leave=False)
        tr = time.perf_counter()
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                out = outer_loop(ctx, st, problem, opts, deadline=deadline, t0=t0, history=history,
                                 restart=r, callback=callback, bar=bar)
        except (np.linalg.LinAlgError, FloatingPointError):
            # a singular or non-finite block system: this restart ends with status "error"
            nan = float("nan")
            out = RunOutcome("nonfinite", Metrics(al=nan, objective=nan, viol=nan, pgrad=nan),
                             outer=sum(1 for h in history if h["restart"] == r), sweeps=0)
        bar.close()
        alm_fl = problem.forward_loss(st.weights)
        name = "alm"
        if opts.polish and out.stop_reason not in ("nonfinite", "callback", "converged", "time_limit"):
            st, out, moves, name = _polish(ctx, problem, opts, st, out, history, r, t0, deadline, polish_callback)
        else:
            moves = 0
        fl = problem.forward_loss(st.weights)
        if not math.isfinite(fl):
            fl = math.inf
        m = out.metrics
        records.append(RestartRecord(restart=r, start=kind, forward_loss=fl, objective=m.objective,
                                     max_violation=m.viol, stationarity=m.pgrad,
                                     converged=out.stop_reason == "converged", stop_reason=out.stop_reason,
                                     outer=out.outer, sweeps=out.sweeps, seconds=time.perf_counter() - tr,
                                     alm_forward_loss=alm_fl, pattern_moves=moves))
        if restarts > 1:
            seen.append(first_layer_pattern(problem, st.weights))
        if best is None or fl < best[0]:
            best, best_weights = (fl, r, st, (out, name)), st.weights
        if out.stop_reason == "callback":
            stop_all = "callback"
            break
    assert best is not None
    fl, r_best, st, extra = best
    final = st if extra is None else _blocks_final(st, *extra)
    reason = final["stop_reason"]
    status = STOP_STATUS[reason]
    if stop_all == "time_limit" and len(records) < restarts and not message:
        message = f"time limit reached after {len(records)} of {restarts} restarts"
    return ALMResult(
        status=status, stop_reason=reason, converged=reason == "converged",
        weights=final["weights"], forward_loss=fl,
        objective=final["objective"], max_violation=final["viol"], stationarity=final["pgrad"],
        hidden=final["hidden"], output=final["output"], history=history,
        restart_losses=[rec.forward_loss for rec in records], restarts=records, best_restart=r_best,
        seconds=time.perf_counter() - t0, mu=final["mu"], multipliers=final["multipliers"], options=opts.to_dict(),
        message=message, name=final["name"], method=final["method"], binary_fraction=final["binary_fraction"],
        alm_forward_loss=final["alm_forward_loss"], variable_bytes=final["variable_bytes"],
    )


def binary_fraction(hidden: list[dict], tol: float = 1e-3) -> float:
    """Fraction of the hidden D entries within ``tol`` of 0 or 1 (1.0 without hidden layers)."""
    n = sum(h["D"].size for h in hidden)
    if n == 0:
        return 1.0
    k = sum(int(np.count_nonzero(np.minimum(h["D"], 1.0 - h["D"]) <= tol)) for h in hidden)
    return k / n


def _blocks_final(st, out, name: str) -> dict:
    """Result pieces of a block-coordinate run: the iterate's own arrays, in the working dtype (no
    copies: memory stays O(state); a float64 copy of a float32 iterate would double the peak);
    the scaled multipliers become ``Lam = U / mu`` in place."""
    hidden = [{"Z": h.Z, "X": h.X, "D": h.D} for h in st.hidden]
    nbytes = st.nbytes()
    lams = []
    for l in range(len(st.weights)):
        layer = []
        for U in multipliers(st, l):
            U *= 1.0 / st.mu
            layer.append(U)
        lams.append(layer)
    return {"weights": [(W.copy(), b.copy()) for W, b in st.weights], "objective": out.metrics.objective,
            "viol": out.metrics.viol, "pgrad": out.metrics.pgrad, "hidden": hidden, "output": st.ZL, "mu": st.mu,
            "multipliers": lams, "stop_reason": out.stop_reason, "name": name, "method": "blocks",
            "binary_fraction": binary_fraction(hidden), "alm_forward_loss": float("nan"), "variable_bytes": nbytes}


def _use_reduced(problem: TrainingProblem, opts: ALMOptions) -> bool:
    """``method="auto"``: the reduced-space method for networks with more than
    ``polish_max_weights`` weights, the block-coordinate one for smaller ones."""
    if opts.method != "auto":
        return opts.method == "reduced"
    return sum(problem.widths[l] * (problem.widths[l - 1] + 1) for l in range(1, len(problem.widths))) > opts.polish_max_weights


def _run_reduced(problem: TrainingProblem, opts: ALMOptions, w0: Weights, kind: str, r: int, seed: int, t0: float,
                 deadline: float | None, history: list[dict], callback, polish_callback):
    """One restart of the reduced-space ALM (:mod:`unrectify.backends.alm.reduced`), then with
    ``polish`` an L-BFGS-B refinement of its weights on the forward loss (the result is named
    ``alm+lbfgs`` when the refined weights are kept, ``alm`` otherwise)."""
    tr = time.perf_counter()
    alm_deadline = deadline
    if opts.polish and deadline is not None:
        alm_deadline = tr + (1.0 - opts.polish_share) * max(deadline - tr, 0.0)
    ro = reduced_alm(problem, w0, opts, deadline=alm_deadline, t0=t0, history=history, restart=r,
                     callback=callback, seed=seed)
    alm_fl = chunked_forward_loss(problem, ro.weights)
    hidden, output = ro.iterate(problem, opts.dtype)
    final = {"weights": ro.weights, "objective": ro.objective, "viol": ro.viol, "pgrad": ro.pgrad,
             "hidden": hidden, "output": output, "mu": 1.0 / ro.rho,
             "multipliers": [[a, b] for a, b in zip(ro.lam_a, ro.lam_b)] + [[]],
             "stop_reason": ro.stop_reason, "name": "alm", "method": "reduced",
             "binary_fraction": ro.binary_fraction, "alm_forward_loss": alm_fl,
             "variable_bytes": ro.stats.get("nbytes", 0)}
    fl = alm_fl if math.isfinite(alm_fl) else math.inf
    if opts.polish and ro.stop_reason not in ("nonfinite", "callback") and math.isfinite(alm_fl):
        ref = refine(problem, ro.weights, deg_tol=0.0, max_iter=opts.polish_iters, max_weights=0, ftol=1e-15,
                     deadline=deadline, monitor=polish_callback, dtype=opts.dtype)
        rfl = chunked_forward_loss(problem, ref.weights)
        if math.isfinite(rfl) and rfl <= alm_fl:
            # the refined weights' exact forward-pass iterate: C1-C4 hold, D = 1[Z > 0]
            dt = np.dtype(opts.dtype)
            acts, zs = forward_all([(W.astype(dt), b.astype(dt)) for W, b in ref.weights], problem.X.astype(dt))
            hid = [{"Z": Z, "X": acts[l + 1], "D": (Z > 0).astype(dt)} for l, Z in enumerate(zs[:-1])]
            final.update(weights=ref.weights, objective=rfl, viol=0.0, pgrad=float("nan"), hidden=hid,
                         output=zs[-1], multipliers=[], stop_reason="polish_iters", name="alm+lbfgs",
                         binary_fraction=1.0)
            fl = rfl
            history.append({"restart": r, "outer": ro.outer, "phase": "polish", "loss": rfl, "forward_loss": rfl,
                            "viol": 0.0, "pgrad": float("nan"), "mu": 1.0 / ro.rho, "polish_iters": ref.iterations,
                            "sweeps": 0, "seconds": time.perf_counter() - t0})
    rec = RestartRecord(restart=r, start=kind, forward_loss=fl, objective=final["objective"],
                        max_violation=final["viol"], stationarity=final["pgrad"],
                        converged=final["stop_reason"] == "converged", stop_reason=final["stop_reason"],
                        outer=ro.outer, sweeps=ro.steps, seconds=time.perf_counter() - tr, alm_forward_loss=alm_fl)
    return fl, final, rec


def _polish(ctx, problem: TrainingProblem, opts: ALMOptions, st, out, history: list[dict], r: int, t0: float,
            deadline: float | None, monitor: Callable[[int, list, float], Any] | None = None):
    """Refine the weights of a finished ALM phase on their pattern, search neighbouring patterns
    (small networks), and switch to the KKT forward-pass iterate (:mod:`unrectify.backends.alm.polish`)
    unless that is worse and not converged; the reason becomes ``converged`` or ``polish_iters``."""
    # entries held at z = 0: those within polish_deg * violation of 0 (capped, for an ALM phase
    # that ended before reaching polish_at, so that a rough iterate does not pin many kinks)
    deg_tol = opts.polish_deg * min(max(out.metrics.viol, 1e-12), opts.polish_at)
    kw = {"max_iter": opts.polish_iters, "max_weights": opts.polish_max_weights, "ftol": 1e-15, "deadline": deadline,
          "monitor": monitor, "dtype": opts.dtype}
    ref = refine(problem, st.weights, deg_tol=deg_tol, **kw)
    moves = 0
    n_weights = sum(W.size + b.size for W, b in st.weights)
    if opts.pattern_moves > 0 and n_weights <= opts.polish_max_weights:
        w2, moves = pattern_search(problem, ref.weights, max_moves=opts.pattern_moves, deadline=deadline)
        if moves:
            # a pattern program's solution has its active sign constraints at z = 0 exactly
            ref = refine(problem, w2, deg_tol=opts.polish_deg * opts.tol, **kw)
    new = kkt_state(ctx, ref, st.mu)
    m = evaluate(ctx, new)
    ok = m.viol <= opts.tol and m.pgrad <= opts.stat_tol
    history.append({
        "restart": r, "outer": out.outer, "phase": "polish", "loss": m.objective,
        "forward_loss": problem.forward_loss(ref.weights), "viol": m.viol, "pgrad": m.pgrad, "mu": new.mu,
        "eta": float("nan"), "omega": float("nan"), "al": m.al, "sweeps": 0, "polish_iters": ref.iterations,
        "degenerate": int(sum(ii.size for ii, _ in ref.S)), "pattern_moves": moves,
        "seconds": time.perf_counter() - t0,
    })
    if not ok and problem.forward_loss(ref.weights) > problem.forward_loss(st.weights):
        return st, RunOutcome("polish_iters", out.metrics, out.outer, out.sweeps), moves, "alm"
    reason = "converged" if ok else "polish_iters"
    return new, RunOutcome(stop_reason=reason, metrics=m, outer=out.outer, sweeps=out.sweeps), moves, "alm+" + ("lbfgs" if ref.method == "lbfgsb" else ref.method)


def _start(problem: TrainingProblem, opts: ALMOptions, r: int, restarts: int, warm: Weights | None,
           rng: np.random.Generator, perms: list[np.ndarray], offset: int, n_explore: int,
           seen: list[np.ndarray], incumbent: Weights | None) -> tuple[str, Weights]:
    """Start weights of restart ``r`` and their kind."""
    if r == 0 and warm is not None:
        return "init", warm
    if opts.strategy == "random":
        return "random", kink_start(problem, rng)
    if opts.strategy == "hop" and r >= n_explore and incumbent is not None:
        return "hop", hop(problem, incumbent, rng)
    signs = orientation_signs(problem.widths[1], r, restarts, offset, rng)
    cands = [kink_start(problem, rng, stratified_quantiles(problem.widths, r, restarts, rng, perms), signs)]
    cands += [kink_start(problem, rng, None, signs) for _ in range(opts.candidates - 1)] if seen else []
    return "diverse", pick_diverse(problem, cands, seen)


def _check_init(problem: TrainingProblem, init: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[Weights, bool]:
    """Validated float64 copies of warm-start weights (frozen layers taken from the problem)."""
    layers = check_weights(init, widths=problem.widths, name="init")
    out: Weights = []
    clipped = False
    B = problem.weight_bound
    for l, (W, b) in enumerate(layers, start=1):
        if l in problem.frozen:
            W, b = (np.array(a, dtype=np.float64) for a in problem.frozen[l])
        elif B is not None and max(np.abs(W).max(initial=0.0), np.abs(b).max(initial=0.0)) > B:
            W, b = np.clip(W, -B, B), np.clip(b, -B, B)
            clipped = True
        out.append((W, b))
    return out, clipped
