"""The learning problem: data, architecture, loss and weight box (numpy only).

A fully connected network with widths ``n0, n1, ..., nL`` maps ``x`` to
``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L``; hidden layers use ReLU and the
output layer is affine.  The training problem is

    min_{W, b}  (1/N) sum_i ||f(x_i) - y_i||^2          (loss="mse")
             or (1/N) sum_i ||f(x_i) - y_i||_1          (loss="mae")
    s.t.        |W_l| <= B, |b_l| <= B  elementwise       (the weight box)

Exact global solvers need the box: with it every pre-activation has finite interval
bounds, propagated here layer by layer from the data (:meth:`TrainingProblem.bounds`).
Layers can be *frozen* (given fixed weights), which turns e.g. "train the first layer
under a fixed read-out" into a mixed-integer linear/quadratic program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError, UnknownNameError
from .network import forward, predict, relu  # noqa: F401  (re-exported: the one forward pass)
from .validation import check_weights as _check_weights
from .validation import finite_array, integer_at_least, nonnegative_number, parse_widths

LOSSES = ("mse", "mae")

Weights = list[tuple[np.ndarray, np.ndarray]]


def loss_value(pred: np.ndarray, Y: np.ndarray, loss: str) -> float:
    """(1/N) sum_i ||pred_i - y_i||^2 (mse) or ||.||_1 (mae)."""
    r = pred - Y
    n = max(r.shape[0], 1)
    if loss == "mse":
        return float(np.einsum("ij,ij->", r, r) / n)
    if loss == "mae":
        return float(np.abs(r).sum() / n)
    raise UnknownNameError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


#: largest magnitude accepted in data (squares must not overflow) and in propagated bounds
#: (exact solvers lose all precision far below float overflow)
MAX_DATA = 1e100
MAX_BOUND = 1e8


def _as_2d(name: str, a: np.ndarray) -> np.ndarray:
    arr = finite_array(name, a)          # numeric, real, finite
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{name} must be 1-D or 2-D (samples first), got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if np.abs(arr).max() > MAX_DATA:
        raise InputError(f"{name} has values above {MAX_DATA:g} in magnitude; rescale the data")
    return arr


@dataclass(eq=False)
class TrainingProblem:
    """Declarative ReLU training problem (validated on construction).

    Parameters
    ----------
    X : (N, n0) inputs, samples first.
    Y : (N, nL) targets; a 1-D ``Y`` means one output.
    widths : ``(n0, n1, ..., nL)`` including input and output widths, at least one hidden layer.
    loss : ``"mse"`` or ``"mae"``.
    weight_bound : the box ``B`` with ``|W|, |b| <= B`` for every layer; ``None`` for no box
        (accepted by the ALM solver only: exact solvers need finite bounds).
    frozen : optional ``{layer: (W, b)}`` with 1-based layer numbers; those weights are data.
    """

    X: np.ndarray
    Y: np.ndarray
    widths: tuple[int, ...]
    loss: str = "mse"
    weight_bound: float | None = 2.0
    frozen: Mapping[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.X = _as_2d("X", self.X)
        self.Y = _as_2d("Y", self.Y)
        if self.X.shape[0] != self.Y.shape[0]:
            raise InputError(f"X has {self.X.shape[0]} samples but Y has {self.Y.shape[0]}")
        widths = parse_widths(self.widths)
        if widths[0] != self.X.shape[1]:
            raise InputError(f"widths start with {widths[0]} but X has {self.X.shape[1]} columns")
        if widths[-1] != self.Y.shape[1]:
            raise InputError(f"widths end with {widths[-1]} but Y has {self.Y.shape[1]} columns")
        self.widths = widths
        if self.loss not in LOSSES:
            raise UnknownNameError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.weight_bound is not None:   # None: no box (only for the ALM solver)
            if isinstance(self.weight_bound, (bool, np.bool_, str, bytes)):
                raise InputError(f"weight bound must be a number, got {self.weight_bound!r}")
            try:
                B = float(self.weight_bound)
            except (TypeError, ValueError):
                raise InputError(f"weight bound must be a number, got {self.weight_bound!r}") from None
            if not np.isfinite(B) or B <= 0:
                raise InputError(f"weight bound B must be positive and finite, got {self.weight_bound!r}")
            if B > MAX_DATA:    # products of weights and data must stay finite in every solver
                raise InputError(f"weight bound B = {B:g} is above {MAX_DATA:g}; rescale the problem")
            self.weight_bound = B
        frozen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        try:
            items = dict(self.frozen).items()
        except (TypeError, ValueError):
            raise InputError("frozen must be a mapping {layer: (W, b)}") from None
        for layer, wb in items:
            if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= self.n_layers:
                raise InputError(f"frozen layer {layer!r} outside 1..{self.n_layers}")
            l = int(layer)
            [(W, b)] = _check_weights([wb], widths=(widths[l - 1], widths[l]), name=f"frozen layer {l}")
            frozen[l] = (W, b)
        if len(frozen) == self.n_layers:
            raise InputError("every layer is frozen: there is nothing to train")
        self.frozen = frozen

    # -- shape helpers -------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_layers(self) -> int:
        """Number of affine layers L (hidden layers + output)."""
        return len(self.widths) - 1

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        return self.widths[1:-1]

    def describe(self) -> dict:
        return {
            "samples": self.n_samples,
            "widths": list(self.widths),
            "loss": self.loss,
            "weight_bound": self.weight_bound,
            "frozen_layers": sorted(self.frozen),
        }

    # -- numerics --------------------------------------------------------------
    def bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Interval bounds ``lo <= Z_l <= hi`` (each ``(N, n_l)``) for every layer, by interval
        arithmetic: a box layer gives ``|z_j| <= B (sum_k max|x_k| + 1)``, a frozen one the exact
        image of the input interval under ``W``.

        Hidden-layer bounds are the constants of the ReLU encodings (big-M, complementarity
        boxes) and are refused above :data:`MAX_BOUND`.  The output layer has no ReLU: its bounds
        are only the box of the residual variables, so they are only held below :data:`MAX_DATA`
        (squared residuals stay finite).  Interval arithmetic grows them as ``B^L``: a 1-2-1 net
        with ``B = 1e6`` has hidden bounds of 2e6 but an output range of 4e12."""
        B = self.weight_bound
        if B is None:
            raise InputError("exact formulations need a finite weight bound B (weight_bound=None is for the ALM solver)")
        lo = hi = self.X
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for l in range(1, self.n_layers + 1):
            if l in self.frozen:
                W, b = self.frozen[l]
                Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
                zlo = lo @ Wp.T + hi @ Wn.T + b
                zhi = hi @ Wp.T + lo @ Wn.T + b
            else:
                mag = np.maximum(np.abs(lo), np.abs(hi)).sum(axis=1, keepdims=True)
                r = B * (mag + 1.0)
                zhi = np.broadcast_to(r, (self.n_samples, self.widths[l])).copy()
                zlo = -zhi
            limit = MAX_BOUND if l < self.n_layers else MAX_DATA
            if not (np.all(np.isfinite(zhi)) and np.all(np.isfinite(zlo))
                    and np.abs(zhi).max() <= limit and np.abs(zlo).max() <= limit):
                raise InputError(f"propagated bounds of layer {l} exceed {limit:g} (weight bound {B:g} is too large "
                                 "for exact solvers; lower --weight-bound or rescale the data)")
            out.append((zlo, zhi))
            lo, hi = relu(zlo), relu(zhi)
        return out

    def forward(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Network output for all samples (:func:`unrectify.formulations.network.predict`)."""
        return predict(weights, self.X)

    def forward_loss(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
        """Loss of an ordinary ReLU forward pass with the given weights."""
        pred = self.forward(self.check_weights(weights))
        if pred is self.X:  # no layers: do not modify the data
            pred = pred.copy()
        pred -= self.Y  # the residual, in the output's own memory
        n = max(pred.shape[0], 1)
        if self.loss == "mse":
            return float(np.einsum("ij,ij->", pred, pred) / n)
        return float(np.abs(pred).sum() / n)

    def check_weights(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Float64 copies of ``weights`` after checking them against ``widths`` (shapes, finite values)."""
        return _check_weights(weights, widths=self.widths)


MAX_GENERATED = 10**8


def random_instance(
    n_samples: int = 8,
    widths: Sequence[int] = (1, 2, 1),
    seed: int = 0,
    loss: str = "mse",
    weight_bound: float = 2.0,
    noise: float = 0.1,
) -> TrainingProblem:
    """A reproducible instance: ``X ~ U[-1, 1]``, ``y = sin(pi a.x) + noise`` per output.

    The target is not representable by a small ReLU network, so optima are positive and a
    non-tight relaxation shows up as a strictly lower value.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise InputError(f"samples must be a positive integer, got {n_samples!r}")
    widths = parse_widths(widths)
    if int(n_samples) * sum(widths) > MAX_GENERATED:
        raise InputError(f"a generated instance of {n_samples} samples x {sum(widths)} widths is too large "
                         f"(limit {MAX_GENERATED:g} values)")
    seed = integer_at_least("seed", seed, 0)
    noise = nonnegative_number("noise", noise)
    rng = np.random.default_rng(seed)
    n0, nL = widths[0], widths[-1]
    X = rng.uniform(-1.0, 1.0, size=(int(n_samples), n0))
    A = rng.normal(size=(n0, nL))
    A /= np.linalg.norm(A, axis=0, keepdims=True)
    Y = np.sin(np.pi * X @ A) + noise * rng.normal(size=(int(n_samples), nL))
    return TrainingProblem(X, Y, widths, loss=loss, weight_bound=weight_bound)
