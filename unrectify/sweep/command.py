"""``unrectify verify --sweep``: print the plan, run, print the table, choose the exit code."""

from __future__ import annotations

from pathlib import Path

from .cluster import default_workers
from .errors import SweepError, SweepInterrupted
from .grid import expand
from .run import run_sweep
from .spec import load_sweep_spec


def default_results_path(spec_path: str) -> str:
    """``<spec stem>.results.jsonl`` in the current directory."""
    return f"{Path(spec_path).stem}.results.jsonl"


def cmd_sweep(args) -> int:
    """``unrectify verify --sweep SPEC.toml [--scheduler ADDRESS] [--results PATH] [--workers N]
    [--no-progress]``: run the grid, print the summary table.  Exit 0 when the grid is
    complete, 1 when it is not (tasks failed on a worker, or the spec's total time limit was
    reached; a rerun resumes), 130 on Ctrl-C, 143 on SIGTERM; bad input and a lost scheduler raise a one-line
    error (the CLI prints it and exits 2)."""
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
    total = "" if spec.total_time_limit is None else f", {spec.total_time_limit:g} s in all"
    print(f"sweep {spec.name}: {len(tasks)} tasks{note}; time limit {spec.time_limit:g} s per task{total}; "
          f"results {results}; {where}", flush=True)
    try:
        summary = run_sweep(spec, results, scheduler=scheduler, n_workers=workers,
                            progress=not getattr(args, "no_progress", False))
    except SweepInterrupted as exc:
        s = exc.summary
        print(s.table())
        print(f"interrupted: {s.n_done} finished results are in {results}; {s.n_tasks - s.n_done} tasks not run "
              f"(those in flight were stopped and not written); run the same command again to resume")
        return 128 + exc.signum
    print(summary.table())
    if summary.timed_out:
        print(f"stopped at the total time limit ({spec.total_time_limit:g} s): run the same command again to resume")
    return 0 if summary.complete else 1
