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
is already in the results file.

One module per job:

* :mod:`.spec` reads and validates a spec, key by key;
* :mod:`.grid` expands it into tasks with stable keys;
* :mod:`.task` is what runs on a worker (one solve into a JSON-safe record);
* :mod:`.store` is the append-only, locked, fsynced results file;
* :mod:`.cluster` starts or joins a Dask cluster;
* :mod:`.run` submits the tasks and writes each record as it arrives;
* :mod:`.progress` and :mod:`.report` show the progress and the summary table;
* :mod:`.command` is ``unrectify verify --sweep``.
"""

from .cluster import default_workers
from .command import cmd_sweep, default_results_path
from .errors import SchedulerLostError, SweepError, SweepInterrupted, TaskInterrupted
from .grid import TASK_KIND, Task, expand
from .report import STATUS_ORDER, SweepSummary, summarize
from .run import run_sweep
from .spec import MAX_TASK_SIZE, MAX_TASKS, SweepSpec, load_sweep_spec, spec_from_dict
from .store import RECORD_FORMAT, ResultsFile, load_results
from .task import run_task

__all__ = ["MAX_TASK_SIZE", "MAX_TASKS", "RECORD_FORMAT", "ResultsFile", "STATUS_ORDER", "SchedulerLostError",
           "SweepError", "SweepInterrupted", "SweepSpec", "SweepSummary", "TASK_KIND", "Task", "TaskInterrupted",
           "cmd_sweep", "default_results_path", "default_workers", "expand", "load_results", "load_sweep_spec",
           "run_sweep", "run_task", "spec_from_dict", "summarize"]
