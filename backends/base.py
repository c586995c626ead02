"""Backend protocol: compile -> solve -> extract, with a status map and capability flags.

A backend receives a solver-free :class:`unrectify.formulations.Model` and returns a picklable
:class:`RawResult` (status, point, objective, bound).  Solver modules are imported lazily
inside the backend so that importing unrectify never requires an optional solver.  The
call runs in a forked child process guarded by a wall clock, so ``time_limit`` holds even
when a solver ignores its own limit (SCIP can overrun in presolve).
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from unrectify.formulations.errors import ModelClassError, SolverUnavailableError, UnrectifyError
from unrectify.formulations.model import Model
from unrectify.formulations.validation import positive_number

STATUSES = ("optimal", "time_limit", "infeasible", "local", "error")


@dataclass(frozen=True)
class Capabilities:
    integer: bool = False            # integer / binary variables
    quadratic_objective: bool = False  # convex quadratic objective
    nonconvex: bool = False          # bilinear constraints / nonconvex objective
    global_optimum: bool = False     # a reported "optimal" is a certified global optimum
    needs_box: bool = True           # needs finite bounds on every variable


@dataclass
class RawResult:
    status: str
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    solver: str
    seconds: float = 0.0
    message: str = ""
    extra: dict = field(default_factory=dict)


class Backend:
    """Base class; subclasses set ``name``, ``solver``, ``capabilities``, ``module`` and
    implement :meth:`compile`, :meth:`run` and :meth:`extract`."""

    name: ClassVar[str] = ""
    solver: ClassVar[str] = ""
    module: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, **options: Any) -> None:
        self.options = options

    # -- availability and model checks ------------------------------------------------
    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec(cls.module) is not None

    def require(self) -> None:
        if not self.available():
            raise SolverUnavailableError(f"backend {self.name!r} needs the Python package {self.module!r}, which is not installed")

    def supports(self, model: Model) -> str | None:
        """None if the model is within this backend's capabilities, else the reason it is not."""
        cap = self.capabilities
        if model.n_integer and not cap.integer:
            return f"backend {self.name!r} does not handle integer variables"
        if (model.has_quadratic_constraints or not model.objective_is_convex) and not cap.nonconvex:
            return f"backend {self.name!r} handles only linear constraints and convex objectives; this model is {model.problem_class}"
        if model.has_quadratic_objective and not cap.quadratic_objective:
            return f"backend {self.name!r} handles only linear objectives; this model is {model.problem_class}"
        return None

    def check(self, model: Model) -> None:
        """Raise a one-line error if this backend cannot take ``model``."""
        self.require()
        reason = self.supports(model)
        if reason:
            raise ModelClassError(reason)

    # -- the three steps ----------------------------------------------------------------
    def compile(self, model: Model, time_limit: float | None) -> Any:
        raise NotImplementedError

    def run(self, native: Any, time_limit: float | None) -> Any:
        raise NotImplementedError

    def extract(self, native: Any, outcome: Any, model: Model) -> RawResult:
        raise NotImplementedError

    def preload(self) -> None:
        """Import the solver modules in the parent, so forked solves do not pay for it each time."""
        importlib.import_module(self.module)

    def _solve_inline(self, model: Model, time_limit: float | None) -> RawResult:
        t0 = time.perf_counter()
        native = self.compile(model, time_limit)
        outcome = self.run(native, time_limit)
        res = self.extract(native, outcome, model)
        res.seconds = time.perf_counter() - t0
        return res

    def solve(self, model: Model, time_limit: float | None = None, guard: bool = True) -> RawResult:
        """Compile, solve and extract; with ``guard`` the work runs in a child process that is
        killed ``grace`` seconds after ``time_limit``.  The clock starts here: importing the
        solver (seconds for Pyomo on a cold start) counts against ``time_limit``."""
        t0 = time.perf_counter()
        time_limit = positive_number("time_limit", time_limit, allow_none=True)
        self.check(model)
        self.preload()
        if not guard or time_limit is None:
            return self._solve_inline(model, time_limit)
        left = max(time_limit - (time.perf_counter() - t0), MIN_SOLVE_SECONDS)
        res = _guarded(self._solve_inline, model, left, self.solver or self.name, time_limit)
        res.seconds = time.perf_counter() - t0
        return res


#: the least time a guarded solve is given, even when loading the solver used up the limit
MIN_SOLVE_SECONDS = 0.5
#: the guard never waits more than this past the limit (time limits are honoured within 10 s)
MAX_GRACE_SECONDS = 8.0


def grace_seconds(time_limit: float) -> float:
    """Seconds the guard waits past ``time_limit`` for the solver to stop by itself."""
    return min(2.0 + 0.1 * time_limit, MAX_GRACE_SECONDS)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this solver process if its parent dies (Ctrl-C, kill)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(fn, model, time_limit, conn) -> None:
    _die_with_parent()
    if "highspy" in sys.modules:
        # HiGHS's thread pool does not survive fork: a solve in the child would hang
        sys.modules["highspy"].Highs.resetGlobalScheduler(True)
    try:
        conn.send(("ok", fn(model, time_limit)))
    except UnrectifyError as exc:
        conn.send(("raise", exc))
    except BaseException as exc:  # report solver crashes as status "error", not a traceback
        conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__,
                   traceback.format_exc()))
    finally:
        conn.close()


def _guarded(fn, model: Model, time_limit: float, solver: str, stated_limit: float | None = None) -> RawResult:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(fn, model, time_limit, child), daemon=True)
    proc.start()
    child.close()
    deadline = time_limit + grace_seconds(time_limit)
    msg = None
    try:
        if parent.poll(deadline):
            msg = parent.recv()
    except (EOFError, OSError):
        msg = None
    finally:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        parent.close()
    elapsed = time.perf_counter() - t0
    if msg is None:
        if elapsed >= deadline:
            return RawResult("time_limit", None, None, None, solver, elapsed,
                             f"wall-clock guard stopped the solver after {elapsed:.1f}s "
                             f"(limit {stated_limit if stated_limit is not None else time_limit:g}s)")
        return RawResult("error", None, None, None, solver, elapsed,
                         f"solver process died (exit code {proc.exitcode})")
    if msg[0] == "raise":
        raise msg[1]
    if msg[0] == "error":
        return RawResult("error", None, None, None, solver, elapsed, msg[1], {"traceback": msg[2]})
    res = msg[1]
    res.seconds = elapsed
    return res
