"""The result of a fixed-weight solve (:class:`FixedSolution`), on the shared :class:`Result` base."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unrectify.backends.results import Result

#: the model's outputs must equal the forward pass to OUTPUT_TOL * max(1, |y|)
OUTPUT_TOL = 1e-6


@dataclass
class FixedSolution(Result):
    """Result of a fixed-weight solve, in the user's sense (``max`` objectives are maxima).

    ``input``, ``output`` (the model's output variables) and ``forward_output`` (the numpy
    forward pass at ``input``) have shape ``(n)`` for a single problem and ``(B, n)`` for a
    batch.  ``objective`` is the solver's objective (summed over rows), ``forward_objective``
    the same objective recomputed from ``forward_output``; ``bound`` is the solver's proven
    bound (an upper bound for ``max``, a lower bound otherwise; the gap convention of
    :class:`~unrectify.backends.results.Result`).  ``output_gap`` is
    ``max |forward_output - output|`` and ``forward_agrees`` says it is within ``OUTPUT_TOL``.
    ``status`` is gated like every result: ``optimal`` only when ``certified`` (the solver's own
    status is ``solver_status``; a relaxation whose outputs are not the network's is ``uncertified``).
    """

    status: str
    objective: float | None
    bound: float | None
    input: np.ndarray | None
    output: np.ndarray | None
    forward_output: np.ndarray | None
    forward_objective: float | None
    row_objectives: np.ndarray | None
    max_violation: float | None
    output_gap: float | None
    forward_agrees: bool
    seconds: float
    build_seconds: float
    backend: str
    solver: str
    encoding: str
    domain: str
    kind: str
    model_stats: dict = field(default_factory=dict)
    message: str = ""
    point: np.ndarray | None = field(default=None, repr=False)
    extra: dict = field(default_factory=dict)
    solver_status: str | None = None
    solver_objective: float | None = None
    solver_bound: float | None = None
    certified: bool = False

    def __post_init__(self) -> None:
        if self.solver_status is None:
            self.solver_status = self.status

    def summary(self) -> dict:
        return {
            "kind": self.kind, "encoding": self.encoding, "domain": self.domain, "backend": self.backend,
            "solver": self.solver, "status": self.status, "objective": self.objective, "bound": self.bound,
            "forward_objective": self.forward_objective, "max_violation": self.max_violation,
            "output_gap": self.output_gap, "certified_optimal": self.certified_optimal,
            "seconds": self.seconds, "build_seconds": self.build_seconds, "message": self.message,
            "certified": bool(self.certified), "solver_status": self.solver_status,
            "solver_objective": self.solver_objective, "solver_bound": self.solver_bound,
        }


__all__ = ["OUTPUT_TOL", "FixedSolution"]
