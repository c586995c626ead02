r"""Fixed-weight ReLU networks: verification and inversion as mixed-integer programs (numpy only).

A trained network with weights ``(W_1, b_1), ..., (W_L, b_L)`` (``W_l`` of shape
``(n_l, n_{l-1})``) is *data* here; the unknown is its input ``x`` in a box
``lo <= x <= hi``.  With ``z_l = W_l a_{l-1} + b_l``, ``a_0 = x``, ``a_l = relu(z_l)`` for the
hidden layers and the affine output ``y = z_L``, two problems are built:

* **output bound** (verification): ``max`` (or ``min``) ``y_k`` over the input box;
* **inversion**: the input whose output is closest to a target ``t``,
  ``min ||y - t||_1`` (epigraph ``s >= y - t, s >= t - y``, objective ``sum s``: a MILP with
  a linear encoding), ``min ||y - t||_2^2`` (objective ``y.y - 2 t.y + t.t``: a convex MIQP)
  or ``min ||y - t||_inf`` (one epigraph variable per row).

Every ReLU goes through a registered encoding (``bigm``, ``split``, ``sign``,
``complementarity``, yours), which needs interval bounds ``L <= z <= U`` on every
pre-activation.  :class:`FixedNetwork` computes them over the input box, solver-free:

* ``interval`` (interval arithmetic, exact for the first layer):
  ``[L_l, U_l] = [W_l^+ l_{l-1} + W_l^- u_{l-1} + b_l,  W_l^+ u_{l-1} + W_l^- l_{l-1} + b_l]``
  with ``W^+ = max(W, 0)``, ``W^- = min(W, 0)`` and ``[l, u] = [relu(L), relu(U)]`` of the
  previous layer (``[lo, hi]`` for the input);
* ``crown`` (linear back-substitution, as in CROWN/DeepPoly): every earlier ReLU is bounded by
  two lines, ``s^l z <= relu(z) <= s^u z + t^u`` with, for an unstable unit ``L < 0 < U``,
  ``s^u = U / (U - L)``, ``t^u = -L U / (U - L)`` and ``s^l = 1[U >= -L]`` (and ``relu(z) = z`` or
  ``0`` for stable units).  A bound of ``z_k`` is written as ``Lambda a_j + c`` and pushed back
  one layer at a time (positive coefficients take the lower line for a lower bound, negative
  ones the upper line, and conversely), ending as a linear function of ``x`` minimised over the
  box in closed form.  The result is intersected with the interval bounds, so it is never
  looser.  Tighter bounds mean smaller big-M constants, more units of known sign (their
  activation is fixed, no branching) and stronger relaxations.
* explicit bounds ``[(L_1, U_1), ...]`` (:meth:`FixedNetwork.check_bounds`), e.g. from
  optimisation-based tightening: :func:`build_bound_tightening_model` states "max and min every
  unit of layer ``k``" as one separable model (the LP relaxation with ``bigm``/``interval``);
  ``unrectify.fixed.tighten_bounds`` solves it layer by layer.

A leading batch axis ``B`` gives independent copies (one row per target, or one output index
per row); they share the bounds.  Builders return a :class:`FixedWeightModel`: the
:class:`Model` plus index maps from the solver's point back to inputs and outputs.

The code has one module per job: :mod:`unrectify.formulations.fixed_network` (the network, its
validation and its bounds) and :mod:`unrectify.formulations.fixed_models` (the model builders);
this module keeps the public names importable from one place.
"""

from __future__ import annotations

from .fixed_models import (NORMS, SENSES, FixedWeightModel, build_bound_tightening_model, build_inversion_model,
                           build_output_bound_model)
from .fixed_network import BOUND_METHODS, FixedNetwork, Weights

__all__ = ["BOUND_METHODS", "NORMS", "SENSES", "Weights", "FixedNetwork", "FixedWeightModel",
           "build_bound_tightening_model", "build_inversion_model", "build_output_bound_model"]
