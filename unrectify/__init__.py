"""unrectify: train ReLU networks as constrained optimisation problems.

Public API::

    from unrectify import TrainingProblem, solve, verify
    p = TrainingProblem(X, Y, widths=(1, 2, 1), loss="mse", weight_bound=2.0)
    sol = solve(p, encoding="split", domain="interval", backend="auto", time_limit=60)
    sol.status, sol.objective, sol.bound, sol.certificate.forward_loss
    sol.certified, sol.route   # "optimal" only when certified; why auto chose the backend

One chain for every backend: problem -> formulation (encoding, domain) -> backend
(``unrectify.backends``, one registry with capability flags) -> certified :class:`Solution`.
Layers: ``unrectify.formulations`` <- ``unrectify.backends`` <- this API <- the CLI; the CS
application (``unrectify.cs``) is imported by the CLI only, never here.
"""

from unrectify.backends import (Backend, Capabilities, Result, Solution, available_backends, backend_names,
                                get_backend, register_backend)
from unrectify.formulations import (BUILTIN, DOMAINS, STATUSES, Certificate, Encoding, InputError,
                                    LicenseLimitError, Model, ModelClassError, SolverUnavailableError,
                                    TrainingProblem, UnknownNameError, UnrectifyError, available_encodings,
                                    build_training_model, certify, get_encoding, random_instance,
                                    register_encoding)

from unrectify.formulations.fixed_weight import (FixedNetwork, build_bound_tightening_model, build_inversion_model,
                                       build_output_bound_model)

from .api import formulate, solve
from .fixed import FixedSolution, invert, optimize_output, tighten_bounds
from .routing import Route, route
from .verify import VerifyReport, Verdict, verify

__version__ = "0.1.0"

__all__ = [
    "Backend", "Capabilities", "Result", "Route", "STATUSES", "register_backend", "route",
    "BUILTIN", "DOMAINS", "Certificate", "Encoding", "InputError", "LicenseLimitError", "Model",
    "ModelClassError", "Solution", "SolverUnavailableError", "TrainingProblem", "UnknownNameError",
    "UnrectifyError", "Verdict", "VerifyReport", "available_backends", "available_encodings", "backend_names",
    "build_training_model", "certify", "formulate", "get_backend", "get_encoding", "random_instance",
    "register_encoding", "solve", "verify", "FixedNetwork", "FixedSolution", "build_bound_tightening_model",
    "build_inversion_model", "build_output_bound_model", "invert", "optimize_output", "tighten_bounds",
]
