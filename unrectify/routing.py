"""Choose a backend for a model (``backend="auto"``) and say why."""

from __future__ import annotations

from unrectify.backends import available_backends, get_backend
from unrectify.formulations.errors import SolverUnavailableError
from unrectify.formulations.model import Model

#: the exact route is taken up to this many binary / bilinear "hard" elements; larger
#: instances go to the ALM solver when it is available (see docs/backends.md)
EXACT_MAX_BINARIES = 64
EXACT_MAX_BILINEAR = 400


def choose_backend(model: Model) -> tuple[str, str]:
    """Return ``(backend name, reason)`` for ``model``."""
    installed = available_backends()
    cls = model.problem_class
    if model.is_linear and "highs" in installed:
        return "highs", f"{cls}: linear model, solved exactly by HiGHS"
    if not model.has_quadratic_constraints and model.objective_is_convex and not model.n_integer and "cvxpy" in installed:
        return "cvxpy", f"{cls}: convex continuous model, solved by cvxpy"
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


def training_size(problem) -> tuple[int, int]:
    """(activation binaries, bilinear terms) of the split model of ``problem``, without building it."""
    N = problem.n_samples
    hidden = sum(problem.hidden_widths)
    chain = sum(problem.widths[l] * problem.widths[l - 1] for l in range(2, problem.n_layers + 1))
    return N * hidden, 3 * N * hidden + N * chain


#: route name of the sign-enumerated exact route (issue 13; unrectify/cases.py)
SIGN_ENUMERATED = "sign-enumerated"


def choose_training_route(problem, encoding: str, domain: str) -> tuple[str, str | None]:
    """``("sign-enumerated", reason)`` for split instances beyond the exact limits that the
    sign enumeration solves exactly (single output, one hidden layer, weight box);
    ``("alm", reason)`` for other relaxed split instances beyond the exact limits; else
    ``("auto", None)`` (an exact backend is then chosen from the built model by :func:`choose_backend`)."""
    binaries, bilinear = training_size(problem)
    big = binaries > EXACT_MAX_BINARIES or bilinear > EXACT_MAX_BILINEAR or problem.weight_bound is None
    if not big:
        return "auto", None
    why = ("no weight box (exact solvers need one)" if problem.weight_bound is None else
           f"{binaries} activation variables / {bilinear} bilinear terms exceed the exact limits "
           f"({EXACT_MAX_BINARIES} / {EXACT_MAX_BILINEAR})")
    # --- sign-enumerated exact route (issue 13) -------------------------------------------
    from unrectify.formulations.sign_cases import sign_enumeration_reason

    if encoding == "split" and sign_enumeration_reason(problem) is None and "scip-direct" in available_backends():
        return SIGN_ENUMERATED, (f"split form has {why}: solved exactly as {problem.widths[1] + 1} sign-enumerated "
                                 "convex MIQPs (single output, one hidden layer, weight box)")
    # ----------------------------------------------------------------------------------------
    if encoding == "split" and domain == "interval":
        return "alm", f"{why}: relaxed split form solved locally by the ALM solver"
    return "auto", None
