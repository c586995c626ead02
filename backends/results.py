"""Result types shared by every backend and by the API: the :class:`Result` base (one gap
convention, one ``certified`` rule) and :class:`Solution`, the certified result of a training solve.

Gap convention (every result): ``gap = |objective - bound| / max(|objective|, 1e-12)``, a
non-negative relative gap in the user's sense of the objective (for a minimisation the bound is
a lower bound, for a maximisation an upper bound), ``None`` when either is missing.  A bound is
only ever a bound the solver proved (a MIP dual bound, a spatial branch-and-bound bound); it is
never the primal value copied over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unrectify.formulations.certificate import Certificate
from unrectify.formulations.status import OPTIMAL


class Result:
    """Behaviour common to training and fixed-weight results (attributes ``status``,
    ``objective``, ``bound`` and ``certified`` are set by the subclass)."""

    status: str
    objective: float | None
    bound: float | None
    certified: bool

    @property
    def certified_optimal(self) -> bool:
        """A certified global optimum: status ``optimal`` (which the gate grants only with a certificate)."""
        return self.status == OPTIMAL and bool(self.certified)

    @property
    def gap(self) -> float | None:
        """Relative gap ``|objective - bound| / max(|objective|, 1e-12)`` (module docstring)."""
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-12)


@dataclass
class Solution(Result):
    """Result of one training solve: status, objective, bound, weights, activations and certificate.

    ``status`` is the gated status (:mod:`unrectify.formulations.status`): ``optimal`` only when
    ``certified``.  ``solver_status``, ``solver_objective`` and ``solver_bound`` are what the
    solver reported, unchanged; ``objective`` and ``bound`` are the same numbers (kept under their
    historical names), while the certificate holds the values recomputed in numpy.
    ``route`` is why this backend ran (``backend="auto"``), ``None`` for a named backend.
    """

    status: str
    objective: float | None
    bound: float | None
    weights: list[tuple[np.ndarray, np.ndarray]] | None
    activations: list[dict[str, np.ndarray]] | None
    seconds: float
    backend: str
    solver: str
    encoding: str
    domain: str
    certificate: Certificate | None
    model_stats: dict = field(default_factory=dict)
    symmetry_breaking: list[str] = field(default_factory=list)
    message: str = ""
    point: np.ndarray | None = field(default=None, repr=False)
    history: list[dict] = field(default_factory=list, repr=False)
    extra: dict = field(default_factory=dict)
    solver_status: str | None = None
    solver_objective: float | None = None
    solver_bound: float | None = None
    certified: bool = False
    global_solver: bool = True      # the backend certifies global optima (False: a local method)
    route: str | None = None

    def __post_init__(self) -> None:
        if self.solver_status is None:
            self.solver_status = self.status

    @property
    def forward_loss(self) -> float | None:
        return None if self.certificate is None else self.certificate.forward_loss

    @property
    def max_violation(self) -> float | None:
        return None if self.certificate is None else self.certificate.max_violation

    def summary(self) -> dict:
        return {
            "encoding": self.encoding, "domain": self.domain, "backend": self.backend, "solver": self.solver,
            "status": self.status, "objective": self.objective, "bound": self.bound,
            "forward_loss": self.forward_loss, "max_violation": self.max_violation,
            "relu_gap": None if self.certificate is None else self.certificate.relu_gap,
            "seconds": self.seconds, "symmetry_breaking": self.symmetry_breaking, "message": self.message,
            "certified": bool(self.certified), "solver_status": self.solver_status,
            "solver_objective": self.solver_objective, "solver_bound": self.solver_bound, "route": self.route,
        }


__all__ = ["Result", "Solution"]
