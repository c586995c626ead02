"""ReLU MLP decoders: the numpy forward pass shared by every MLP trainer (Adam, ALM, ...).

Weights follow docs/theory.md ("The learning problem"): a list ``[(W1, b1), ..., (WL, bL)]`` with ``W_l`` of
shape ``(n_l, n_{l-1})`` and ``b_l`` of shape ``(n_l,)``; hidden layers use ReLU, the last
layer is affine::

    X_0 = Y,   X_l = max(X_{l-1} W_l^T + b_l, 0)  (l < L),   S_hat = X_{L-1} W_L^T + b_L

To add a trainer (e.g. the ALM decoder), subclass :class:`MLPDecoder`, implement
``_train(Y, S, groups) -> weights`` and register it (see ``cs_problems/decoders/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unrectify.formulations.network import predict
from unrectify.formulations.validation import check_weights as _check_weights

from ..errors import CSInputError
from .base import Decoder

Weights = list[tuple[np.ndarray, np.ndarray]]


def check_weights(weights: Sequence[tuple[np.ndarray, np.ndarray]], n_in: int | None = None) -> Weights:
    """Validate a weights list (shapes chain, biases match, finite) and return float64 copies
    (the package's one weights validator, raising :class:`CSInputError`)."""
    return _check_weights(weights, n_in=n_in, name="MLP weights", error=CSInputError)


def mlp_forward(weights: Sequence[tuple[np.ndarray, np.ndarray]], Y: np.ndarray) -> np.ndarray:
    """ReLU forward pass of all rows of ``Y`` at once (hidden ReLU, affine output)."""
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise CSInputError(f"MLP input must be (N, n_in), got shape {Y.shape}")
    layers = check_weights(weights, Y.shape[1])
    return predict(layers, Y)   # the one forward pass (unrectify.formulations.network)


MIN_HELD_OUT_GROUPS = 3
"""With ``groups``, at least this many whole groups are held out (when at least twice as many
exist): one held-out image is too few to judge a choice by."""


def held_out_mask(n_pairs: int, fraction: float, seed: int, groups: np.ndarray | None = None) -> np.ndarray | None:
    """Boolean mask of the held-out pairs, or None when nothing is held out (``fraction`` 0 or
    fewer than 10 pairs would remain). Without ``groups``: a seeded ``fraction`` of the pairs.
    With ``groups`` (integer labels per pair): whole groups, taken in a seeded order until they
    hold ``fraction`` of the pairs, and at least :data:`MIN_HELD_OUT_GROUPS` groups when there
    are at least twice as many; groups larger than twice the wanted share are passed over
    (one large image would otherwise take a third of the training data); None when there is
    only one group."""
    n_val = int(round(fraction * n_pairs))
    if n_val < 1 or n_pairs - n_val < 10:
        return None
    rng = np.random.default_rng([seed, 77])
    if groups is None:
        mask = np.zeros(n_pairs, dtype=bool)
        mask[rng.permutation(n_pairs)[:n_val]] = True
        return mask
    sizes = np.bincount(groups)
    present = np.flatnonzero(sizes)
    if present.size < 2:
        return None
    order = rng.permutation(present)
    order = order[sizes[order] <= max(2 * n_val, sizes[present].min())]
    need = int(np.searchsorted(np.cumsum(sizes[order]), n_val)) + 1
    if present.size >= 2 * MIN_HELD_OUT_GROUPS:
        need = max(need, MIN_HELD_OUT_GROUPS)
    mask = np.isin(groups, order[: min(need, present.size - 1)])
    return mask if n_pairs - mask.sum() >= 10 else None


def validation_split(Y: np.ndarray, S: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None):
    """``(Y_train, S_train, Y_val, S_val)``, rows in their given order, held out by
    :func:`held_out_mask` (``Y_val, S_val`` are None when nothing is held out)."""
    mask = held_out_mask(Y.shape[0], fraction, seed, groups)
    if mask is None:
        return Y, S, None, None
    return Y[~mask], S[~mask], Y[mask], S[mask]


def training_and_held_out(X: np.ndarray, T: np.ndarray, validation: float, seed: int,
                          groups: np.ndarray | None = None,
                          validation_data: tuple[np.ndarray, np.ndarray] | None = None):
    """``(X_train, T_train, X_val, T_val)`` for a trainer: the given ``validation_data``
    (checked: same columns as ``X``/``T``, equal rows, finite; none when it has no rows) with all
    of ``X, T`` trained on, else :func:`validation_split` of ``X, T``."""
    if validation_data is None:
        return validation_split(X, T, validation, seed, groups)
    try:
        Xv, Tv = (np.asarray(a, dtype=float) for a in validation_data)
    except (TypeError, ValueError):
        raise CSInputError("validation_data must be a pair (X_val, T_val) of numeric arrays") from None
    if Xv.ndim != 2 or Tv.ndim != 2 or Xv.shape[0] != Tv.shape[0] \
            or Xv.shape[1] != X.shape[1] or Tv.shape[1] != T.shape[1]:
        raise CSInputError(f"validation_data must be (N, {X.shape[1]}) inputs and (N, {T.shape[1]}) targets, "
                           f"got {Xv.shape} and {Tv.shape}")
    if not (np.all(np.isfinite(Xv)) and np.all(np.isfinite(Tv))):
        raise CSInputError("validation_data holds NaN or infinite values")
    if Xv.shape[0] == 0:
        return X, T, None, None
    return X, T, Xv, Tv


def standardiser(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate mean and standard deviation (1 where a coordinate is constant)."""
    mu = Y.mean(axis=0)
    sd = Y.std(axis=0)
    return mu, np.where(sd > 1e-12, sd, 1.0)


def fold_standardisation(weights: Weights, mu: np.ndarray, sd: np.ndarray) -> Weights:
    """Weights acting on raw inputs ``y`` from weights acting on ``x = (y - mu) / sd``:
    ``W1 x + b1 = (W1 / sd) y + (b1 - (W1 / sd) mu)``."""
    W1, b1 = weights[0]
    W1 = W1 / sd
    return [(W1, b1 - W1 @ mu)] + [(W.copy(), b.copy()) for W, b in weights[1:]]


def twin_start(widths: Sequence[int], seed: int, output_bias: np.ndarray | None = None) -> Weights:
    """The starting weights of an MLP, shared by its Adam- and ALM-trained twins (so the twins
    differ only in the trainer).  Hidden layers: torch.nn.Linear's default distribution,
    ``W, b ~ U(-1/sqrt(n_in), 1/sqrt(n_in))``, drawn by numpy's generator seeded with ``seed``
    (no torch needed).  Output layer: zero weights and bias ``output_bias`` (zeros when None),
    so the network starts as a constant map (the mean target for a plain MLP, zero for a
    residual one).  Why shared: the ALM's own kink-in-data start fits the output layer by
    exact least squares on random features, which on a few thousand training pairs starts in
    a badly generalising fit (digits, 50 %, 10 s: test residual MSE 0.0068 from it, 0.0048
    from this start, as Adam's)."""
    rng = np.random.default_rng([int(seed), 31])
    widths = [int(w) for w in widths]
    weights: Weights = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):
        k = 1.0 / np.sqrt(n_in)
        weights.append((rng.uniform(-k, k, (n_out, n_in)), rng.uniform(-k, k, n_out)))
    bias = np.zeros(widths[-1]) if output_bias is None else np.asarray(output_bias, dtype=float).reshape(widths[-1])
    weights.append((np.zeros((widths[-1], widths[-2])), bias.copy()))
    return weights


#: bytes per weight while training: float32 weights, gradients and Adam's two moments, plus
#: the float64 copies handed back (the ALM keeps comparable per-weight state)
TRAIN_BYTES_PER_WEIGHT = 4 * 4 + 8


def check_trainable(widths: Sequence[int], what: str) -> None:
    """Refuse an MLP whose weights alone would not fit in the available memory while training
    (one line naming the widths), instead of an allocator error from inside torch."""
    from unrectify.formulations.validation import available_memory, format_bytes

    n = sum(int(a) * int(b) + int(b) for a, b in zip(widths[:-1], widths[1:]))
    need, avail = n * TRAIN_BYTES_PER_WEIGHT, available_memory()
    if avail and need > avail:
        raise CSInputError(f"{what}: an MLP of widths {'-'.join(map(str, widths))} has {n:.3g} weights, about "
                           f"{format_bytes(need)} to train, more than the {format_bytes(avail)} available")


def layer_widths(weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    """Widths ``[n_0, n_1, ..., n_L]`` of a weights list."""
    layers = check_weights(weights)
    return [layers[0][0].shape[1]] + [W.shape[0] for W, _ in layers]


class MLPDecoder(Decoder):
    """Learned ReLU MLP decoder ``m -> hidden... -> n``; ``reconstruct`` is :func:`mlp_forward`.

    Subclasses implement ``_train(Y, S, groups) -> weights``. The fitted weights are ``weights_``;
    they may also be set directly (e.g. loaded from disk) via :meth:`set_weights`.
    """

    name = "mlp"
    learned = True

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256),
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        hidden = tuple(int(h) for h in hidden)
        if any(h <= 0 for h in hidden):
            raise CSInputError(f"hidden widths must be positive integers, got {hidden}")
        self.hidden = hidden
        check_trainable(self.widths, f"decoder {self.name!r}")

    @property
    def widths(self) -> list[int]:
        """``[m, *hidden, n]``."""
        return [self.m, *self.hidden, self.n]

    def set_weights(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> MLPDecoder:
        """Install trained weights (checked against ``widths``); marks the decoder fitted."""
        w = check_weights(weights, self.m)
        if w[-1][0].shape[0] != self.n:
            raise CSInputError(f"MLP output width {w[-1][0].shape[0]} does not match n = {self.n}")
        self.weights_ = w
        self.n_features_in_ = self.m
        return self

    def _fit(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> None:
        self.set_weights(self._train(Y, S, groups))

    def _train(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> Weights:
        raise NotImplementedError

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        return mlp_forward(self.weights_, Y)
