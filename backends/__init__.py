"""Solver backends: each compiles a :class:`unrectify.formulations.Model`, solves it and extracts a
:class:`RawResult`.  Solver packages are imported lazily, only when a backend runs."""

from __future__ import annotations

from unrectify.formulations.errors import UnknownNameError

from .base import STATUSES, Backend, Capabilities, RawResult
from .cvxpy_backend import CvxpyBackend
from .gurobi import GurobiBackend
from .highs import HighsBackend
from .scip import ScipBackend
from .scip_direct import ScipDirectBackend

_BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    _BACKENDS[cls.name] = cls
    return cls


for _cls in (ScipBackend, GurobiBackend, HighsBackend, CvxpyBackend, ScipDirectBackend):
    register_backend(_cls)


def backend_names() -> list[str]:
    """Registered backend names (``auto`` is resolved by the router in :mod:`unrectify`)."""
    return list(_BACKENDS)


def get_backend(name: str, **options) -> Backend:
    try:
        return _BACKENDS[name](**options)
    except KeyError:
        raise UnknownNameError(f"unknown backend {name!r}; available: auto, {', '.join(_BACKENDS)}") from None


def available_backends() -> list[str]:
    """Backends whose solver package is installed."""
    return [n for n, c in _BACKENDS.items() if c.available()]


__all__ = ["STATUSES", "Backend", "Capabilities", "RawResult", "available_backends", "backend_names",
           "get_backend", "register_backend"]
