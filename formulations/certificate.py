"""Independent numpy certificates of a returned point, and the gate that grants ``optimal``.

A solver's word is never taken alone: the point it returns is checked here, in numpy, against
the model (largest violation of constraints, bounds and integrality) and against an ordinary
ReLU forward pass (:mod:`unrectify.formulations.network`).  :func:`gate` then calls a run
``optimal`` only when the solver reported a global optimum AND the certificate agrees:

    max_violation <= VIOLATION_TOL   and   |forward_loss - solver_objective| <= AGREEMENT_RTOL
    max(|forward_loss|, |solver_objective|) + AGREEMENT_ATOL  (the model objective at the
    point must agree with the forward-pass loss in the same sense).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .problem import loss_value
from .status import OPTIMAL, UNCERTIFIED

if TYPE_CHECKING:
    from .builder import TrainingModel

#: tolerances used to call a run certified: the violation is absolute; the forward-pass loss
#: must equal the objective to AGREEMENT_RTOL relative, with AGREEMENT_ATOL for optima near 0
#: (the scale of the exact solvers' feasibility tolerance)
VIOLATION_TOL = 1e-6
AGREEMENT_RTOL = 1e-6
AGREEMENT_ATOL = 1e-8


def losses_agree(a: float | None, b: float | None) -> bool:
    """``|a - b| <= AGREEMENT_RTOL max(|a|, |b|) + AGREEMENT_ATOL`` (False when either is None)."""
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
        return False
    return abs(a - b) <= AGREEMENT_RTOL * max(abs(a), abs(b)) + AGREEMENT_ATOL


@dataclass
class Certificate:
    """Checks recomputed in numpy from the returned point, independent of the solver.

    ``max_violation``: largest violation of constraints, bounds and integrality of the model.
    ``forward_loss``: loss of an ordinary ReLU forward pass with the returned weights.
    ``relu_gap``: max |x - relu(z)| over hidden units and samples.
    ``objective_recomputed``: the model objective at the returned point.
    ``loss_agrees``: ``forward_loss`` equals ``objective_recomputed`` (:func:`losses_agree`).
    """

    max_violation: float
    forward_loss: float
    relu_gap: float
    objective_recomputed: float
    loss_agrees: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def agrees_with(self, solver_objective: float | None) -> bool:
        """Feasible point whose forward-pass loss is the model objective and the solver's objective."""
        return (self.max_violation <= VIOLATION_TOL and self.loss_agrees
                and losses_agree(self.forward_loss, solver_objective))


def gate(solver_status: str, certifies_global: bool, agrees: bool) -> tuple[str, bool]:
    """``(status, certified)`` of a run: ``optimal`` needs a global solver that reported
    ``optimal`` and a certificate that ``agrees``; a solver ``optimal`` that fails the
    certificate becomes ``uncertified``; other statuses pass unchanged (never certified)."""
    if solver_status != OPTIMAL:
        return solver_status, False
    if certifies_global and agrees:
        return OPTIMAL, True
    return UNCERTIFIED, False


def certify(tm: "TrainingModel", point: np.ndarray) -> Certificate:
    """Recompute feasibility and the ReLU forward-pass loss at ``point`` in numpy.

    Raises :class:`InputError` (one line) for anything but a built training model, or a point
    that is not a vector of the model's size (a point with NaN entries, e.g. from a failed
    solver, gets a NaN violation and so never certifies)."""
    from .builder import TrainingModel

    if not isinstance(tm, TrainingModel):
        raise InputError(f"certify needs the TrainingModel that build_training_model returned, got {type(tm).__name__}")
    try:
        point = np.asarray(point, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"certify: the point must be a vector of numbers, got {type(point).__name__}") from None
    if point.shape != (tm.model.n_vars,):
        raise InputError(f"certify: the point must be a vector of the model's {tm.model.n_vars} variables, "
                         f"got shape {point.shape}")
    ev = tm.model.evaluate(point)
    weights = tm.weights(point)
    fl = tm.problem.forward_loss(weights)
    return Certificate(ev.max_violation, fl, tm.relu_gap(point), ev.objective, losses_agree(fl, ev.objective))


def certify_split_iterate(problem: Any, weights, hidden: list[dict[str, np.ndarray]],
                          output: np.ndarray) -> Certificate:
    """Certificate of a relaxed split-form iterate given as arrays, without building a Model
    (for large instances, e.g. the ALM solver).

    ``hidden[l]`` holds ``Z``, ``X``, ``D`` of hidden layer ``l+1`` (each ``N x n``), ``output``
    is the output pre-activation ``Z_L``.  The violation is the max over
    ``|Z - (X_prev W^T + b)|``, ``|X - D Z|``, ``max(-D Z, 0)``, ``max((1 - D) Z, 0)``, the bounds
    ``0 <= D <= 1`` and the weight box; the objective is the loss of ``output``.
    """
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


__all__ = ["AGREEMENT_ATOL", "AGREEMENT_RTOL", "VIOLATION_TOL", "Certificate", "certify", "certify_split_iterate",
           "gate", "losses_agree"]
