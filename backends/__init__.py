"""Solver backends, one registry: each takes a formulation (a built :class:`unrectify.formulations.Model`,
or the :class:`TrainingProblem` itself for problem-level backends such as the ALM) and returns a
certified :class:`Solution` (:meth:`Backend.solve_problem`).  Solver packages are imported lazily,
only when a backend runs.  Adding a backend: a module in this folder and one line in
``_REGISTERED`` below (docs/extending.md)."""

from __future__ import annotations

from importlib import import_module

from unrectify.formulations.errors import InputError, UnknownNameError

from .base import STATUSES, Backend, Capabilities, RawResult
from .results import Result, Solution

_BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    _BACKENDS[cls.name] = cls
    return cls


#: the registry: one line a backend ("module:class", relative to this package), in ``auto``'s
#: order of preference among the backends that can take a model (routing, docs/backends.md)
_REGISTERED = (
    ".highs:HighsBackend",
    ".cvxpy_backend:CvxpyBackend",
    ".scip:ScipBackend",
    ".gurobi:GurobiBackend",
    ".scip_direct:ScipDirectBackend",
    ".cases:SignEnumeratedBackend",     # problem-level, certifies: before the ALM for auto
    ".alm.backend:AlmBackend",
)
for _entry in _REGISTERED:
    _module, _cls = _entry.split(":")
    register_backend(getattr(import_module(_module, __name__), _cls))


def backend_names() -> list[str]:
    """Registered backend names (``auto`` is resolved by the router in :mod:`unrectify`)."""
    return list(_BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The registered class of backend ``name`` (its capabilities are class attributes)."""
    if not isinstance(name, str):
        raise InputError(f"a backend is a name like 'scip' or 'auto', got {name!r}")
    try:
        return _BACKENDS[name]
    except KeyError:
        raise UnknownNameError(f"unknown backend {name!r}; available: auto, {', '.join(_BACKENDS)}") from None


def get_backend(name: str, **options) -> Backend:
    return backend_class(name)(**options)


def refuse_unknown_options(options: dict, also: tuple[str, ...] = ()) -> None:
    """An option that no registered backend takes (nor ``also``) is a typo, refused in one line.

    Options that only some backends take pass (``auto`` may route to any of them; the chosen
    backend lists those it ignores in ``Solution.extra["ignored_options"]``).  A registered
    backend that takes any option (``option_names = None``) turns the check off."""
    known = set(also)
    for cls in _BACKENDS.values():
        if cls.option_names is None:
            return
        known.update(cls.option_names)
    unknown = sorted(k for k in options if k not in known)
    if unknown:
        raise InputError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"the backends take: {', '.join(sorted(known))}")


def refuse_foreign_options(name: str, options: dict) -> None:
    """Options that the *named* backend ``name`` does not take would be ignored: refused in one
    line (``auto`` may route to any backend, so it only lists them)."""
    known = backend_class(name).option_names
    foreign = sorted(k for k in options if known is not None and k not in known)
    if foreign:
        raise InputError(f"backend {name!r} does not take option{'s' if len(foreign) > 1 else ''} "
                         f"{', '.join(foreign)} (it takes: {', '.join(known) or 'none'})")


def options_for(name: str, options: dict) -> dict:
    """The subset of ``options`` that backend ``name`` takes."""
    known = backend_class(name).option_names
    return dict(options) if known is None else {k: v for k, v in options.items() if k in known}


def available_backends() -> list[str]:
    """Backends whose solver package is installed."""
    return [n for n, c in _BACKENDS.items() if c.available()]


__all__ = ["STATUSES", "Backend", "Capabilities", "RawResult", "Result", "Solution", "available_backends",
           "backend_class", "backend_names", "get_backend", "options_for", "refuse_foreign_options",
           "refuse_unknown_options", "register_backend"]
