"""Augmented Lagrangian solver for the relaxed split form (numpy, vectorised; docs/alm.md, docs/theory.md).

Entry point::

    from unrectify.backends.alm import solve_alm
    res = solve_alm(problem, restarts=10, seed=0, time_limit=60, progress=True)
    res.status, res.forward_loss, res.max_violation, res.weights

Modules: ``options`` (defaults), ``state`` (iterate, residuals, L, stationarity), ``boxls``
(box-constrained least squares), ``blocks`` (block updates), ``outer`` (inner/outer loops),
``init`` (starts and restarts), ``solver`` (``solve_alm``), ``result`` (``ALMResult``).
"""

from .options import ALMOptions
from .result import ALMResult, RestartRecord
from .solver import solve_alm

__all__ = ["ALMOptions", "ALMResult", "RestartRecord", "solve_alm"]
