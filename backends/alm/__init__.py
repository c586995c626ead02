"""Augmented Lagrangian solver for the relaxed split form (numpy, vectorised; docs/alm.md, docs/theory.md).

Entry point::

    from unrectify.backends.alm import solve_alm
    res = solve_alm(problem, restarts=10, seed=0, time_limit=60, progress=True)
    res.status, res.forward_loss, res.max_violation, res.weights

or, through the one solving chain, ``unrectify.solve(problem, backend="alm")`` (the registered
backend :class:`~unrectify.backends.alm.backend.AlmBackend`, which owns the defaults).

Modules: ``options`` (defaults), ``state`` (iterate, residuals, L, stationarity), ``boxls``
(box-constrained least squares), ``blocks`` (block updates), ``outer`` (inner/outer loops),
``init`` (starts and restarts), ``solver`` (``solve_alm``), ``result`` (``ALMResult``),
``backend`` (``AlmBackend``).  The solver modules are imported on first use, so registering
the backend costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"ALMOptions": ".options", "ALMResult": ".result", "RestartRecord": ".result", "solve_alm": ".solver",
         "AlmBackend": ".backend"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ALMOptions", "ALMResult", "AlmBackend", "RestartRecord", "solve_alm"]
