"""Build the declarative model of a training problem under a given encoding.

Layer ``l`` (1-based) of the network contributes

    Z_l = X_{l-1} W_l^T + b_l          (hidden layers; bilinear when both factors are variables)
    X_l = relu(Z_l)                    (through the chosen encoding)

and the output layer defines residual variables ``R = X_{L-1} W_L^T + b_L - Y``.  The loss is
written on the residuals only, ``(1/N) sum R^2`` (convex) for ``mse`` or ``(1/N) sum T`` with
``T >= R, T >= -R`` for ``mae``: keeping the nonconvexity out of the objective is what gives
spatial branch-and-bound useful lower bounds.  Every variable carries the interval bounds
propagated from the data and the weight box.

Optional symmetry breaking, always added identically to every encoding and domain:

* ``permutation``: order the biases of every hidden layer, ``b_l[j] <= b_l[j+1]``.  Any network
  can be permuted into that order without changing its function.
* ``scaling``: with a single output, put every read-out weight of the last hidden layer on the
  box, ``v_j^2 = B^2``.  Positive scaling ``(w_j, b_j, v_j) -> (a w_j, a b_j, v_j / a)`` keeps the
  function; ``a = |v_j| / B <= 1`` shrinks the in-weights (the box still holds) and makes
  ``|v_j| = B`` (a unit with ``v_j = 0`` is replaced by ``w_j = b_j = 0``, ``v_j = B``).
  Scaling first and permuting afterwards shows both can be imposed together.

Neither changes the optimal value; both remove equivalent copies of every solution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .encodings import Encoding, get_encoding
from .errors import InputError, UnknownNameError
from .model import Model
from .network import forward
from .problem import TrainingProblem


@dataclass
class Operand:
    """Either a constant array or a block of variable indices."""

    value: np.ndarray
    is_var: bool


def affine_rows(Xp: Operand, W: Operand, b: Operand):
    """Terms of ``Xp W^T + b`` for rows ``(N, n_out)``: returns ``(linear, bilinear, constant)``."""
    linear, bilinear = [], []
    const = 0.0
    xs, ws = Xp.value[:, None, :], W.value[None, :, :]
    if Xp.is_var and W.is_var:
        bilinear.append((1.0, xs, ws))
    elif Xp.is_var:
        linear.append((ws, xs))
    elif W.is_var:
        linear.append((xs, ws))
    else:
        const = const + np.einsum("nk,jk->nj", Xp.value, W.value)
    if b.is_var:
        linear.append((1.0, b.value[None, :, None]))
    else:
        const = const + b.value[None, :]
    return linear, bilinear, const


@dataclass
class TrainingModel:
    """A :class:`Model` plus the map from its variables back to the network."""

    model: Model
    problem: TrainingProblem
    encoding: Encoding
    domain: str
    symmetry_breaking: tuple[str, ...]
    layers: list[dict[str, np.ndarray]] = field(default_factory=list)   # per modelled hidden layer: Z, X, (D)
    layer_numbers: list[int] = field(default_factory=list)            # 1-based layer of each entry
    weight_vars: list[tuple[Operand, Operand]] = field(default_factory=list)

    def weights(self, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        v = np.asarray(v, dtype=float)
        return [tuple(op.value.astype(float) if not op.is_var else v[op.value] for op in pair)
                for pair in self.weight_vars]

    def activations(self, v: np.ndarray) -> list[dict[str, np.ndarray]]:
        v = np.asarray(v, dtype=float)
        return [{k: v[idx] for k, idx in layer.items()} for layer in self.layers]

    def relu_gap(self, v: np.ndarray) -> float:
        """max |x - relu(z)| over hidden units and samples: zero iff the point is a ReLU network."""
        gaps = [np.abs(a["X"] - np.maximum(a["Z"], 0.0)).max(initial=0.0) for a in self.activations(v)]
        return float(max(gaps, default=0.0))

    def point_from_weights(self, weights) -> np.ndarray:
        """The model point of a ReLU network: forward pass values, ``d = 1[z > 0]``."""
        v = np.zeros(self.model.n_vars)
        for (Wop, bop), (W, b) in zip(self.weight_vars, weights):
            if Wop.is_var:
                v[Wop.value] = W
            if bop.is_var:
                v[bop.value] = b
        zs, xs = forward(weights, self.problem.X)
        for layer, l in zip(self.layers, self.layer_numbers):
            z, x = zs[l - 1], xs[l - 1]
            v[layer["Z"]] = z
            v[layer["X"]] = x
            if "D" in layer:
                v[layer["D"]] = (z > 0).astype(float)
        r = zs[-1] - self.problem.Y
        blocks = self.model.blocks
        v[blocks["R"]] = r
        if "T" in blocks:
            v[blocks["T"]] = np.abs(r)
        return v

    def round_activations(self, v: np.ndarray) -> np.ndarray:
        """Map a relaxed point to the binary form: ``d = 1[z > 0]``, everything else kept."""
        v = np.array(v, dtype=float)
        for layer in self.layers:
            if "D" in layer:
                v[layer["D"]] = (v[layer["Z"]] > 0).astype(float)
        return v


SYMMETRY_KINDS = ("permutation", "scaling")


def symmetry_kinds(value: bool | str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalise a symmetry-breaking request: ``True`` = permutation, ``"all"`` = every kind."""
    if value is None or value is False or value == "none" or value == "":
        return ()
    if value is True:
        return ("permutation",)
    if value == "all":
        return SYMMETRY_KINDS
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, str) for v in items):
        raise InputError(f"symmetry breaking must be a bool, a name or a list of names, got {value!r}")
    if not items:
        return ()     # an empty list of kinds (e.g. a solution's record of none applied)
    items = [k.strip() for item in items for k in item.split(",") if k.strip()]
    if not items:
        raise InputError(f"empty symmetry breaking {value!r}; choose from {', '.join(SYMMETRY_KINDS)}, all, none")
    for k in items:
        if k in ("all", "none"):
            raise InputError(f"symmetry breaking {k!r} stands alone; it cannot be combined with other kinds "
                             f"(got {','.join(items)})")
        if k not in SYMMETRY_KINDS:
            raise UnknownNameError(f"unknown symmetry breaking {k!r}; choose from {', '.join(SYMMETRY_KINDS)}, all, none")
        if items.count(k) > 1:
            raise InputError(f"symmetry breaking {k!r} given twice")
    return tuple(k for k in SYMMETRY_KINDS if k in items)


def build_training_model(problem: TrainingProblem, encoding: str | Encoding = "split",
                         domain: str = "interval", symmetry_breaking: bool | str | Sequence[str] = False
                         ) -> TrainingModel:
    """Formulate ``problem`` with ``encoding`` in ``domain`` (``binary`` | ``interval``)."""
    sym = symmetry_kinds(symmetry_breaking)
    if "scaling" in sym and symmetry_breaking != "all" and problem.widths[-1] != 1:
        # named explicitly it would be dropped without a word ("all" means every kind that applies)
        raise InputError(f"symmetry breaking 'scaling' needs a single-output network; widths "
                         f"{','.join(map(str, problem.widths))} have {problem.widths[-1]} outputs")
    enc = get_encoding(encoding)
    enc.check_domain(domain)
    P = problem
    B = P.weight_bound
    N, L = P.n_samples, P.n_layers
    m = Model(f"{enc.name}-{domain}")
    tm = TrainingModel(m, P, enc, domain, sym)
    bounds = P.bounds()
    Xp = Operand(P.X, False)
    for l in range(1, L + 1):
        n_out, n_in = P.widths[l], P.widths[l - 1]
        if l in P.frozen:
            W = Operand(P.frozen[l][0], False)
            b = Operand(P.frozen[l][1], False)
        else:
            W = Operand(m.add_var(f"W{l}", (n_out, n_in), -B, B), True)
            b = Operand(m.add_var(f"b{l}", (n_out,), -B, B), True)
        tm.weight_vars.append((W, b))
        lin, bil, const = affine_rows(Xp, W, b)
        if l < L and not (W.is_var or b.is_var or Xp.is_var):
            # a frozen layer on constant input is data: no variables, no encoding
            Xp = Operand(np.maximum(const, 0.0), False)
            continue
        lo, hi = bounds[l - 1]
        if l < L:
            Z = m.add_var(f"Z{l}", (N, n_out), lo, hi)
            # Z - (Xp W^T + b) = const
            m.add_constraints(f"affine{l}", "==", const, linear=[(1.0, Z)] + [(-c, i) for c, i in lin],
                              bilinear=[(-c, a, bb) for c, a, bb in bil], shape=(N, n_out))
            blocks = enc.add_relu(m, Z, lo, hi, domain, str(l))
            tm.layers.append({"Z": Z, **blocks})
            tm.layer_numbers.append(l)
            Xp = Operand(blocks["X"], True)
            if "permutation" in sym and b.is_var and n_out > 1 and (l + 1) not in P.frozen:
                m.add_constraints(f"order_b{l}", "<=", np.zeros(n_out - 1),
                                  linear=[(1.0, b.value[:-1]), (-1.0, b.value[1:])])
        else:
            if "scaling" in sym and n_out == 1 and W.is_var and L - 1 not in P.frozen:
                m.add_constraints("scale_v", "==", np.full(n_in, B * B), bilinear=[(1.0, W.value[0], W.value[0])])
            R = m.add_var("R", (N, n_out), lo - P.Y, hi - P.Y)
            # R - (Xp W^T + b) = const - Y
            m.add_constraints("residual", "==", const - P.Y, linear=[(1.0, R)] + [(-c, i) for c, i in lin],
                              bilinear=[(-c, a, bb) for c, a, bb in bil], shape=(N, n_out))
            if P.loss == "mse":
                m.set_objective(quadratic=[(1.0 / N, R, R)])
            else:
                T = m.add_var("T", (N, n_out), 0.0, np.maximum(np.abs(lo - P.Y), np.abs(hi - P.Y)))
                m.add_constraints("abs_pos", ">=", np.zeros((N, n_out)), linear=[(1.0, T), (-1.0, R)])
                m.add_constraints("abs_neg", ">=", np.zeros((N, n_out)), linear=[(1.0, T), (1.0, R)])
                m.set_objective(linear=[(1.0 / N, T)])
    m.meta.update(encoding=enc.name, domain=domain, symmetry_breaking=list(sym))
    return tm
