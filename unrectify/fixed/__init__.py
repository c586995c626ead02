"""Entry verbs for fixed-weight networks: ``optimize_output`` (verification) and ``invert``.

Both formulate the problem solver-free (:mod:`unrectify.formulations.fixed_weight`), pick a backend
(``backend="auto"``: HiGHS for the linear ``bigm``/``binary`` models, SCIP for bilinear or
quadratic ones; the reason is in ``FixedSolution.extra["route"]``), solve under a wall-clock
guard and certify the answer in numpy: the model's constraint violation at the returned
point, and an ordinary forward pass of the network at the returned input compared with the
model's output variables.  For a tight encoding or the binary domain the two agree up to
solver tolerances (``OUTPUT_TOL``); a non-tight relaxation (e.g. ``bigm``/``interval``) is
caught by the same check (status ``uncertified``).

Modules, one job each: :mod:`~unrectify.fixed.result` (the :class:`FixedSolution` type),
:mod:`~unrectify.fixed.solve` (solve and certify: ``solve_fixed``, ``optimize_output``,
``invert``), :mod:`~unrectify.fixed.obbt` (LP bound tightening, ``tighten_bounds``).

Example::

    from unrectify.formulations.fixed_weight import FixedNetwork
    from unrectify.fixed import optimize_output, invert
    net = FixedNetwork([(W1, b1), (W2, b2)], input_lo=0.0, input_hi=1.0)
    sol = optimize_output(net, 0, "max")          # exact max of output 0 over the box
    sol.objective, sol.bound, sol.input, sol.certified_optimal
    inv = invert(net, target=[0.3], norm="l1")    # the input whose output is closest to 0.3
"""

from unrectify.formulations.fixed_weight import FixedNetwork

from .obbt import OBBT_SLACK, tighten_bounds
from .result import OUTPUT_TOL, FixedSolution
from .solve import invert, optimize_output, solve_fixed

__all__ = [
    "OBBT_SLACK",
    "OUTPUT_TOL",
    "FixedNetwork",
    "FixedSolution",
    "invert",
    "optimize_output",
    "solve_fixed",
    "tighten_bounds",
]
