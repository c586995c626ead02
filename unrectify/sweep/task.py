"""What runs on a worker: one task (generate the instance, solve, certify) into a JSON-safe
record, and the per-worker set-up."""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from collections.abc import Sequence

from unrectify.formulations.errors import UnrectifyError

from .errors import TaskInterrupted
from .grid import Task
from .store import RECORD_FORMAT


def _clean(x):
    """JSON-safe copy (numpy values converted, non-finite floats as None): the package's one converter."""
    from unrectify.atomic import jsonable

    return jsonable(x)


def run_task(params: dict) -> dict:
    """Run one task (a dict from :meth:`Task.params`) and return its results-file record.

    A deterministic failure (bad combination, licence limit: an :class:`UnrectifyError`) is a
    result with status ``error``; anything else propagates, is not written and is retried by a
    rerun.  A solve stopped by Ctrl-C raises :class:`TaskInterrupted` (never written).
    """
    from unrectify.formulations import random_instance

    from ..api import solve

    task = Task.from_params(params)
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


def worker_info() -> dict:
    """Run on every worker of an existing cluster: can it start the solver's guard process?"""
    import multiprocessing as mp
    return {"daemon": bool(mp.current_process().daemon), "host": socket.gethostname(), "pid": os.getpid()}


def prepare_worker(ignore_sigint: bool, backends: Sequence[str] = ()) -> bool:
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
