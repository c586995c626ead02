"""Choose a backend for a model (``backend="auto"``) and say why."""

from __future__ import annotations

from backends import available_backends, get_backend
from formulations.errors import SolverUnavailableError
from formulations.model import Model

#: the exact route is taken up to this many binary / bilinear "hard" elements; larger
#: instances go to the ALM solver when it is available (see docs/backends.md)
EXACT_MAX_BINARIES = 64
EXACT_MAX_BILINEAR = 400


def choose_backend(model: Model, prefer_exact: bool = True) -> tuple[str, str]:
    """Return ``(backend name, reason)`` for ``model``."""
    installed = available_backends()
    cls = model.problem_class
    if model.is_linear and "highs" in installed:
        return "highs", f"{cls}: linear model, solved exactly by HiGHS"
    if not model.has_quadratic_constraints and model.objective_is_convex and not model.n_integer and "cvxpy" in installed:
        return "cvxpy", f"{cls}: convex continuous model, solved by cvxpy"
    big = model.n_integer > EXACT_MAX_BINARIES or len(model.quad[0]) > EXACT_MAX_BILINEAR
    if big and not prefer_exact and "alm" in installed:
        return "alm", (f"{cls} with {model.n_integer} binaries and {len(model.quad[0])} bilinear terms exceeds the "
                       f"exact limits ({EXACT_MAX_BINARIES} binaries / {EXACT_MAX_BILINEAR} bilinear terms)")
    # SCIP is the default global solver: measured faster than the pip Gurobi on these
    # (MI)QCQPs (docs/benchmarks.md); Gurobi is used by "auto" only when SCIP is absent.
    if "scip" in installed:
        return "scip", f"{cls}: global spatial branch-and-bound by SCIP"
    if "gurobi" in installed:
        try:
            get_backend("gurobi").check(model)
            return "gurobi", f"{cls}: global solve by Gurobi (SCIP not installed; fits the licence)"
        except Exception as exc:
            raise SolverUnavailableError(f"SCIP is not installed and Gurobi cannot take this model: {exc}") from None
    raise SolverUnavailableError(f"no installed backend can solve a {cls} model (install pyscipopt and pyomo)")
