"""Solution and certificate objects returned by :func:`unrectify.solve`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from unrectify.formulations.builder import TrainingModel

#: tolerances used to call a run certified: the violation is absolute; the forward-pass loss
#: must equal the objective to AGREEMENT_RTOL relative, with AGREEMENT_ATOL for optima near 0
#: (the scale of the exact solvers' feasibility tolerance)
VIOLATION_TOL = 1e-6
AGREEMENT_RTOL = 1e-6
AGREEMENT_ATOL = 1e-8


def losses_agree(a: float, b: float) -> bool:
    return abs(a - b) <= AGREEMENT_RTOL * max(abs(a), abs(b)) + AGREEMENT_ATOL


@dataclass
class Certificate:
    """Checks recomputed in numpy from the returned point, independent of the solver.

    ``max_violation``: largest violation of constraints, bounds and integrality of the model.
    ``forward_loss``: loss of an ordinary ReLU forward pass with the returned weights.
    ``relu_gap``: max |x - relu(z)| over hidden units and samples.
    ``objective_recomputed``: the model objective at the returned point.
    """

    max_violation: float
    forward_loss: float
    relu_gap: float
    objective_recomputed: float
    loss_agrees: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Solution:
    """Result of one solve: status, objective, bound, weights, activations and certificate."""

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

    @property
    def forward_loss(self) -> float | None:
        return None if self.certificate is None else self.certificate.forward_loss

    @property
    def max_violation(self) -> float | None:
        return None if self.certificate is None else self.certificate.max_violation

    @property
    def certified_optimal(self) -> bool:
        """Optimal status, feasible point and the ReLU forward-pass loss equal to the objective."""
        c = self.certificate
        return self.status == "optimal" and c is not None and c.max_violation <= VIOLATION_TOL and c.loss_agrees

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        return (self.objective - self.bound) / max(abs(self.objective), 1e-12)

    def summary(self) -> dict:
        return {
            "encoding": self.encoding, "domain": self.domain, "backend": self.backend, "solver": self.solver,
            "status": self.status, "objective": self.objective, "bound": self.bound,
            "forward_loss": self.forward_loss, "max_violation": self.max_violation,
            "relu_gap": None if self.certificate is None else self.certificate.relu_gap,
            "seconds": self.seconds, "symmetry_breaking": self.symmetry_breaking, "message": self.message,
        }


def certify(tm: TrainingModel, point: np.ndarray) -> Certificate:
    """Recompute feasibility and the ReLU forward-pass loss at ``point`` in numpy."""
    ev = tm.model.evaluate(point)
    weights = tm.weights(point)
    fl = tm.problem.forward_loss(weights)
    return Certificate(ev.max_violation, fl, tm.relu_gap(point), ev.objective, losses_agree(fl, ev.objective))


def certify_split_iterate(problem, weights, hidden: list[dict[str, np.ndarray]], output: np.ndarray) -> Certificate:
    """Certificate of a relaxed split-form iterate given as arrays, without building a Model
    (for large instances, e.g. the ALM solver).

    ``hidden[l]`` holds ``Z``, ``X``, ``D`` of hidden layer ``l+1`` (each ``N x n``), ``output``
    is the output pre-activation ``Z_L``.  The violation is the max over
    ``|Z - (X_prev W^T + b)|``, ``|X - D Z|``, ``max(-D Z, 0)``, ``max((1 - D) Z, 0)``, the bounds
    ``0 <= D <= 1`` and the weight box; the objective is the loss of ``output``.
    """
    from unrectify.formulations.problem import loss_value

    viol = 0.0
    prev = problem.X
    B = problem.weight_bound
    for l, (W, b) in enumerate(weights):
        Z = hidden[l]["Z"] if l < len(hidden) else output
        viol = max(viol, float(np.abs(Z - (prev @ W.T + b)).max(initial=0.0)))
        if B is not None:
            viol = max(viol, float(max(np.abs(W).max(initial=0.0), np.abs(b).max(initial=0.0)) - B))
        if l < len(hidden):
            X, D = hidden[l]["X"], hidden[l]["D"]
            DZ = D * Z
            viol = max(viol, float(np.abs(X - DZ).max(initial=0.0)), float(np.maximum(-DZ, 0).max(initial=0.0)),
                       float(np.maximum(Z - DZ, 0).max(initial=0.0)),
                       float(np.maximum(-D, 0).max(initial=0.0)), float(np.maximum(D - 1, 0).max(initial=0.0)))
            prev = X
    obj = loss_value(output, problem.Y, problem.loss)
    fl = problem.forward_loss(weights)
    gap = max((float(np.abs(h["X"] - np.maximum(h["Z"], 0)).max(initial=0.0)) for h in hidden), default=0.0)
    return Certificate(max(viol, 0.0), fl, gap, obj, losses_agree(fl, obj))
