"""Sign encoding: one bilinear inequality instead of the split pair."""

from __future__ import annotations

import numpy as np

from ..model import Model
from .base import Encoding, register_encoding


@register_encoding
class Sign(Encoding):
    r"""Sign encoding:

    .. math::  x = d z, \qquad (2d - 1) z \ge 0, \qquad d \in \{0,1\} \text{ or } [0,1].

    Exact with binary ``d`` (``d = 1`` needs ``z >= 0``, ``d = 0`` needs ``z <= 0``).  **Not tight**:
    ``d = 1/2`` satisfies ``(2d-1) z = 0`` for every ``z`` and gives ``x = z/2``, so a relaxed unit
    can output any ``x`` between ``z/2`` and ``relu(z)``, and the relaxed optimum can be strictly
    lower.  Rows per unit and sample: 2.
    """

    name = "sign"
    tight = False
    tight_note = "d = 1/2 satisfies (2d-1)z >= 0 for every z and gives x = z/2 != relu(z)"

    def add_relu(self, model: Model, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 domain: str, tag: str) -> dict[str, np.ndarray]:
        # x = dz ranges over [min(z,0)/2 ... ] so the ReLU upper bound is not valid: use |z| bounds.
        X = model.add_var(f"X{tag}", Z.shape, np.minimum(lo, 0.0), np.maximum(hi, 0.0))
        D = self.activation(model, f"D{tag}", lo, hi, domain)
        model.add_constraints(f"x_eq_dz{tag}", "==", np.zeros(Z.shape), linear=[(1.0, X)], bilinear=[(-1.0, D, Z)])
        model.add_constraints(f"sign{tag}", ">=", np.zeros(Z.shape), linear=[(-1.0, Z)], bilinear=[(2.0, D, Z)])
        return {"X": X, "D": D}
