"""The paper's un-rectified ReLU (split form)."""

from __future__ import annotations

import numpy as np

from ..model import Model
from .base import Encoding, register_encoding


@register_encoding
class Split(Encoding):
    r"""Split encoding (Tung & Hwang):

    .. math::  x = d z, \qquad d z \ge 0, \qquad (1 - d) z \le 0, \qquad d \in \{0,1\} \text{ or } [0,1].

    Tight: with ``d in [0,1]``, ``z > 0`` forces ``d = 1`` (from ``(1-d) z <= 0``) and ``z < 0``
    forces ``d = 0`` (from ``d z >= 0``), so ``x = max(z, 0)`` exactly and the relaxed problem has
    the binary optimum.  Rows per unit and sample: 3 (one equality, two bilinear inequalities).
    """

    name = "split"
    tight = True
    tight_note = "d in [0,1] with dz >= 0, (1-d)z <= 0 forces x = relu(z) (optimality preservation theorem)"

    def add_relu(self, model: Model, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 domain: str, tag: str) -> dict[str, np.ndarray]:
        X = model.add_var(f"X{tag}", Z.shape, 0.0, np.maximum(hi, 0.0))
        D = self.activation(model, f"D{tag}", lo, hi, domain)
        model.add_constraints(f"x_eq_dz{tag}", "==", np.zeros(Z.shape), linear=[(1.0, X)], bilinear=[(-1.0, D, Z)])
        model.add_constraints(f"dz_ge_0{tag}", ">=", np.zeros(Z.shape), bilinear=[(1.0, D, Z)])
        model.add_constraints(f"one_minus_d_z_le_0{tag}", "<=", np.zeros(Z.shape),
                              linear=[(1.0, Z)], bilinear=[(-1.0, D, Z)])
        return {"X": X, "D": D}
