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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .network import forward

from .builder import Operand, affine_rows
from .encodings import Encoding, get_encoding
from .errors import InputError, UnknownNameError
from .model import Model
from .validation import check_box, check_weights
from .validation import finite_array as _finite_array

BOUND_METHODS = ("interval", "crown")
NORMS = ("l1", "l2", "linf")
SENSES = ("max", "min")

Weights = list[tuple[np.ndarray, np.ndarray]]


class FixedNetwork:
    """A trained ReLU network with an input box, validated on construction (no solver involved).

    Parameters
    ----------
    weights : ``[(W_1, b_1), ..., (W_L, b_L)]``, ``W_l`` of shape ``(n_l, n_{l-1})``, ``b_l`` of
        shape ``(n_l,)``; hidden layers use ReLU, the last layer is affine.  ``L >= 1``.
    input_lo, input_hi : the input box, scalars or arrays of shape ``(n_0,)``; finite,
        ``input_lo <= input_hi``.
    """

    def __init__(self, weights: Sequence[tuple[np.ndarray, np.ndarray]], input_lo=0.0, input_hi=1.0) -> None:
        layers = check_weights(weights)
        self.weights: Weights = layers
        lo, hi = check_box(input_lo, input_hi, layers[0][0].shape[1])
        self.input_lo, self.input_hi = lo, hi

    # -- shape --------------------------------------------------------------------------
    @property
    def widths(self) -> tuple[int, ...]:
        return (self.weights[0][0].shape[1],) + tuple(W.shape[0] for W, _ in self.weights)

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    @property
    def n_inputs(self) -> int:
        return self.widths[0]

    @property
    def n_outputs(self) -> int:
        return self.widths[-1]

    def with_box(self, input_lo, input_hi) -> FixedNetwork:
        """The same weights on another input box."""
        return FixedNetwork(self.weights, input_lo, input_hi)

    def truncated(self, layers: int) -> FixedNetwork:
        """The first ``layers`` affine layers (the last one becomes the affine output)."""
        if not 1 <= int(layers) <= self.n_layers:
            raise InputError(f"cannot truncate to {layers} layers; the network has {self.n_layers}")
        return FixedNetwork(self.weights[: int(layers)], self.input_lo, self.input_hi)

    def check_bounds(self, bounds) -> list[tuple[np.ndarray, np.ndarray]]:
        """Validate explicit pre-activation bounds ``[(L_1, U_1), ..., (L_L, U_L)]`` (e.g. from
        optimisation-based tightening): shapes ``(n_l,)``, finite, ``L <= U``."""
        bounds = list(bounds)
        if len(bounds) != self.n_layers:
            raise InputError(f"bounds list has {len(bounds)} layers, the network has {self.n_layers}")
        out = []
        for l, (pair, n) in enumerate(zip(bounds, self.widths[1:]), start=1):
            L = _finite_array(f"layer {l} lower bound", pair[0]).reshape(-1)
            U = _finite_array(f"layer {l} upper bound", pair[1]).reshape(-1)
            if L.shape != (n,) or U.shape != (n,):
                raise InputError(f"layer {l} bounds must have shape ({n},), got {L.shape} and {U.shape}")
            if np.any(L > U):
                raise InputError(f"layer {l} has a lower bound above its upper bound")
            out.append((L, U))
        return out

    def resolve_bounds(self, bounds) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
        """``(bounds list, name)`` from a method name or an explicit list."""
        if isinstance(bounds, str):
            return self.bounds(bounds), bounds
        return self.check_bounds(bounds), "given"

    def __repr__(self) -> str:
        return f"FixedNetwork(widths={'-'.join(map(str, self.widths))})"

    # -- numerics -----------------------------------------------------------------------
    def preactivations(self, X) -> list[np.ndarray]:
        """Pre-activations ``z_1..z_L`` of every row of ``X`` (``(N, n_0)`` or ``(n_0,)``)."""
        X = _finite_array("network input", X)
        h = X[None, :] if X.ndim == 1 else X
        if h.ndim != 2 or h.shape[1] != self.n_inputs:
            raise InputError(f"network input must have {self.n_inputs} columns, got shape {X.shape}")
        zs, _ = forward(self.weights, h)   # the one forward pass (formulations/network.py)
        return zs if X.ndim == 2 else [z[0] for z in zs]

    def forward(self, X) -> np.ndarray:
        """ReLU forward pass (hidden ReLU, affine output); keeps a 1-D input 1-D."""
        return self.preactivations(X)[-1]

    def bounds(self, method: str = "interval") -> list[tuple[np.ndarray, np.ndarray]]:
        """Bounds ``(L_l, U_l)`` (each ``(n_l,)``) on every pre-activation over the input box,
        output layer included; ``method`` is ``interval`` or ``crown`` (see module docstring)."""
        if method == "interval":
            return self.interval_bounds
        if method == "crown":
            return self.crown_bounds
        raise UnknownNameError(f"unknown bound method {method!r}; choose one of {', '.join(BOUND_METHODS)}")

    @cached_property
    def interval_bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        lo, hi = self.input_lo, self.input_hi
        for W, b in self.weights:
            L, U = _interval_affine(W, b, lo, hi)
            out.append((L, U))
            lo, hi = np.maximum(L, 0.0), np.maximum(U, 0.0)
        return out

    @cached_property
    def crown_bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        W1, b1 = self.weights[0]
        out = [_interval_affine(W1, b1, self.input_lo, self.input_hi)]  # exact for one affine layer
        relax = []
        for k in range(1, self.n_layers):
            L, U = out[-1]
            relax.append(_relu_lines(L, U))
            Wk, bk = self.weights[k]
            iL, iU = _interval_affine(Wk, bk, np.maximum(L, 0.0), np.maximum(U, 0.0))
            cL, cU = self._backsubstitute(k, relax)
            out.append((np.maximum(iL, cL), np.minimum(iU, cU)))
        return out

    def _backsubstitute(self, k: int, relax) -> tuple[np.ndarray, np.ndarray]:
        """CROWN bounds of ``z_{k+1}`` (0-based layer ``k``) from the lines of layers ``< k``."""
        W, b = self.weights[k]
        lamL, lamU = W.copy(), W.copy()
        cL, cU = b.copy(), b.copy()
        for j in range(k - 1, -1, -1):
            sl, su, tu = relax[j]
            pL, nL = np.maximum(lamL, 0.0), np.minimum(lamL, 0.0)
            pU, nU = np.maximum(lamU, 0.0), np.minimum(lamU, 0.0)
            cL = cL + nL @ tu
            cU = cU + pU @ tu
            gL = pL * sl + nL * su          # coefficients on z_j
            gU = pU * su + nU * sl
            Wj, bj = self.weights[j]
            cL, cU = cL + gL @ bj, cU + gU @ bj
            lamL, lamU = gL @ Wj, gU @ Wj
        lo, hi = self.input_lo, self.input_hi
        low = cL + np.maximum(lamL, 0.0) @ lo + np.minimum(lamL, 0.0) @ hi
        up = cU + np.maximum(lamU, 0.0) @ hi + np.minimum(lamU, 0.0) @ lo
        return low, up

    def stable_units(self, method: str = "interval") -> dict[str, int]:
        """Hidden units of known sign over the box (their activation needs no branching)."""
        hidden = self.bounds(method)[:-1]
        active = sum(int(np.sum(L >= 0)) for L, _ in hidden)
        inactive = sum(int(np.sum(U <= 0)) for _, U in hidden)
        total = sum(len(L) for L, _ in hidden)
        return {"hidden_units": total, "active": active, "inactive": inactive,
                "unstable": total - active - inactive}


def _interval_affine(W, b, lo, hi):
    """Exact range of ``W x + b`` over the box ``[lo, hi]`` (centre-radius form of
    ``W^+ lo + W^- hi + b`` and ``W^+ hi + W^- lo + b``)."""
    centre = W @ ((lo + hi) * 0.5) + b
    radius = np.abs(W) @ ((hi - lo) * 0.5)
    return centre - radius, centre + radius


def _relu_lines(L, U):
    """Lines ``sl z <= relu(z) <= su z + tu`` valid on ``[L, U]`` (elementwise)."""
    active, inactive = L >= 0, U <= 0
    unstable = ~(active | inactive)
    width = np.where(unstable, U - L, 1.0)
    su = np.where(active, 1.0, np.where(unstable, U / width, 0.0))
    tu = np.where(unstable, -L * U / width, 0.0)
    sl = np.where(active, 1.0, np.where(unstable, (U >= -L).astype(float), 0.0))
    return sl, su, tu


# ---------------------------------------------------------------------- model builders
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


__all__ = ["BOUND_METHODS", "NORMS", "FixedNetwork", "FixedWeightModel", "build_bound_tightening_model",
           "build_inversion_model", "build_output_bound_model"]
