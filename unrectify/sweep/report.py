"""The summary of a sweep over the whole grid: counts per (encoding, domain, backend), and the
table printed at the end of a run."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .grid import Task

from unrectify.formulations.status import STATUSES as STATUS_ORDER


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
    timed_out: bool = False         # stopped at the spec's total_time_limit
    startup_seconds: float = 0.0    # starting or joining the cluster, part of wall_seconds

    @property
    def complete(self) -> bool:
        return self.n_done == self.n_tasks

    def to_dict(self) -> dict:
        return asdict(self) | {"complete": self.complete}

    def state(self) -> str:
        if self.complete:
            return "complete"
        if self.interrupted:
            return "interrupted"
        return "stopped at the total time limit" if self.timed_out else "incomplete"

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
        lines.append("")
        lines.append(f"{self.n_done}/{self.n_tasks} tasks done ({self.state()}); this run: {self.n_ran} ran, "
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
