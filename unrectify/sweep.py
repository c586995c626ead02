"""Parameter sweeps of ``unrectify.solve`` on a Dask cluster, resumable from a JSON-lines file.

A sweep is a grid written in TOML (``docs/sweeps.md``)::

    seeds = [0, 1, 2]
    samples = [4, 6]
    widths = ["1,2,1"]
    encodings = ["split", "bigm"]
    domains = ["binary", "interval"]
    backends = ["auto"]
    loss = "mse"
    weight_bound = 2.0
    symmetry_breaking = "all"
    time_limit = 10

Every grid point is one :class:`Task`: generate ``random_instance(samples, widths, seed, loss,
weight_bound)`` and solve it with one encoding, domain and backend under a wall-clock limit.
Each task has a stable ``key`` (a hash of its parameters), so a rerun skips every task whose key
is already in the results file.  Results are appended one JSON object per line as each task
finishes (whole lines, flushed and fsynced), so an interrupt or a crash loses no finished
result; a truncated final line (power loss) is ignored on load and repaired before appending.

The solver's wall-clock guard forks a child process.  Dask's nanny starts worker processes as
*daemonic* by default, and daemonic processes may not have children, so the local cluster is
started with the Dask config ``distributed.worker.daemon: False``; workers of an existing
cluster must be started the same way (``DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker ...``),
which :func:`run_sweep` checks before submitting anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import socket
import statistics
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unrectify.formulations.errors import InputError, SolverUnavailableError, SweepError, UnknownNameError, UnrectifyError
from unrectify.formulations.status import STATUSES

#: version tag hashed into every task key; change it when a task's meaning changes
TASK_KIND = "solve-random-instance/1"
RECORD_FORMAT = "unrectify-sweep/1"
#: how long to try to reach an existing scheduler
CONNECT_TIMEOUT = "10s"
STATUS_ORDER = STATUSES   # the one status vocabulary (unrectify.formulations.status)
#: grid keys (lists, or one value) and scalar keys of a spec file
GRID_KEYS = ("seeds", "samples", "widths", "encodings", "domains", "backends", "loss", "weight_bound",
             "symmetry_breaking")
SCALAR_KEYS = ("time_limit", "name", "description")
DEFAULTS: dict[str, Any] = {
    "seeds": [0], "samples": [8], "widths": ["1,2,1"], "domains": ["binary", "interval"], "backends": ["auto"],
    "loss": ["mse"], "weight_bound": [2.0], "symmetry_breaking": ["all"], "time_limit": 60.0,
}
REQUIRED = ("encodings",)
#: largest task accepted: samples x (sum of all widths) (a typo such as "1,20000000,1" must not
#: take a worker's memory)
MAX_TASK_SIZE = 10 ** 7


class SweepInterrupted(KeyboardInterrupt):
    """Raised by :func:`run_sweep` on Ctrl-C after the results file is closed; ``.summary``
    holds the :class:`SweepSummary` of what is in the file."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__("sweep interrupted")
        self.summary = summary


class TaskInterrupted(RuntimeError):
    """A solve stopped by Ctrl-C inside a worker: not a result, never written."""


# ---------------------------------------------------------------------------------------------
# spec and tasks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One grid point: an instance (seed, samples, widths, loss, weight bound) and a solve
    (encoding, domain, backend, symmetry breaking, time limit)."""

    seed: int
    samples: int
    widths: tuple[int, ...]
    encoding: str
    domain: str
    backend: str
    loss: str
    weight_bound: float
    symmetry_breaking: str
    time_limit: float

    def params(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @property
    def key(self) -> str:
        """Stable across runs, machines and Python versions: sha256 of the canonical JSON of
        the parameters and :data:`TASK_KIND`, 16 hex digits."""
        blob = json.dumps({"kind": TASK_KIND, **self.params()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def label(self) -> str:
        w = ",".join(map(str, self.widths))
        return f"{self.encoding}/{self.domain}/{self.backend} seed={self.seed} N={self.samples} w={w}"


@dataclass
class SweepSpec:
    """A validated sweep grid (see :func:`load_sweep_spec`)."""

    encodings: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    samples: list[int] = field(default_factory=lambda: [8])
    widths: list[tuple[int, ...]] = field(default_factory=lambda: [(1, 2, 1)])
    domains: list[str] = field(default_factory=lambda: ["binary", "interval"])
    backends: list[str] = field(default_factory=lambda: ["auto"])
    loss: list[str] = field(default_factory=lambda: ["mse"])
    weight_bound: list[float] = field(default_factory=lambda: [2.0])
    symmetry_breaking: list[str] = field(default_factory=lambda: ["all"])
    time_limit: float = 60.0
    name: str = "sweep"
    description: str = ""
    path: str | None = None

    def skipped_forms(self) -> list[tuple[str, str]]:
        """(encoding, domain) pairs of the grid that the encoding does not have (left out)."""
        from unrectify.formulations import get_encoding
        return [(e, d) for e in self.encodings for d in self.domains if d not in get_encoding(e).domains]

    def skipped(self) -> list[str]:
        """Every combination of the grid that :func:`expand` leaves out, with the reason."""
        out = [f"{e}/{d} (not a form of {e})" for e, d in self.skipped_forms()]
        out += [f"{b} for {e}/{d} ({_backend_skips(b, e, d)})" for b in self.backends for e, d in _forms(self)
                if not _backend_takes(b, e, d)]
        return out


def _forms(spec: SweepSpec) -> list[tuple[str, str]]:
    from unrectify.formulations import get_encoding
    return [(e, d) for e in spec.encodings for d in spec.domains if d in get_encoding(e).domains]


def _backend_skips(backend: str, encoding: str, domain: str) -> str | None:
    """Why ``backend`` does not take ``encoding``/``domain`` (its capability flags), None if it does."""
    if backend == "auto":
        return None
    from unrectify.backends import backend_class
    return backend_class(backend).takes(None, encoding, domain)


def _backend_takes(backend: str, encoding: str, domain: str) -> bool:
    """Structural limits of a backend (e.g. the ALM solver: relaxed split form only)."""
    return _backend_skips(backend, encoding, domain) is None


def _where(path: str | None) -> str:
    return f" in {path}" if path else ""


def _as_list(key: str, value, where: str) -> list:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise SweepError(f"sweep key {key!r} is an empty list{where}")
    return items


def _int(key: str, v, where: str, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SweepError(f"sweep key {key!r}: expected an integer, got {v!r}{where}")
    if minimum is not None and v < minimum:
        raise SweepError(f"sweep key {key!r}: expected an integer >= {minimum}, got {v!r}{where}")
    return v


def _positive_float(key: str, v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SweepError(f"sweep key {key!r}: expected a positive number, got {v!r}{where}")
    f = float(v)
    if not math.isfinite(f) or f <= 0:
        raise SweepError(f"sweep key {key!r}: expected a positive finite number, got {v!r}{where}")
    return f


def _widths(v, where: str) -> tuple[int, ...]:
    """``"1,2,1"`` or ``[1, 2, 1]`` through the package's one widths parser."""
    from unrectify.formulations.validation import parse_widths

    if not isinstance(v, (str, list)) or (isinstance(v, list) and not all(
            isinstance(t, int) and not isinstance(t, bool) for t in v)):
        raise SweepError(f"sweep key 'widths': expected \"1,2,1\" or [1, 2, 1], got {v!r}{where}")
    try:
        return parse_widths(v, name="sweep key 'widths'")
    except InputError as exc:
        raise SweepError(f"{exc}{where}") from None


def _names(key: str, values: list, known: Sequence[str], where: str) -> list[str]:
    out = []
    for v in values:
        if not isinstance(v, str):
            raise SweepError(f"sweep key {key!r}: expected a name, got {v!r}{where}")
        if v not in known:
            raise UnknownNameError(f"sweep key {key!r}: unknown name {v!r}; choose from {', '.join(known)}{where}")
        out.append(v)
    return out


def _unique(items: Iterable) -> list:
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def spec_from_dict(data: dict, path: str | None = None) -> SweepSpec:
    """Validate a parsed spec (the TOML document as a dict); errors name the key and value."""
    from unrectify.backends import backend_names, get_backend
    from unrectify.formulations import DOMAINS, LOSSES, available_encodings
    from unrectify.formulations.builder import symmetry_kinds

    where = _where(path)
    if not isinstance(data, dict):
        raise SweepError(f"a sweep spec is a table of keys{where}")
    known = GRID_KEYS + SCALAR_KEYS
    for k in data:
        if k not in known:
            raise SweepError(f"unknown sweep key {k!r}{where}; known keys: {', '.join(known)}")
    for k in REQUIRED:
        if k not in data:
            raise SweepError(f"sweep key {k!r} is missing{where}")
    raw = {**DEFAULTS, **data}
    kw: dict[str, Any] = {}
    kw["seeds"] = _unique(_int("seeds", v, where, 0) for v in _as_list("seeds", raw["seeds"], where))
    kw["samples"] = _unique(_int("samples", v, where, 1) for v in _as_list("samples", raw["samples"], where))
    w = raw["widths"]
    # one width list given as [1, 2, 1] (not a list of lists): one grid value
    if isinstance(w, list) and w and all(isinstance(t, int) for t in w):
        w = [w]
    kw["widths"] = _unique(_widths(v, where) for v in _as_list("widths", w, where))
    kw["encodings"] = _unique(_names("encodings", _as_list("encodings", raw["encodings"], where),
                                     available_encodings(), where))
    kw["domains"] = _unique(_names("domains", _as_list("domains", raw["domains"], where), DOMAINS, where))
    kw["backends"] = _unique(_names("backends", _as_list("backends", raw["backends"], where),
                                    ["auto", *backend_names()], where))
    for b in kw["backends"]:
        if b != "auto":
            get_backend(b).require()   # SolverUnavailableError (one line) if its package is missing
    kw["loss"] = _unique(_names("loss", _as_list("loss", raw["loss"], where), LOSSES, where))
    kw["weight_bound"] = _unique(_positive_float("weight_bound", v, where)
                                 for v in _as_list("weight_bound", raw["weight_bound"], where))
    sym = []
    for v in _as_list("symmetry_breaking", raw["symmetry_breaking"], where):
        if isinstance(v, bool):
            v = "permutation" if v else "none"
        if not isinstance(v, str):
            raise SweepError(f"sweep key 'symmetry_breaking': expected a name, got {v!r}{where}")
        try:
            kinds = symmetry_kinds(v)
        except UnknownNameError as exc:
            raise UnknownNameError(f"sweep key 'symmetry_breaking': {exc}{where}") from None
        sym.append(",".join(kinds) or "none")   # canonical, so "all" and "permutation,scaling" agree
    kw["symmetry_breaking"] = _unique(sym)
    kw["time_limit"] = _positive_float("time_limit", raw["time_limit"], where)
    size = max(kw["samples"]) * max(sum(w) for w in kw["widths"])
    if size > MAX_TASK_SIZE:
        raise SweepError(f"sweep tasks too large: samples x sum(widths) = {size:.3g} exceeds {MAX_TASK_SIZE:.0e} "
                         f"(samples up to {max(kw['samples'])}){where}")
    for k in ("name", "description"):
        if k in data:
            if not isinstance(data[k], str):
                raise SweepError(f"sweep key {k!r}: expected a string, got {data[k]!r}{where}")
            kw[k] = data[k]
    if "name" not in kw and path:
        kw["name"] = Path(path).stem
    spec = SweepSpec(path=path, **kw)
    if not expand(spec):
        raise SweepError(f"the sweep grid is empty: left out {', '.join(spec.skipped())}{where}")
    _check_capabilities(spec, where)
    return spec


def _check_capabilities(spec: SweepSpec, where: str) -> None:
    """Before anything runs: every instance kind passes the problem's validation, and an
    explicit exact backend handles every model class of the grid (built on a 2-sample instance;
    the class does not depend on the sample count or the widths, only on the depth)."""
    from unrectify.backends import get_backend
    from unrectify.formulations import build_training_model, random_instance
    from unrectify.formulations import random_instance as instance

    for widths in spec.widths:           # the problem's own validation, once per instance kind
        for loss in spec.loss:
            for B in spec.weight_bound:
                instance(2, widths, 0, loss, B)
    from unrectify.backends import backend_class
    exact = [b for b in spec.backends if b != "auto" and backend_class(b).capabilities.level == "model"]
    if not exact:
        return
    for widths in spec.widths:
        for loss in spec.loss:
            # the model class depends on the depth, not on the widths
            problem = random_instance(2, tuple(min(w, 2) for w in widths), 0, loss, 1.0)
            for sym in spec.symmetry_breaking:
                for e, d in _forms(spec):
                    model = build_training_model(problem, e, d, sym).model
                    for b in exact:
                        reason = get_backend(b).supports(model)
                        if reason:
                            raise SweepError(f"sweep key 'backends': {reason} ({e}/{d}, loss {loss}); "
                                             f"leave it out of this grid{where}")


def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a TOML sweep spec; every error is one line naming the key and value."""
    path = str(path)
    if not os.path.exists(path):
        raise SweepError(f"sweep spec not found: {path}")
    if os.path.isdir(path):
        raise SweepError(f"sweep spec is a directory: {path}")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"cannot parse {path} as TOML: {str(exc).splitlines()[0]}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise SweepError(f"cannot read {path} as TOML ({type(exc).__name__})") from None
    return spec_from_dict(data, path)


def expand(spec: SweepSpec) -> list[Task]:
    """All tasks of the grid, in a fixed order (instance parameters outermost); combinations
    that cannot run are left out (:meth:`SweepSpec.skipped`: an (encoding, domain) pair the
    encoding does not have; the ALM backend with anything but split/interval)."""
    tasks: list[Task] = []
    forms = _forms(spec)
    for widths in spec.widths:
        for samples in spec.samples:
            for loss in spec.loss:
                for B in spec.weight_bound:
                    for seed in spec.seeds:
                        for sym in spec.symmetry_breaking:
                            for e, d in forms:
                                for b in spec.backends:
                                    if not _backend_takes(b, e, d):
                                        continue
                                    tasks.append(Task(seed, samples, tuple(widths), e, d, b, loss, float(B), sym,
                                                      float(spec.time_limit)))
    return _unique(tasks)


# ---------------------------------------------------------------------------------------------
# the task (runs on a worker)
# ---------------------------------------------------------------------------------------------
def _clean(x):
    """JSON-safe copy (numpy values converted, non-finite floats as None): :func:`unrectify.atomic.jsonable`."""
    from .atomic import jsonable

    return jsonable(x)


def run_task(params: dict) -> dict:
    """Run one task (a dict from :meth:`Task.params`) and return its results-file record.

    A deterministic failure (bad combination, licence limit: an :class:`UnrectifyError`) is a
    result with status ``error``; anything else propagates, is not written and is retried by a
    rerun.  A solve stopped by Ctrl-C raises :class:`TaskInterrupted` (never written).
    """
    from unrectify.formulations import random_instance

    from .api import solve

    task = Task(**{**params, "widths": tuple(params["widths"])})
    t0 = time.perf_counter()
    try:
        problem = random_instance(task.samples, task.widths, task.seed, task.loss, task.weight_bound)
        sol = solve(problem, task.encoding, task.domain, backend=task.backend, time_limit=task.time_limit,
                    symmetry_breaking=task.symmetry_breaking)
        result = sol.summary()
        result.update(certified_optimal=sol.certified_optimal, route=sol.extra.get("route"), stats=sol.model_stats)
    except UnrectifyError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        result = {"status": "error", "message": msg, "error_type": type(exc).__name__,
                  "seconds": time.perf_counter() - t0, "certified_optimal": False}
    msg = str(result.get("message") or "")
    if "KeyboardInterrupt" in msg or "userinterrupt" in msg.lower():
        raise TaskInterrupted(f"{task.label()}: {msg}")
    return _clean({
        "format": RECORD_FORMAT, "key": task.key, "task": task.params(), "result": result,
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


def _worker_info() -> dict:
    import multiprocessing as mp
    return {"daemon": bool(mp.current_process().daemon), "host": socket.gethostname(), "pid": os.getpid()}


def _solver_backends(tasks: Sequence[Task]) -> list[str]:
    """The backends the tasks will use (``auto`` resolved on a 2-sample instance; best effort)."""
    from unrectify.formulations import build_training_model, random_instance

    from .routing import choose_backend

    names: list[str] = []
    forms = {(t.widths, t.encoding, t.domain, t.backend, t.loss, t.symmetry_breaking) for t in tasks}
    for widths, enc, dom, backend, loss, sym in sorted(forms):
        name = backend
        if backend == "auto":
            try:
                problem = random_instance(2, tuple(min(w, 2) for w in widths), 0, loss, 1.0)
                name = choose_backend(build_training_model(problem, enc, dom, sym).model)[0]
            except Exception:
                continue
        if name not in names:
            names.append(name)
    return names


def _prepare_worker(ignore_sigint: bool, backends: Sequence[str] = ()) -> bool:
    """Run on every worker (in its main thread) before tasks start.

    Imports the solver modules once, so a worker's first task does not count their import in
    its solve seconds.  On a local cluster, also ignores SIGINT: Ctrl-C in a terminal reaches
    the whole process group, and only the client process should act on it (it closes the
    cluster; a solve in flight stops, and is never written)."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from unrectify.backends import get_backend
    for name in backends:
        try:
            get_backend(name).preload()
        except Exception:   # a broken optional solver shows up in its own tasks
            pass
    return True


# ---------------------------------------------------------------------------------------------
# results file
# ---------------------------------------------------------------------------------------------
def load_results(path: str | os.PathLike) -> dict[str, dict]:
    """Records of a results file by task key (the first record of a key wins).  A final line
    without its newline (a write cut short) is ignored; any other unreadable line is an error."""
    path = str(path)
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as fh:
        data = fh.read()
    return _parse_results(data, path)[0]


def _parse_results(data: bytes, path: str) -> tuple[dict[str, dict], int]:
    """(records by key, length of the valid prefix in bytes)."""
    out: dict[str, dict] = {}
    pos = 0
    lineno = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        lineno += 1
        if end < 0:          # truncated final line: ignored, and cut off before appending
            break
        line = data[pos:end].strip()
        pos = end + 1
        if not line:
            continue
        try:
            rec = json.loads(line)
            key = rec["key"]
            if not isinstance(key, str) or not isinstance(rec.get("result"), dict):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SweepError(f"results file {path} line {lineno} is not a sweep record; "
                             f"use another --results file or remove that line") from None
        out.setdefault(key, rec)
    return out, pos


class ResultsFile:
    """The append-only JSON-lines results file, locked against a second concurrent sweep."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        d = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(d):
            raise SweepError(f"results directory does not exist: {d}")
        if os.path.isdir(self.path):
            raise SweepError(f"results path is a directory: {self.path}")
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise SweepError(f"cannot open results file {self.path} ({exc.strerror})") from None
        try:
            self._lock()
            data = b""
            while chunk := os.read(self.fd, 1 << 20):
                data += chunk
            self.records, valid = _parse_results(data, self.path)
            if valid < len(data):       # a truncated last line: drop it so appends stay whole lines
                os.ftruncate(self.fd, valid)
                os.fsync(self.fd)
            self.repaired = len(data) - valid
        except BaseException:
            os.close(self.fd)
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:   # not POSIX: no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepError(f"results file {self.path} is in use by another sweep") from None

    def append(self, record: dict) -> None:
        """Write one whole line, then flush it to disk; Ctrl-C is held off while writing."""
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        masked = hasattr(signal, "pthread_sigmask")
        if masked:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            view = memoryview(line)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            os.fsync(self.fd)
        finally:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.records.setdefault(record["key"], record)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)   # releases the lock
            self.fd = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    """Outcome of a sweep over the whole grid (this run and earlier ones)."""

    results_path: str
    n_tasks: int
    n_done: int                     # grid tasks with a record in the results file
    n_skipped: int                  # already done before this run
    n_ran: int                      # written by this run
    n_failed: int                   # raised on a worker, not written (retried by a rerun)
    wall_seconds: float
    rows: list[dict]                # per (encoding, domain, backend)
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    workers: int | None = None
    scheduler: str | None = None

    @property
    def complete(self) -> bool:
        return self.n_done == self.n_tasks

    def to_dict(self) -> dict:
        return asdict(self) | {"complete": self.complete}

    def table(self) -> str:
        statuses = [s for s in STATUS_ORDER if any(r["status"].get(s) for r in self.rows)]
        statuses += sorted({s for r in self.rows for s in r["status"]} - set(statuses))
        head = ("encoding", "domain", "backend", "tasks", "done", *statuses, "median_s", "certified")
        rows = [head]
        for r in self.rows:
            cert = "-" if not r["done"] else f"{r['certified']}/{r['done']} ({r['certified'] / r['done']:.0%})"
            med = "-" if r["median_seconds"] is None else f"{r['median_seconds']:.2f}"
            rows.append((r["encoding"], r["domain"], r["backend"], str(r["tasks"]), str(r["done"]),
                         *(str(r["status"].get(s, 0)) for s in statuses), med, cert))
        w = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(wi) for c, wi in zip(row, w)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * wi for wi in w))
        state = "complete" if self.complete else ("interrupted" if self.interrupted else "incomplete")
        lines.append("")
        lines.append(f"{self.n_done}/{self.n_tasks} tasks done ({state}); this run: {self.n_ran} ran, "
                     f"{self.n_skipped} already in {self.results_path}, {self.n_failed} failed; "
                     f"{self.wall_seconds:.1f} s wall")
        for f in self.failures[:5]:
            lines.append(f"  failed: {f}")
        if len(self.failures) > 5:
            lines.append(f"  ... {len(self.failures) - 5} more failures")
        return "\n".join(lines)


def summarize(tasks: Sequence[Task], records: dict[str, dict]) -> list[dict]:
    """Per (encoding, domain, backend): tasks, done, counts by status, median solve seconds,
    number certified optimal (``Solution.certified_optimal``)."""
    groups: dict[tuple[str, str, str], dict] = {}
    for t in tasks:
        g = groups.setdefault((t.encoding, t.domain, t.backend),
                              {"encoding": t.encoding, "domain": t.domain, "backend": t.backend, "tasks": 0,
                               "done": 0, "status": Counter(), "certified": 0, "_secs": []})
        g["tasks"] += 1
        rec = records.get(t.key)
        if rec is None:
            continue
        res = rec["result"]
        g["done"] += 1
        g["status"][str(res.get("status"))] += 1
        g["certified"] += bool(res.get("certified_optimal"))
        if isinstance(res.get("seconds"), (int, float)):
            g["_secs"].append(float(res["seconds"]))
    rows = []
    for g in groups.values():
        secs = g.pop("_secs")
        g["median_seconds"] = statistics.median(secs) if secs else None
        g["status"] = dict(g["status"])
        rows.append(g)
    return rows


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def default_workers() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return max(os.cpu_count() or 1, 1)


def _one_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0]}" if s else type(exc).__name__


def _connect(scheduler: str | None, n_workers: int, backends: Sequence[str] = ()):
    """(client, cluster or None); ``backends`` are preloaded on the workers."""
    import logging

    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SolverUnavailableError("sweeps need Dask: pip install 'dask[distributed]'") from None

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"cannot connect to the Dask scheduler at {scheduler} ({_one_line(exc)})") from None
        try:
            info = client.run(_worker_info)
        except Exception as exc:
            client.close()
            raise SweepError(f"cannot query the workers of {scheduler} ({_one_line(exc)})") from None
        daemonic = [a for a, i in info.items() if i["daemon"]]
        if daemonic:
            client.close()
            raise SweepError(f"{len(daemonic)} worker(s) of {scheduler} are daemonic processes, which cannot start the "
                             f"solver's guard process; start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
        if not info:
            print(f"sweep: the scheduler at {scheduler} has no workers yet; tasks wait for workers to join",
                  file=sys.stderr)
        try:
            client.run(_prepare_worker, False, list(backends))
        except Exception:
            pass
        return client, None
    # worker processes under a nanny, *not daemonic*: the solve guard forks a child process
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        client.run(_prepare_worker, True, list(backends))
    except Exception:
        pass
    return client, cluster


def _close(client, cluster) -> None:
    for obj in (client, cluster):
        if obj is None:
            continue
        try:
            obj.close(timeout=10) if obj is client else obj.close(timeout=20)
        except BaseException:   # closing after Ctrl-C must not hide the interrupt
            pass


def run_sweep(spec: SweepSpec | str | os.PathLike, results_path: str | os.PathLike,
              scheduler: str | None = None, n_workers: int | None = None, progress: bool = True) -> SweepSummary:
    """Run every task of ``spec`` not yet in ``results_path`` on Dask and return the summary.

    ``scheduler=None`` starts a local cluster of ``n_workers`` single-threaded worker processes
    (default: the number of usable CPUs, at most the number of pending tasks); an address such
    as ``"tcp://host:8786"`` uses an existing cluster (``n_workers`` ignored).  Each finished
    task is appended to the results file at once; on Ctrl-C the cluster is closed and
    :class:`SweepInterrupted` (a ``KeyboardInterrupt``) is raised with the summary.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep_spec(spec)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise SweepError(f"number of workers must be a positive integer, got {n_workers!r}")
    t0 = time.perf_counter()
    tasks = expand(spec)
    by_key = {t.key: t for t in tasks}
    failures: list[str] = []
    interrupted = False
    n_ran = 0
    client = cluster = None
    workers = None
    with ResultsFile(results_path) as rf:
        done_before = {k for k in by_key if k in rf.records}
        pending = [t for t in tasks if t.key not in done_before]
        bar = None
        try:
            if pending:
                workers = None if scheduler else min(n_workers or default_workers(), len(pending))
                client, cluster = _connect(scheduler, workers or 1, _solver_backends(pending))
                if progress:
                    from tqdm import tqdm
                    bar = tqdm(total=len(tasks), initial=len(done_before), desc="sweep", unit="task",
                               file=sys.stderr, dynamic_ncols=True)
                from dask.distributed import as_completed

                futures = [client.submit(run_task, t.params(), key=f"unrectify-sweep-{t.key}", pure=False,
                                         retries=0) for t in pending]
                for fut in as_completed(futures):
                    if fut.status != "finished":
                        exc = fut.exception() if fut.status == "error" else None
                        t = by_key[fut.key.removeprefix("unrectify-sweep-")]
                        failures.append(f"{t.label()}: {_one_line(exc) if exc else fut.status}")
                    else:
                        rec = fut.result()
                        rf.append(rec)
                        n_ran += 1
                        if bar is not None:
                            bar.set_postfix_str(f"{rec['task']['encoding']}/{rec['task']['domain']}: "
                                                f"{rec['result'].get('status')}", refresh=False)
                    fut.release()
                    if bar is not None:
                        bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if bar is not None:
                bar.close()
            _close(client, cluster)
        records = rf.records
    summary = SweepSummary(
        results_path=str(results_path), n_tasks=len(tasks), n_done=sum(k in records for k in by_key),
        n_skipped=len(done_before), n_ran=n_ran, n_failed=len(failures), wall_seconds=time.perf_counter() - t0,
        rows=summarize(tasks, records), failures=failures, interrupted=interrupted, workers=workers,
        scheduler=scheduler)
    if interrupted:
        raise SweepInterrupted(summary)
    return summary


def default_results_path(spec_path: str) -> str:
    """``<spec stem>.results.jsonl`` in the current directory."""
    return f"{Path(spec_path).stem}.results.jsonl"


def cmd_sweep(args) -> int:
    """``unrectify verify --sweep SPEC.toml [--scheduler ADDRESS] [--results PATH] [--workers N]
    [--no-progress]``: run the grid, print the summary table.  Exit 0 when the grid is
    complete, 1 when some tasks failed on a worker (a rerun retries them), 130 on Ctrl-C;
    bad input raises a one-line :class:`SweepError` (the CLI prints it and exits 2)."""
    spec_path = args.sweep
    scheduler = getattr(args, "scheduler", None)
    results = getattr(args, "results", None) or default_results_path(spec_path)
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise SweepError(f"--workers must be a positive integer, got {workers}")
    if scheduler is not None and workers is not None:
        raise SweepError("--workers applies to the local cluster only; an existing scheduler has its own workers")
    spec = load_sweep_spec(spec_path)
    tasks = expand(spec)
    skipped = spec.skipped()
    note = f"; left out {', '.join(skipped)}" if skipped else ""
    where = f"scheduler {scheduler}" if scheduler else f"local cluster ({workers or default_workers()} workers max)"
    print(f"sweep {spec.name}: {len(tasks)} tasks{note}; time limit {spec.time_limit:g} s per task; "
          f"results {results}; {where}", flush=True)
    try:
        summary = run_sweep(spec, results, scheduler=scheduler, n_workers=workers,
                            progress=not getattr(args, "no_progress", False))
    except SweepInterrupted as exc:
        print(exc.summary.table())
        print(f"interrupted: {exc.summary.n_done} finished results are in {results}; run the same command again "
              f"to resume")
        return 130
    print(summary.table())
    return 0 if summary.complete else 1


__all__ = ["ResultsFile", "SweepError", "SweepInterrupted", "SweepSpec", "SweepSummary", "Task", "cmd_sweep",
           "default_results_path", "expand", "load_results", "load_sweep_spec", "run_sweep", "run_task",
           "spec_from_dict", "summarize"]
