"""``backend="auto"``: choose a backend from the registry's capability flags, and say why.

Routing reads nothing but :class:`unrectify.backends.Capabilities` (no backend is named here):

1. a *model*: the first installed backend, in registry order, that certifies global optima,
   lists the model's class in ``auto_classes`` (or lists none) and supports the model
   (:func:`choose_backend`);
2. a *training problem* (:func:`route`): with a weight box, the backend step 1 picks for the
   formulation (its class is found on a 2-sample copy of the problem, without building the full
   model), when the instance is within that backend's ``max_binaries`` / ``max_bilinear``;
   otherwise (too large, or no weight box) the first installed backend, in registry order, that
   takes the problem itself (level ``problem``; its ``takes`` accepts the encoding, domain, loss,
   box and size): the exact sign-enumerated backend where it applies, else the ALM solver.  The
   reason says which, why, and whether the answer can be certified, e.g. ``split/interval form has
   80 activation variables > 64 (scip's limit for auto): routed to alm, not certified``;
   :func:`unrectify.solve` appends the outcome (``; result: optimal, certified`` or
   ``; result: time_limit, not certified``), since an exact route may not close in time.
"""

from __future__ import annotations

from dataclasses import dataclass

from unrectify.backends import available_backends, backend_class, get_backend
from unrectify.formulations.errors import InputError, SolverUnavailableError
from unrectify.formulations.model import Model
from unrectify.formulations.problem import TrainingProblem


@dataclass(frozen=True)
class Route:
    """The backend ``auto`` chose, the reason, and whether its answer can be a certified optimum."""

    backend: str
    reason: str
    certifies: bool


def choose_backend(model: Model) -> tuple[str, str]:
    """Return ``(backend name, reason)`` for ``model`` (step 1 of the module docstring)."""
    cls = model.problem_class
    tried = []
    for name in available_backends():
        be = backend_class(name)
        cap = be.capabilities
        if cap.level != "model" or not cap.global_optimum:
            continue
        if cap.auto_classes is not None and cls not in cap.auto_classes:
            continue
        try:
            get_backend(name).check(model)
        except (ValueError, ImportError) as exc:
            tried.append(f"{name}: {str(exc).splitlines()[0]}")
            continue
        return name, f"{cls}: solved to global optimality by {be.solver or name}"
    why = f" ({'; '.join(tried)})" if tried else ""
    raise SolverUnavailableError(f"no installed backend can solve a {cls} model{why} (install pyscipopt and pyomo)")


def training_size(problem: TrainingProblem) -> tuple[int, int]:
    """(activation variables, bilinear terms) of the split model of ``problem``, without building it."""
    N = problem.n_samples
    hidden = sum(problem.hidden_widths)
    chain = sum(problem.widths[l] * problem.widths[l - 1] for l in range(2, problem.n_layers + 1))
    return N * hidden, 3 * N * hidden + N * chain


def _probe(problem: TrainingProblem) -> TrainingProblem:
    """The first two samples of ``problem``: the same model class, built in microseconds."""
    n = min(2, problem.n_samples)
    return TrainingProblem(problem.X[:n], problem.Y[:n], problem.widths, problem.loss, problem.weight_bound,
                           dict(problem.frozen))


def route(problem: TrainingProblem, encoding: str, domain: str,
          symmetry_breaking: bool | str | list[str] = False) -> Route:
    """The backend for ``problem`` in ``encoding``/``domain`` and why (module docstring, step 2)."""
    from unrectify.formulations.builder import build_training_model, symmetry_kinds
    from unrectify.formulations.encodings import get_encoding

    get_encoding(encoding).check_domain(domain)   # bad names fail here, not routed away below
    symmetry_kinds(symmetry_breaking)
    form = f"{encoding}/{domain} form"
    if problem.weight_bound is None:
        why = f"{form} has no weight box (exact solvers need one)"
        exact = None
    else:
        try:
            model = build_training_model(_probe(problem), encoding, domain, symmetry_breaking).model
        except InputError as exc:   # e.g. bounds too wide for exact solvers: only a problem-level backend may do
            model, exact, error = None, None, exc
            why = f"{form}: {str(exc).splitlines()[0]}"
        if model is not None:
            exact, reason = choose_backend(model)
            too_big = backend_class(exact).fits(*training_size(problem))
            if too_big is None:
                return Route(exact, reason, True)
            why = f"{form} has {too_big} ({exact}'s limit for auto)"
    for name in available_backends():
        be = backend_class(name)
        if be.capabilities.level == "problem" and be.takes(problem, encoding, domain) is None:
            certifies = be.capabilities.global_optimum
            # an exact route certifies only if it closes in time: the solution's route says the outcome
            return Route(name, f"{why}: routed to {name}, "
                               f"{'an exact route (certified if it closes within the time limit)' if certifies else 'not certified'}",
                         certifies)
    if exact is None:
        if problem.weight_bound is not None:
            raise error
        raise SolverUnavailableError(f"{why}, and no installed backend solves {form} without one")
    return Route(exact, f"{why}, but no other backend takes the {form}: solved by {exact} anyway", True)


__all__ = ["Route", "choose_backend", "route", "training_size"]
