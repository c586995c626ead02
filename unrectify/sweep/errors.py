"""The sweep's errors: bad input (one line, exit 2), a lost scheduler, an interrupt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unrectify.formulations.errors import SweepError, UnrectifyError

if TYPE_CHECKING:
    from .report import SweepSummary

__all__ = ["SchedulerLostError", "SweepError", "SweepInterrupted", "TaskInterrupted"]


class SchedulerLostError(UnrectifyError, ConnectionError):
    """The Dask scheduler went away during a sweep; ``.summary`` holds what is in the results
    file (every finished result was written before this is raised)."""

    def __init__(self, message: str, summary: SweepSummary) -> None:
        super().__init__(message)
        self.summary = summary


class SweepInterrupted(KeyboardInterrupt):
    """Raised by :func:`~unrectify.sweep.run_sweep` on Ctrl-C or SIGTERM after the results file is
    closed; ``.summary`` holds the :class:`~unrectify.sweep.SweepSummary` of what is in the file."""

    def __init__(self, summary: SweepSummary, signum: int = 2) -> None:
        super().__init__("sweep interrupted")
        self.summary = summary
        self.signum = int(signum)   # SIGINT (Ctrl-C) or SIGTERM


class TaskInterrupted(RuntimeError):
    """A solve stopped by Ctrl-C inside a worker: not a result, never written."""
