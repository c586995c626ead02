"""Run a sweep: submit every pending task, write each record as it arrives, stop cleanly on
Ctrl-C, at the overall time limit, or when the scheduler goes away."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from . import cluster as _cluster
from . import task as _task
from .errors import SchedulerLostError, SweepError, SweepInterrupted
from .grid import expand
from .progress import Progress
from .report import SweepSummary, summarize
from .spec import SweepSpec, load_sweep_spec
from .store import ResultsFile

#: how often the client looks at the clock and the scheduler while no task finishes (seconds)
POLL_SECONDS = 0.2
KEY_PREFIX = "unrectify-sweep-"


class StopRequest:
    """While active (main thread only), SIGINT and SIGTERM set ``signum`` instead of raising
    wherever the client happens to be (a ``KeyboardInterrupt`` inside Dask's client code can
    be swallowed there); the run loop checks the flag between results.  A second Ctrl-C
    raises ``KeyboardInterrupt`` at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._old[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run_sweep(spec: SweepSpec | str | os.PathLike, results_path: str | os.PathLike,
              scheduler: str | None = None, n_workers: int | None = None, progress: bool = True,
              on_result: Callable[[dict], None] | None = None) -> SweepSummary:
    """Run every task of ``spec`` not yet in ``results_path`` on Dask and return the summary.

    ``scheduler=None`` starts a local cluster of ``n_workers`` single-threaded worker processes
    (default: the number of usable CPUs, at most the number of pending tasks); an address such
    as ``"tcp://host:8786"`` uses an existing cluster (``n_workers`` ignored).  Each finished
    task is appended to the results file at once, then ``on_result(record)`` is called.

    Stops early, after closing the cluster and with every finished result written:

    * Ctrl-C or SIGTERM: raises :class:`SweepInterrupted` (a ``KeyboardInterrupt``) with the
      summary and the signal number; tasks in flight are not written (a rerun runs them);
    * the spec's ``total_time_limit``: returns the summary with ``timed_out`` set (tasks in
      flight are cancelled and not written; a rerun runs them);
    * the scheduler goes away: raises :class:`SchedulerLostError` (one line) with the summary.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep_spec(spec)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise SweepError(f"number of workers must be a positive integer, got {n_workers!r}")
    t0 = time.perf_counter()
    deadline = None if spec.total_time_limit is None else t0 + spec.total_time_limit
    tasks = expand(spec)
    by_key = {t.key: t for t in tasks}
    failures: list[str] = []
    interrupted = timed_out = False
    signum: int | None = None
    lost: str | None = None
    n_ran = 0
    startup = 0.0
    client = cluster = None
    workers = None
    with ResultsFile(results_path) as rf, StopRequest() as stop:
        done_before = {k for k in by_key if k in rf.records}
        pending = [t for t in tasks if t.key not in done_before]
        bar = Progress(len(tasks), len(done_before), progress and bool(pending))
        try:
            if pending:
                workers = None if scheduler else min(n_workers or _cluster.default_workers(), len(pending))
                client, cluster = _cluster.connect(scheduler, workers or 1, _cluster.solver_backends(pending))
                startup = time.perf_counter() - t0
                from dask.distributed import as_completed

                # looked up at call time, so a patched run_task (tests, in-process clusters) is used
                futures = [client.submit(_task.run_task, t.params(), key=KEY_PREFIX + t.key, pure=False, retries=0)
                           for t in pending]
                queue = as_completed(futures)
                while not queue.is_empty():
                    if stop.signum is not None:
                        break
                    if deadline is not None and time.perf_counter() >= deadline:
                        timed_out = True
                        break
                    batch = queue.next_batch(block=False)
                    if not batch:
                        if not _cluster.scheduler_alive(client):
                            lost = client.status
                            break
                        time.sleep(POLL_SECONDS)
                        continue
                    for fut in batch:
                        t = by_key[fut.key.removeprefix(KEY_PREFIX)]
                        rec = None
                        if fut.status == "finished":
                            try:
                                rec = fut.result()
                            except Exception as exc:   # e.g. the scheduler went away while gathering
                                why = _cluster.one_line(exc)
                        elif fut.status == "error":
                            why = _cluster.one_line(fut.exception())
                        else:
                            why = fut.status
                        fut.release()
                        if rec is not None:
                            if rf.append(rec):
                                n_ran += 1
                            bar.done(rec)
                            if on_result is not None:
                                on_result(rec)
                        elif not _cluster.scheduler_alive(client):
                            lost = client.status   # every future is cancelled when the scheduler is lost
                            break
                        else:
                            failures.append(f"{t.label()}: {why}")
                            bar.failed()
                    if lost:
                        break
        except KeyboardInterrupt:
            signum = signal.SIGINT
        finally:
            bar.close()
            _cluster.close(client, cluster)
        records = rf.records
    signum = signum or stop.signum
    interrupted = signum is not None
    summary = SweepSummary(
        results_path=str(results_path), n_tasks=len(tasks), n_done=sum(k in records for k in by_key),
        n_skipped=len(done_before), n_ran=n_ran, n_failed=len(failures), wall_seconds=time.perf_counter() - t0,
        rows=summarize(tasks, records), failures=failures, interrupted=interrupted, workers=workers,
        scheduler=scheduler, timed_out=timed_out, startup_seconds=startup)
    if interrupted:
        raise SweepInterrupted(summary, signum)
    if lost:
        raise SchedulerLostError(f"lost the Dask scheduler at {scheduler or 'the local cluster'} (client {lost}); "
                                 f"{summary.n_done}/{summary.n_tasks} results are in {results_path}; "
                                 f"run again to resume", summary)
    return summary
