"""Big-M encoding with propagated interval bounds."""

from __future__ import annotations

import numpy as np

from ..model import Model
from .base import Encoding, register_encoding


@register_encoding
class BigM(Encoding):
    r"""Big-M encoding with bounds ``L <= z <= U`` (propagated from the data and weight box):

    .. math::  x \ge z,\quad x \ge 0,\quad x \le z - L (1 - d),\quad x \le U d,\quad d \in \{0,1\}.

    Linear in ``(x, z, d)``.  Exact with binary ``d``.  **Not tight**: with ``d in [0,1]`` the
    feasible set of ``(z, x)`` is the triangle hull of the ReLU graph over ``[L, U]`` (for
    ``L < 0 < U``), which contains points with ``x > relu(z)``.  Rows per unit and sample: 3
    (``x >= 0`` is a bound).
    """

    name = "bigm"
    tight = False
    tight_note = "d in [0,1] gives the triangle hull of the ReLU graph over [L, U], so x > relu(z) is feasible"

    def add_relu(self, model: Model, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 domain: str, tag: str) -> dict[str, np.ndarray]:
        X = model.add_var(f"X{tag}", Z.shape, 0.0, np.maximum(hi, 0.0))
        D = self.activation(model, f"D{tag}", lo, hi, domain)
        zero = np.zeros(Z.shape)
        model.add_constraints(f"x_ge_z{tag}", ">=", zero, linear=[(1.0, X), (-1.0, Z)])
        # x - z - L d <= -L  <=>  x <= z - L (1 - d)
        model.add_constraints(f"x_le_z_m{tag}", "<=", -lo, linear=[(1.0, X), (-1.0, Z), (-lo, D)])
        model.add_constraints(f"x_le_ud{tag}", "<=", zero, linear=[(1.0, X), (-np.maximum(hi, 0.0), D)])
        return {"X": X, "D": D}
