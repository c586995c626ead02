r"""A fixed-weight ReLU network on an input box and its pre-activation bounds (numpy only).

One job: validate the network and the box, evaluate it, and bound every pre-activation over
the box by interval arithmetic or CROWN back-substitution (the mathematics is in
:mod:`unrectify.formulations.fixed_weight`).  The mixed-integer models built on it are in
:mod:`unrectify.formulations.fixed_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from .box_bounds import affine_range, backsubstitute, relu_lines
from .errors import InputError, UnknownNameError
from .network import forward
from .problem import MAX_DATA
from .validation import check_box, check_weights
from .validation import finite_array as _finite_array

BOUND_METHODS = ("interval", "crown")

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
        big = max(max(float(np.abs(W).max(initial=0)), float(np.abs(b).max(initial=0))) for W, b in layers)
        if big > MAX_DATA or max(np.abs(lo).max(initial=0), np.abs(hi).max(initial=0)) > MAX_DATA:
            # bounds and forward passes overflow long before; as for training data
            raise InputError(f"weights or input box have values above {MAX_DATA:g} in magnitude; rescale them")
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
            L, U = affine_range(W, b, lo, hi)
            out.append((L, U))
            lo, hi = np.maximum(L, 0.0), np.maximum(U, 0.0)
        return out

    @cached_property
    def crown_bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        W1, b1 = self.weights[0]
        out = [affine_range(W1, b1, self.input_lo, self.input_hi)]  # exact for one affine layer
        relax = []
        for k in range(1, self.n_layers):
            L, U = out[-1]
            relax.append(relu_lines(L, U))
            Wk, bk = self.weights[k]
            iL, iU = affine_range(Wk, bk, np.maximum(L, 0.0), np.maximum(U, 0.0))
            cL, cU = self._backsubstitute(k, relax)
            out.append((np.maximum(iL, cL), np.minimum(iU, cU)))
        return out

    def _backsubstitute(self, k: int, relax) -> tuple[np.ndarray, np.ndarray]:
        """CROWN bounds of ``z_{k+1}`` (0-based layer ``k``) from the lines of layers ``< k``:
        :func:`~unrectify.formulations.box_bounds.backsubstitute` on the one input box."""
        W, b = self.weights[k]
        lines = [tuple(a[None] for a in r) for r in relax]
        mid, rad = 0.5 * (self.input_lo + self.input_hi), 0.5 * (self.input_hi - self.input_lo)
        (lamU, cU), (lamL, cL) = (backsubstitute(self.weights, W[None], b[None], lines, upper) for upper in (True, False))
        return (cL[0] + lamL[0] @ mid - np.abs(lamL[0]) @ rad,
                cU[0] + lamU[0] @ mid + np.abs(lamU[0]) @ rad)

    def stable_units(self, method: str = "interval") -> dict[str, int]:
        """Hidden units of known sign over the box (their activation needs no branching)."""
        hidden = self.bounds(method)[:-1]
        active = sum(int(np.sum(L >= 0)) for L, _ in hidden)
        inactive = sum(int(np.sum(U <= 0)) for _, U in hidden)
        total = sum(len(L) for L, _ in hidden)
        return {"hidden_units": total, "active": active, "inactive": inactive,
                "unstable": total - active - inactive}
