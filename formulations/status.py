"""The one status vocabulary of unrectify (every backend, result, table and JSON file uses it).

=================  ==========================================================================
``optimal``        a certified global optimum: the solver reported a global optimum AND the
                   independent numpy certificate agrees (feasible point, forward-pass loss
                   equal to the solver's objective; :func:`unrectify.formulations.certificate.gate`)
``uncertified``    the solver reported a global optimum but the certificate disagrees
                   (violated constraints, or its objective is not the network's loss)
``local``          a local solution (e.g. a KKT point of the ALM solver): never a global claim
``time_limit``     stopped by a time, iteration or node limit; a point may be available
``infeasible``     the solver proved the model infeasible
``error``          the solver failed (message says why)
=================  ==========================================================================

Backends map their native codes onto the *solver* statuses (all but ``uncertified``); the
certificate gate then turns a solver ``optimal`` into ``optimal`` or ``uncertified``.
"""

from __future__ import annotations

OPTIMAL = "optimal"
UNCERTIFIED = "uncertified"
LOCAL = "local"
TIME_LIMIT = "time_limit"
INFEASIBLE = "infeasible"
ERROR = "error"

#: statuses a backend may report (before the certificate gate)
SOLVER_STATUSES = (OPTIMAL, TIME_LIMIT, INFEASIBLE, LOCAL, ERROR)
#: statuses of a result (after the gate)
STATUSES = (OPTIMAL, UNCERTIFIED, LOCAL, TIME_LIMIT, INFEASIBLE, ERROR)

__all__ = ["ERROR", "INFEASIBLE", "LOCAL", "OPTIMAL", "SOLVER_STATUSES", "STATUSES", "TIME_LIMIT", "UNCERTIFIED"]
