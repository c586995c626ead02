"""Backend protocol: compile -> solve -> extract, with a status map and capability flags.

Every backend is reached the same way, :meth:`Backend.solve_problem` (problem -> formulation ->
backend -> certified :class:`~unrectify.backends.results.Solution`):

* a *model-level* backend (``capabilities.level == "model"``: SCIP, Gurobi, HiGHS, cvxpy)
  receives the solver-free :class:`unrectify.formulations.Model` of the formulation and returns
  a picklable :class:`RawResult` (status, point, objective and bound as the solver reported
  them) through :meth:`compile`, :meth:`run` and :meth:`extract`; the base class formulates,
  certifies and gates;
* a *problem-level* backend (``level == "problem"``, e.g. the ALM solver) overrides
  :meth:`solve_problem` and works on the :class:`TrainingProblem` itself, returning the same
  :class:`Solution` through the same certificate gate (:meth:`make_solution`).

The capability flags say what a backend takes (domains, encodings, losses, model classes, a
weight box, sizes) and whether its ``optimal`` is a global optimum; routing
(:mod:`unrectify.routing`) reads nothing else.  Solver modules are imported lazily
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
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from unrectify.formulations.certificate import Certificate, certify, gate
from unrectify.formulations.encodings import DOMAINS
from unrectify.formulations.errors import InputError, ModelClassError, SolverUnavailableError, UnrectifyError
from unrectify.formulations.model import Model
from unrectify.formulations.problem import LOSSES, TrainingProblem
from unrectify.formulations.status import SOLVER_STATUSES
from unrectify.formulations.validation import nonnegative_number, positive_number

from .results import Solution

#: statuses a backend reports (the certificate gate may turn ``optimal`` into ``uncertified``)
STATUSES = SOLVER_STATUSES


@dataclass(frozen=True)
class Capabilities:
    """What a backend takes and what its answers mean (read by routing and preflight checks)."""

    integer: bool = False            # integer / binary variables
    quadratic_objective: bool = False  # convex quadratic objective
    nonconvex: bool = False          # bilinear constraints / nonconvex objective
    global_optimum: bool = False     # a reported "optimal" is a global optimum (then certified)
    needs_box: bool = True           # needs finite bounds on every variable (a weight box B)
    level: str = "model"             # "model": solves a built Model; "problem": the TrainingProblem
    domains: tuple[str, ...] = DOMAINS            # activation domains it solves
    encodings: tuple[str, ...] | None = None      # encodings it solves (None: every registered one)
    losses: tuple[str, ...] = LOSSES              # training losses it solves
    max_binaries: int | None = None  # ``auto`` sends larger instances (activation variables) elsewhere
    max_bilinear: int | None = None  # ... and instances with more bilinear terms
    max_vars: int | None = None      # hard size limit (e.g. a size-limited licence), None: none
    max_constraints: int | None = None
    auto_classes: tuple[str, ...] | None = None   # model classes ``auto`` sends here (None: all it supports)


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
    #: keyword options this backend understands (None: any); others are recorded as ignored
    option_names: ClassVar[tuple[str, ...] | None] = None
    #: defaults of those options: the one place they are set (named or reached through ``auto``)
    option_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        known = self.option_names
        self.ignored_options = sorted(k for k in options if known is not None and k not in known)
        self.options = {**self.option_defaults, **{k: v for k, v in options.items() if k not in self.ignored_options}}
        # stopping tolerances shared by the exact backends: a bad value is the caller's error,
        # not a solver status after the model is built
        for k in ("gap", "absgap"):
            if k in self.options:
                self.options[k] = nonnegative_number(f"{self.name} option {k}", self.options[k])
        if "feastol" in self.options:
            self.options["feastol"] = positive_number(f"{self.name} option feastol", self.options["feastol"])
        self.check_options()

    def check_options(self) -> None:
        """Check the values of this backend's own options (called by ``__init__``; the shared
        tolerances are checked there already).  Backends with solver-specific options override it."""

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
        if cap.level != "model":
            return f"backend {self.name!r} solves training problems, not built models"
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

    @classmethod
    def takes(cls, problem: TrainingProblem | None, encoding: str, domain: str) -> str | None:
        """None if this backend solves ``encoding`` in ``domain`` (and ``problem``'s loss and box),
        else the one-line reason it does not (from the capability flags only)."""
        cap = cls.capabilities
        if cap.encodings is not None and encoding not in cap.encodings:
            return f"backend {cls.name!r} solves the {'/'.join(cap.encodings)} encoding only, not {encoding}"
        if domain not in cap.domains:
            return f"backend {cls.name!r} solves the {'/'.join(cap.domains)} domain only, not {domain}"
        if problem is not None:
            if problem.loss not in cap.losses:
                return f"backend {cls.name!r} does not solve the {problem.loss} loss"
            if cap.needs_box and problem.weight_bound is None:
                return f"backend {cls.name!r} needs a weight box (weight_bound=None)"
        return None

    @classmethod
    def check_resources(cls, problem: TrainingProblem, time_limit: float | None, **options: Any) -> None:
        """Raise :class:`~unrectify.formulations.errors.ResourceLimitError` (one line, with the
        estimate) when solving ``problem`` with ``options`` cannot fit this machine, before any
        work.  Model-level backends check nothing here (the built model's size and licence are
        checked by :meth:`check`); a problem-level backend estimates its own arrays."""
        return None

    @classmethod
    def fits(cls, binaries: int, bilinear: int) -> str | None:
        """None if an instance of this size is within ``auto``'s limits for this backend, else why not."""
        cap = cls.capabilities
        if cap.max_binaries is not None and binaries > cap.max_binaries:
            return f"{binaries} activation variables > {cap.max_binaries}"
        if cap.max_bilinear is not None and bilinear > cap.max_bilinear:
            return f"{bilinear} bilinear terms > {cap.max_bilinear}"
        return None

    # -- the whole chain: problem -> formulation -> backend -> certified Solution ---------
    def solve_problem(self, problem: TrainingProblem, encoding: str = "split", domain: str = "interval",
                      time_limit: float | None = 60.0, symmetry_breaking: bool | str | list[str] = False,
                      guard: bool = True) -> Solution:
        """Formulate, compile/solve/extract, certify in numpy and gate the status."""
        from unrectify.formulations.builder import build_training_model

        reason = self.takes(problem, encoding, domain)
        if reason:
            raise InputError(reason)
        t0 = time.perf_counter()
        tm = build_training_model(problem, encoding, domain, symmetry_breaking)
        raw = self.solve(tm.model, time_limit=time_limit, guard=guard)
        weights = activations = cert = None
        if raw.x is not None:
            weights, activations, cert = tm.weights(raw.x), tm.activations(raw.x), certify(tm, raw.x)
        return self.make_solution(
            raw, cert, weights=weights, activations=activations, seconds=time.perf_counter() - t0,
            encoding=tm.encoding.name, domain=domain, model_stats=tm.model.stats(),
            symmetry_breaking=list(tm.symmetry_breaking), point=raw.x)

    def make_solution(self, raw: RawResult, cert: Certificate | None, **fields: Any) -> Solution:
        """The gated :class:`Solution` of a solver answer ``raw`` and its certificate ``cert``:
        ``optimal`` only when the solver said so, this backend certifies global optima and the
        certificate agrees with the solver's objective (:func:`unrectify.formulations.certificate.gate`)."""
        agrees = cert is not None and cert.agrees_with(raw.objective)
        status, certified = gate(raw.status, self.capabilities.global_optimum, agrees)
        message = raw.message
        if raw.status == "optimal" and not certified:
            message = ((message + "; ") if message else "") + (
                "solver reported optimal but the certificate disagrees"
                + ("" if cert is None else f" (violation {cert.max_violation:.3g}, forward loss "
                   f"{cert.forward_loss:.10g} vs solver objective {raw.objective!r})"))
        extra = dict(raw.extra)
        if self.ignored_options:
            extra["ignored_options"] = list(self.ignored_options)
        return Solution(status=status, objective=raw.objective, bound=raw.bound, backend=self.name,
                        solver=raw.solver, certificate=cert, message=message, extra=extra,
                        solver_status=raw.status, solver_objective=raw.objective, solver_bound=raw.bound,
                        certified=certified, global_solver=self.capabilities.global_optimum, **fields)

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
        if not guard or time_limit is None:
            self.check(model)
            self.preload()
            return self._solve_inline(model, time_limit)
        res = self.start(model, time_limit, t0).result()
        res.seconds = time.perf_counter() - t0
        return res

    def start(self, model: Model, time_limit: float, t0: float | None = None) -> GuardedSolve:
        """Start a guarded solve of ``model`` and return at once (:class:`GuardedSolve`); many can
        run side by side.  Call from one thread only: forking while other threads of this process
        allocate memory corrupts the child's heap (glibc aborts it)."""
        t0 = time.perf_counter() if t0 is None else t0
        time_limit = positive_number("time_limit", time_limit)
        self.check(model)
        self.preload()
        left = max(time_limit - (time.perf_counter() - t0), MIN_SOLVE_SECONDS)
        return GuardedSolve(self._solve_inline, model, left, self.solver or self.name, time_limit)


#: the least time a guarded solve is given, even when loading the solver used up the limit
MIN_SOLVE_SECONDS = 0.5
#: the guard never waits more than this past the limit (time limits are honoured within 10 s)
MAX_GRACE_SECONDS = 8.0


#: the longest single wait of the guard for its child (a huge time limit is waited out in chunks)
POLL_CHUNK_S = 1e6


def grace_seconds(time_limit: float) -> float:
    """Seconds the guard waits past ``time_limit`` for the solver to stop by itself."""
    return min(1.0 + 0.1 * time_limit, MAX_GRACE_SECONDS)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this solver process if its parent dies (Ctrl-C, kill)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


#: characters of a dead solver process's own output quoted in its error message
LOG_TAIL = 300


def _child(fn, model, time_limit, conn, log_fd: int | None = None) -> None:
    _die_with_parent()
    if log_fd is not None:
        # the solver libraries' own prints (SoPlex notices, glibc abort lines) go to the guard's
        # log, not the user's terminal; the parent quotes its tail if the process dies
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
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


class GuardedSolve:
    """A solve running in a forked child process, killed ``grace`` seconds after its limit.

    ``connection`` becomes readable when the child is done (``multiprocessing.connection.wait``
    on many of them); :meth:`result` collects the :class:`RawResult` (waiting at most until the
    guard's deadline) and reaps the child.  The child's stdout and stderr (file descriptors 1
    and 2, where solver libraries print) go to an anonymous temporary file; when the child dies
    without a result, the tail of that output is quoted in the error message."""

    def __init__(self, fn, model: Model, time_limit: float, solver: str, stated_limit: float | None = None) -> None:
        ctx = mp.get_context("fork")
        self.connection, child = ctx.Pipe(duplex=False)
        self.t0 = time.perf_counter()
        self.solver, self.time_limit = solver, time_limit
        self.stated_limit = time_limit if stated_limit is None else stated_limit
        self.deadline = time_limit + grace_seconds(time_limit)      # seconds after t0
        self.log = tempfile.TemporaryFile()
        self.proc = ctx.Process(target=_child, args=(fn, model, time_limit, child, self.log.fileno()), daemon=True)
        self.proc.start()
        child.close()
        self._result: RawResult | None = None

    def result(self) -> RawResult:
        if self._result is None:
            self._result = self._collect()
        return self._result

    def _collect(self) -> RawResult:
        msg = None
        try:
            while True:   # in chunks: poll's timeout overflows beyond about 1e9 s
                remaining = self.deadline - (time.perf_counter() - self.t0)
                if self.connection.poll(min(max(0.0, remaining), POLL_CHUNK_S)):
                    msg = self.connection.recv()
                    break
                if remaining <= POLL_CHUNK_S:
                    break
        except (EOFError, OSError):
            msg = None
        finally:
            if self.proc.is_alive():
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.join()
            self.connection.close()
        elapsed = time.perf_counter() - self.t0
        said = self._log_tail()      # read (and closed) in every case
        if msg is None:
            if elapsed >= self.deadline:
                return RawResult("time_limit", None, None, None, self.solver, elapsed,
                                 f"wall-clock guard stopped the solver after {elapsed:.1f}s "
                                 f"(limit {self.stated_limit:g}s)")
            return RawResult("error", None, None, None, self.solver, elapsed,
                             f"solver process died (exit code {self.proc.exitcode})" + (f": {said}" if said else ""))
        if msg[0] == "raise":
            raise msg[1]
        if msg[0] == "error":
            return RawResult("error", None, None, None, self.solver, elapsed, msg[1], {"traceback": msg[2]})
        res = msg[1]
        res.seconds = elapsed
        return res

    def _log_tail(self) -> str:
        """The last :data:`LOG_TAIL` characters of the child's output, on one line (closes the log)."""
        try:
            self.log.seek(0, os.SEEK_END)
            self.log.seek(max(0, self.log.tell() - LOG_TAIL))
            text = self.log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            text = ""
        finally:
            self.log.close()
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

    def cancel(self) -> None:
        """Kill the child now (if still running) and reap it."""
        if self._result is None:
            if self.proc.is_alive():
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.join()
            self.connection.close()
            self.log.close()
            self._result = RawResult("error", None, None, None, self.solver, time.perf_counter() - self.t0,
                                     "cancelled")
