"""Complementarity (MPCC) encoding: no activation variable."""

from __future__ import annotations

import numpy as np

from ..model import Model
from .base import Encoding, register_encoding


@register_encoding
class Complementarity(Encoding):
    r"""Complementarity encoding:

    .. math::  x \ge 0, \qquad x \ge z, \qquad x (x - z) = 0.

    No activation variable, hence only the ``interval`` (continuous) form.  Tight: ``x >= 0``
    and ``x - z >= 0`` with a zero product force one of them to vanish, i.e. ``x = max(z, 0)``.
    It is a mathematical program with complementarity constraints: LICQ fails at every point,
    which hurts local solvers but not spatial branch-and-bound.  Rows per unit and sample: 2.
    """

    name = "complementarity"
    domains = ("interval",)
    tight = True
    tight_note = "x >= 0, x >= z, x(x - z) = 0 leaves only x = relu(z)"

    def add_relu(self, model: Model, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 domain: str, tag: str) -> dict[str, np.ndarray]:
        X = model.add_var(f"X{tag}", Z.shape, 0.0, np.maximum(hi, 0.0))
        model.add_constraints(f"x_ge_z{tag}", ">=", np.zeros(Z.shape), linear=[(1.0, X), (-1.0, Z)])
        model.add_constraints(f"x_perp{tag}", "==", np.zeros(Z.shape), bilinear=[(1.0, X, X), (-1.0, X, Z)])
        return {"X": X}
