"""Dask connection: start a local cluster of non-daemonic single-threaded workers, or join an
existing scheduler after checking its workers; close either without hiding an interrupt.

The solver's wall-clock guard forks a child process.  Dask's nanny starts worker processes as
*daemonic* by default, and daemonic processes may not have children, so the local cluster is
started with the Dask config ``distributed.worker.daemon: False``; workers of an existing
cluster must be started the same way (``DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker ...``),
which :func:`connect` checks before anything is submitted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from unrectify.formulations.errors import SolverUnavailableError

from .errors import SweepError
from .grid import Task
from .task import prepare_worker, worker_info

#: how long to try to reach an existing scheduler
CONNECT_TIMEOUT = "10s"


def default_workers() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return max(os.cpu_count() or 1, 1)


def one_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0]}" if s else type(exc).__name__


def solver_backends(tasks: Sequence[Task]) -> list[str]:
    """The backends the tasks will use (``auto`` resolved on a 2-sample instance; best effort)."""
    from unrectify.formulations import build_training_model, random_instance

    from ..routing import choose_backend

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


def connect(scheduler: str | None, n_workers: int, backends: Sequence[str] = ()):
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
            raise SweepError(f"cannot connect to the Dask scheduler at {scheduler} ({one_line(exc)})") from None
        try:
            info = client.run(worker_info)
        except Exception as exc:
            close(client, None)
            raise SweepError(f"cannot query the workers of {scheduler} ({one_line(exc)})") from None
        daemonic = [a for a, i in info.items() if i["daemon"]]
        if daemonic:
            close(client, None)
            raise SweepError(f"{len(daemonic)} worker(s) of {scheduler} are daemonic processes, which cannot start the "
                             f"solver's guard process; start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")
        if not info:
            print(f"sweep: the scheduler at {scheduler} has no workers yet; tasks wait for workers to join",
                  file=sys.stderr)
        try:
            client.run(prepare_worker, False, list(backends))
        except Exception:
            pass
        return client, None
    # worker processes under a nanny, *not daemonic*: the solve guard forks a child process.
    # The setting stays on until close(): a nanny that restarts a dead worker reads it again.
    config = dask.config.set({"distributed.worker.daemon": False})
    try:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    except BaseException:
        config.__exit__(None, None, None)
        raise
    cluster._unrectify_config = config
    client = Client(cluster)
    try:
        client.run(prepare_worker, True, list(backends))
    except Exception:
        pass
    return client, cluster


def scheduler_alive(client) -> bool:
    """False once the client has lost its scheduler (it then tries to reconnect for a while)."""
    return getattr(client, "status", "running") in ("running", "newly-created")


def close(client, cluster) -> None:
    """Close the client and (if we started it) the local cluster.  Dask's own log lines are
    held back meanwhile: a client that lost its scheduler logs the traceback of its cancelled
    reconnect attempt when it is closed, and the sweep has already said what happened."""
    import logging

    loggers = [logging.getLogger(n) for n in ("distributed", "distributed.utils", "distributed.client",
                                              "distributed.comm", "distributed.core")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL + 1)
    try:
        for obj in (client, cluster):
            if obj is None:
                continue
            try:
                obj.close(timeout=10) if obj is client else obj.close(timeout=20)
            except BaseException:   # closing after Ctrl-C must not hide the interrupt
                pass
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
    config = getattr(cluster, "_unrectify_config", None)
    if config is not None:
        config.__exit__(None, None, None)
