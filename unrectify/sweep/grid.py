"""The task grid: one :class:`Task` per grid point, its stable key, and :func:`expand`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import SweepSpec

#: version tag hashed into every task key; change it when a task's meaning changes
TASK_KIND = "solve-random-instance/1"


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

    @classmethod
    def from_params(cls, params: dict) -> Task:
        """Inverse of :meth:`params` (the dict sent to a worker and stored in a record)."""
        return cls(**{**params, "widths": tuple(params["widths"])})

    @property
    def key(self) -> str:
        """Stable across runs, machines and Python versions: sha256 of the canonical JSON of
        the parameters and :data:`TASK_KIND`, 16 hex digits."""
        blob = json.dumps({"kind": TASK_KIND, **self.params()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def label(self) -> str:
        w = ",".join(map(str, self.widths))
        return f"{self.encoding}/{self.domain}/{self.backend} seed={self.seed} N={self.samples} w={w}"


def unique(items: Iterable) -> list:
    """Items in first-seen order without repeats."""
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def forms(spec: SweepSpec) -> list[tuple[str, str]]:
    """The (encoding, domain) pairs of the grid that the encoding has."""
    from unrectify.formulations import get_encoding
    return [(e, d) for e in spec.encodings for d in spec.domains if d in get_encoding(e).domains]


def backend_skips(backend: str, encoding: str, domain: str) -> str | None:
    """Why ``backend`` does not take ``encoding``/``domain`` (its capability flags), None if it does."""
    if backend == "auto":
        return None
    import unrectify.backends as registry
    return registry.backend_class(backend).takes(None, encoding, domain)


def backend_takes(backend: str, encoding: str, domain: str) -> bool:
    """Structural limits of a backend (e.g. the ALM solver: relaxed split form only)."""
    return backend_skips(backend, encoding, domain) is None


def n_grid_points(spec: SweepSpec) -> int:
    """Upper bound on ``len(expand(spec))`` without building the tasks (for the size check)."""
    n = len(spec.encodings) * len(spec.domains) * len(spec.backends)
    for values in (spec.seeds, spec.samples, spec.widths, spec.loss, spec.weight_bound, spec.symmetry_breaking):
        n *= len(values)
    return n


def expand(spec: SweepSpec) -> list[Task]:
    """All tasks of the grid, in a fixed order (instance parameters outermost); combinations
    that cannot run are left out (:meth:`SweepSpec.skipped`: an (encoding, domain) pair the
    encoding does not have; the ALM backend with anything but split/interval)."""
    tasks: list[Task] = []
    pairs = forms(spec)
    for widths in spec.widths:
        for samples in spec.samples:
            for loss in spec.loss:
                for B in spec.weight_bound:
                    for seed in spec.seeds:
                        for sym in spec.symmetry_breaking:
                            for e, d in pairs:
                                for b in spec.backends:
                                    if backend_takes(b, e, d):
                                        tasks.append(Task(seed, samples, tuple(widths), e, d, b, loss, float(B), sym,
                                                          float(spec.time_limit)))
    return unique(tasks)
