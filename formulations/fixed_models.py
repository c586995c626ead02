r"""Mixed-integer models of fixed-weight networks: output bounds, inversion, bound tightening.

One job: turn a :class:`~unrectify.formulations.fixed_network.FixedNetwork` and resolved
bounds into a :class:`Model` (every ReLU through a registered encoding).  The mathematics is in
:mod:`unrectify.formulations.fixed_weight`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .builder import Operand, affine_rows
from .encodings import Encoding, get_encoding
from .errors import InputError, UnknownNameError
from .fixed_network import FixedNetwork, _finite_array
from .model import Model

NORMS = ("l1", "l2", "linf")
SENSES = ("max", "min")


@dataclass
class FixedWeightModel:
    """A :class:`Model` of a fixed-weight problem plus the maps back to the network.

    ``inputs``/``outputs`` are index arrays ``(B, n_0)``/``(B, n_L)`` into the model's point;
    ``layers`` holds the blocks of every hidden layer (``Z``, ``X`` and the encoding's others).
    The model always *minimises*; ``sign`` maps its objective to the user's
    (``user = sign * model``, ``-1`` for ``sense="max"``).
    """

    model: Model
    net: FixedNetwork
    encoding: Encoding
    domain: str
    kind: str                                   # "output_bound" | "inversion" | "bounds"
    inputs: np.ndarray
    outputs: np.ndarray
    layers: list[dict[str, np.ndarray]] = field(default_factory=list)
    sign: float = 1.0
    output_index: np.ndarray | None = None      # (B,) output optimised per row (output_bound)
    sense: str | None = None
    target: np.ndarray | None = None            # (B, n_L) (inversion)
    norm: str | None = None
    batched: bool = False                       # the caller gave a batch (keep the leading axis)
    bound_method: str = "interval"

    @property
    def batch(self) -> int:
        return int(self.inputs.shape[0])

    def input_value(self, v) -> np.ndarray:
        return np.asarray(v, dtype=float)[self.inputs]

    def output_value(self, v) -> np.ndarray:
        return np.asarray(v, dtype=float)[self.outputs]

    def row_objectives(self, outputs) -> np.ndarray:
        """User objective of each row computed from output values ``(B, n_L)``."""
        Yo = np.asarray(outputs, dtype=float).reshape(self.batch, -1)
        if self.kind in ("output_bound", "bounds"):
            return Yo[np.arange(self.batch), self.output_index]
        r = Yo - self.target
        if self.norm == "l1":
            return np.abs(r).sum(axis=1)
        if self.norm == "l2":
            return np.einsum("ij,ij->i", r, r)
        return np.abs(r).max(axis=1)

    def sampled_row_objectives(self, outputs) -> np.ndarray:
        """User objective of every row at each of ``S`` outputs ``(S, n_L)`` of inputs in the box
        (every row shares the box, so each input is feasible for each row): ``(S, B)``."""
        Ys = np.asarray(outputs, dtype=float).reshape(-1, self.net.n_outputs)
        if self.kind in ("output_bound", "bounds"):
            return Ys[:, self.output_index]
        r = Ys[:, None, :] - self.target[None, :, :]
        if self.norm == "l1":
            return np.abs(r).sum(axis=2)
        if self.norm == "l2":
            return np.einsum("sbj,sbj->sb", r, r)
        return np.abs(r).max(axis=2)

    def objective_from_outputs(self, outputs) -> float:
        """The user objective (sum over rows) of output values, e.g. of a forward pass."""
        return float(self.row_objectives(outputs).sum())

    def point_from_input(self, x) -> np.ndarray:
        """The model point of input ``x`` (``(B, n_0)``): forward-pass values, ``d = 1[z > 0]``,
        epigraph variables at their least feasible value.  Feasible for every tight or binary
        form; useful as a warm start and in tests."""
        x = np.asarray(x, dtype=float).reshape(self.batch, self.net.n_inputs)
        v = np.zeros(self.model.n_vars)
        v[self.inputs] = x
        zs = self.net.preactivations(x)
        for layer, z in zip(self.layers, zs[:-1]):
            v[layer["Z"]] = z
            v[layer["X"]] = np.maximum(z, 0.0)
            if "D" in layer:
                v[layer["D"]] = (z > 0).astype(float)
        y = zs[-1]
        v[self.outputs] = y
        blocks = self.model.blocks
        if "s" in blocks:
            r = np.abs(y - self.target)
            v[blocks["s"]] = r if self.norm == "l1" else r.max(axis=1, keepdims=True)
        return v


def _build_network(m: Model, net: FixedNetwork, B: int, enc: Encoding, domain: str, bounds):
    """Variables ``x`` (B, n_0) in the box, per hidden layer ``Z``/``X`` (+ the encoding's),
    and outputs ``y`` (B, n_L) tied by ``y = a_{L-1} W_L^T + b_L``; ``bounds`` a resolved list."""
    X0 = m.add_var("x", (B, net.n_inputs), net.input_lo, net.input_hi)
    prev = Operand(X0, True)
    layers = []
    L = net.n_layers
    Y = None
    for l, ((W, b), (lo, hi)) in enumerate(zip(net.weights, bounds), start=1):
        n = W.shape[0]
        lin, _, const = affine_rows(prev, Operand(W, False), Operand(b, False))
        lo_b = np.broadcast_to(lo, (B, n))
        hi_b = np.broadcast_to(hi, (B, n))
        name = f"Z{l}" if l < L else "y"
        V = m.add_var(name, (B, n), lo_b, hi_b)
        # V - a_{l-1} W^T = b
        m.add_constraints(f"affine{l}" if l < L else "output", "==", np.broadcast_to(const, (B, n)),
                          linear=[(1.0, V)] + [(-c, i) for c, i in lin], shape=(B, n))
        if l < L:
            blocks = enc.add_relu(m, V, lo_b, hi_b, domain, str(l))
            layers.append({"Z": V, **blocks})
            prev = Operand(blocks["X"], True)
        else:
            Y = V
    return X0, Y, layers


def _prepare(net: FixedNetwork, encoding, domain: str, bounds):
    if not isinstance(net, FixedNetwork):
        raise InputError(f"expected a FixedNetwork, got {type(net).__name__}")
    enc = get_encoding(encoding)
    enc.check_domain(domain)
    return (enc, *net.resolve_bounds(bounds))


def build_output_bound_model(net: FixedNetwork, output_index: int | Sequence[int] = 0, sense: str = "max",
                             encoding: str | Encoding = "bigm", domain: str = "binary",
                             bounds: str = "interval") -> FixedWeightModel:
    r"""Optimise one network output over the input box (verification).

    .. math::  \max_{lo \le x \le hi}\ y_k(x) \quad(\text{or } \min),\qquad y(x) = W_L a_{L-1} + b_L

    with every ReLU of ``a_l = relu(W_l a_{l-1} + b_l)`` replaced by ``encoding`` in ``domain``.
    With ``bigm``/``binary`` this is a MILP whose optimum is the exact maximum of ``y_k`` over the
    box.  ``output_index`` may be a sequence: one independent row per entry (row ``r`` optimises
    output ``output_index[r]``; the objective is their sum, so each row is optimal at the optimum).
    The model minimises ``-y_k`` for ``max``; ``FixedWeightModel.sign`` maps it back.
    """
    enc, blist, bname = _prepare(net, encoding, domain, bounds)
    if sense not in SENSES:
        raise UnknownNameError(f"unknown sense {sense!r}; choose max or min")
    batched = np.ndim(output_index) > 0
    try:
        idx = np.atleast_1d(np.asarray(output_index)).astype(np.int64, casting="same_kind")
    except TypeError:
        raise InputError(f"output_index must be an integer or integers, got {output_index!r}") from None
    if idx.ndim != 1 or idx.size == 0:
        raise InputError(f"output_index must be an integer or a non-empty 1-D list, got {output_index!r}")
    if np.any((idx < 0) | (idx >= net.n_outputs)):
        raise InputError(f"output_index {output_index!r} outside 0..{net.n_outputs - 1}")
    B = len(idx)
    m = Model(f"output_bound-{enc.name}-{domain}")
    X0, Y, layers = _build_network(m, net, B, enc, domain, blist)
    sign = -1.0 if sense == "max" else 1.0
    m.set_objective(linear=[(sign, Y[np.arange(B), idx])])
    m.meta.update(kind="output_bound", encoding=enc.name, domain=domain, sense=sense, bounds=bname)
    return FixedWeightModel(m, net, enc, domain, "output_bound", X0, Y, layers, sign=sign, output_index=idx,
                            sense=sense, batched=batched, bound_method=bname)


def build_inversion_model(net: FixedNetwork, target, norm: str = "l1", encoding: str | Encoding = "bigm",
                          domain: str = "binary", bounds: str = "interval") -> FixedWeightModel:
    r"""Find the input in the box whose output is closest to ``target`` (network inversion).

    .. math::  \min_{lo \le x \le hi} \|y(x) - t\|

    * ``l1``: epigraph ``s \ge y - t,\ s \ge t - y``, objective ``\sum s`` (MILP with ``bigm``);
    * ``l2`` (squared): objective ``\sum y^2 - 2 t^\top y + t^\top t``, no extra variables
      (a convex MIQP with ``bigm``; HiGHS cannot take it, SCIP or Gurobi can);
    * ``linf``: one ``s`` per row, ``s \ge \pm (y - t)``, objective ``\sum s``.

    ``target`` of shape ``(n_L,)`` or ``(B, n_L)``: ``B`` independent rows (objective summed).
    """
    enc, blist, bname = _prepare(net, encoding, domain, bounds)
    if norm not in NORMS:
        raise UnknownNameError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    t = _finite_array("target", target)
    batched = t.ndim == 2
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2 or t.shape[1] != net.n_outputs or t.shape[0] < 1:
        raise InputError(f"target must have shape ({net.n_outputs},) or (B, {net.n_outputs}), got {np.shape(target)}")
    B, nL = t.shape
    m = Model(f"inversion-{norm}-{enc.name}-{domain}")
    X0, Y, layers = _build_network(m, net, B, enc, domain, blist)
    oL, oU = blist[-1]
    worst = np.maximum(np.abs(oL - t), np.abs(oU - t))          # (B, nL) bound on |y - t|
    if norm == "l1":
        S = m.add_var("s", (B, nL), 0.0, worst)
        m.add_constraints("s_ge_r", ">=", -t, linear=[(1.0, S), (-1.0, Y)])
        m.add_constraints("s_ge_neg_r", ">=", t, linear=[(1.0, S), (1.0, Y)])
        m.set_objective(linear=[(1.0, S)])
    elif norm == "linf":
        S = m.add_var("s", (B, 1), 0.0, worst.max(axis=1, keepdims=True))
        m.add_constraints("s_ge_r", ">=", -t, linear=[(1.0, S), (-1.0, Y)])
        m.add_constraints("s_ge_neg_r", ">=", t, linear=[(1.0, S), (1.0, Y)])
        m.set_objective(linear=[(1.0, S)])
    else:
        m.set_objective(linear=[(-2.0 * t, Y)], quadratic=[(1.0, Y, Y)], constant=float(np.sum(t * t)))
    m.meta.update(kind="inversion", encoding=enc.name, domain=domain, norm=norm, bounds=bname)
    return FixedWeightModel(m, net, enc, domain, "inversion", X0, Y, layers, sign=1.0, target=t, norm=norm,
                            batched=batched, bound_method=bname)


def build_bound_tightening_model(net: FixedNetwork, layer: int, bounds="crown", encoding: str | Encoding = "bigm",
                                 domain: str = "interval", units=None) -> FixedWeightModel:
    r"""Optimisation-based bound tightening of layer ``layer`` (1-based) as one separable model.

    For every unit ``j`` in ``units`` (default: all of the layer) two independent rows of the
    network truncated after ``layer``: row ``r < J`` maximises ``z_{layer, j_r}``, row ``J + r``
    minimises it, objective ``\sum_r (-z_{r, j_r}) + \sum_r z_{J+r, j_r}``.  The rows share no
    variable, so an optimum of the sum is optimal in every row: each row's value is the
    tightened upper (lower) bound.  With ``domain="interval"`` (default, ``bigm``) this is the
    LP relaxation, solved once for the whole layer (classic OBBT); ``binary`` gives exact
    bounds at MILP cost.  ``bounds`` (a method or list) are the bounds of layers
    ``1..layer`` used in the encoding.
    """
    sub = net.truncated(layer)
    if isinstance(bounds, str):
        blist, bname = net.bounds(bounds)[:layer], bounds
    else:
        blist, bname = sub.check_bounds(list(bounds)[:layer]), "given"
    enc, blist, _ = _prepare(sub, encoding, domain, blist)
    n = sub.n_outputs
    units = np.arange(n) if units is None else np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size == 0 or np.any((units < 0) | (units >= n)):
        raise InputError(f"units must be a non-empty list of indices in 0..{n - 1}")
    J = len(units)
    idx = np.concatenate([units, units])
    m = Model(f"bounds{layer}-{enc.name}-{domain}")
    X0, Y, layers = _build_network(m, sub, 2 * J, enc, domain, blist)
    coef = np.concatenate([-np.ones(J), np.ones(J)])
    m.set_objective(linear=[(coef, Y[np.arange(2 * J), idx])])
    m.meta.update(kind="bounds", encoding=enc.name, domain=domain, layer=int(layer), bounds=bname)
    return FixedWeightModel(m, sub, enc, domain, "bounds", X0, Y, layers, sign=1.0, output_index=idx,
                            batched=True, bound_method=bname)
