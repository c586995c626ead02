"""The result object of :func:`unrectify.backends.alm.solve_alm`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Weights = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class RestartRecord:
    """Summary of one restart: its start, where it stopped and the loss of its weights."""

    restart: int
    start: str  # "init", "random", "diverse" or "hop"
    forward_loss: float
    objective: float
    max_violation: float
    stationarity: float
    converged: bool
    stop_reason: str
    outer: int
    sweeps: int
    seconds: float
    alm_forward_loss: float = float("nan")  # forward loss of the weights before the polish
    pattern_moves: int = 0  # accepted moves of the pattern search


@dataclass
class ALMResult:
    """Outcome of :func:`solve_alm` (the best restart by forward-pass loss).

    ``status``: ``"local"`` when the best restart converged (``||C||_inf <= tol`` and projected
    gradient ``<= stat_tol``: a KKT point of the relaxed problem, never a global optimum),
    ``"time_limit"`` when a time, iteration or callback limit stopped it first, ``"error"``
    on non-finite values.  ``stop_reason`` says which (``converged``, ``max_outer``,
    ``time_limit``, ``stalled`` (no progress in objective or violation over ``stall_window``
    outer iterations; status ``"time_limit"``: stopped, not converged), ``polish_iters``,
    ``callback``, ``nonfinite``).  ``name`` is ``"alm"`` for the ALM's own weights and
    ``"alm+slsqp"`` / ``"alm+lbfgs"`` when a gradient refinement (``polish``) produced them;
    ``binary_fraction``: share of the returned ``D`` within 1e-3 of 0 or 1.
    ``weights``: ``[(W_l, b_l)]`` (float64) of the best restart; ``forward_loss``: the loss of
    an ordinary ReLU forward pass with them (the number to compare with other trainers).
    ``objective``: the loss of the ALM iterate's output ``Z_L``; ``max_violation``,
    ``stationarity``: of that iterate.  ``hidden`` (``[{"Z", "X", "D"}]`` per hidden layer,
    in the working dtype: float32 arrays for ``dtype="float32"``) and ``output`` (``Z_L``) are
    the iterate itself, ready for
    ``unrectify.formulations.certificate.certify_split_iterate(problem, weights, hidden, output)``.
    ``multipliers``: ``Lam_k`` per layer (``[C1, C2, C3, C4]`` order; output layer ``[C1]``).
    ``history``: one dict per outer iteration of every restart (keys ``restart, outer, loss,
    forward_loss, viol, pgrad, mu, eta, omega, al, sweeps, seconds``).
    ``restart_losses``: forward-pass loss of every restart, in order; ``restarts``: their records.
    """

    status: str
    stop_reason: str
    converged: bool
    weights: Weights
    forward_loss: float
    objective: float
    max_violation: float
    stationarity: float
    hidden: list[dict[str, np.ndarray]]
    output: np.ndarray
    history: list[dict] = field(default_factory=list, repr=False)
    restart_losses: list[float] = field(default_factory=list)
    restarts: list[RestartRecord] = field(default_factory=list, repr=False)
    best_restart: int = 0
    seconds: float = 0.0
    mu: float = float("nan")
    multipliers: list[list[np.ndarray]] = field(default_factory=list, repr=False)
    options: dict = field(default_factory=dict, repr=False)
    message: str = ""
    name: str = "alm"  # "alm" (the ALM alone) or "alm+<refinement>" when a gradient refinement made the weights
    method: str = "blocks"  # "blocks" (block-coordinate ALM) or "reduced" (reduced-space ALM)
    binary_fraction: float = float("nan")  # fraction of the returned D within 1e-3 of {0, 1}
    alm_forward_loss: float = float("nan")  # forward loss of the ALM's own weights (before any refinement)
    variable_bytes: int = 0  # bytes of the ALM's variables and multipliers

    def certificate(self, problem: Any) -> Any:
        """Independent numpy certificate of the returned iterate (:mod:`unrectify.formulations.certificate`)."""
        from unrectify.formulations.certificate import certify_split_iterate

        return certify_split_iterate(problem, self.weights, self.hidden, self.output)

    def summary(self) -> dict:
        return {
            "status": self.status, "stop_reason": self.stop_reason, "converged": self.converged,
            "forward_loss": self.forward_loss, "objective": self.objective,
            "max_violation": self.max_violation, "stationarity": self.stationarity,
            "best_restart": self.best_restart, "restart_losses": list(self.restart_losses),
            "seconds": self.seconds, "outer_iterations": len(self.history), "message": self.message,
            "name": self.name, "method": self.method, "binary_fraction": self.binary_fraction,
        }
