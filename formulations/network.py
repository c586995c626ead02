"""The one ReLU forward pass of the package (numpy, vectorised over samples).

A network ``[(W_1, b_1), ..., (W_L, b_L)]`` with ``W_l`` of shape ``(n_l, n_{l-1})`` maps the
rows of ``X`` (``(N, n_0)``) through

    Z_l = A_{l-1} W_l^T + b_l,    A_0 = X,
    A_l = relu(Z_l) = max(Z_l, 0)  for the hidden layers l < L,
    A_L = Z_L                      (affine output; ``relu_output=True`` applies the ReLU too).

With ``masks`` (a fixed activation pattern ``D_l``, one ``(N, n_l)`` 0/1 array per hidden layer)
the hidden activations are ``A_l = D_l * Z_l``: the network linearised at that pattern, equal to
the ReLU network wherever ``D_l = 1[Z_l > 0]``.

Every forward pass in unrectify (the certificate, the ALM solver, the fixed-weight
certificate, the compressed-sensing decoders) calls :func:`layers` or one of its two
wrappers: :func:`forward` keeps every layer, :func:`predict` only the output (one layer's
arrays alive at a time, so memory is ``O(N * max width)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

Weights = Sequence[tuple[np.ndarray, np.ndarray]]


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def layers(weights: Weights, X: np.ndarray, *, relu_output: bool = False,
           dtype: np.dtype | type | str | None = np.float64,
           masks: Sequence[np.ndarray] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(Z_l, A_l)`` for ``l = 1..L`` (see the module docstring).

    ``dtype`` is the working precision: ``X`` and the weights are cast to it (no copy when they
    already have it); ``None`` casts nothing (numpy's type promotion decides, e.g. float32 data
    with float32 weights stays float32).  ``A_l`` is a new array, never ``Z_l`` itself, except
    for the affine output where ``A_L is Z_L``.
    """
    h = np.asarray(X) if dtype is None else np.asarray(X, dtype=dtype)
    last = len(weights) - 1
    for l, (W, b) in enumerate(weights):
        W, b = np.asarray(W), np.asarray(b).reshape(-1)
        if dtype is not None:
            W, b = W.astype(dtype, copy=False), b.astype(dtype, copy=False)
        z = h @ W.T
        z = z + b if z.dtype != np.result_type(z, b) else _add_inplace(z, b)
        if l < last and masks is not None:
            h = masks[l] * z
        else:
            h = relu(z) if (l < last or relu_output) else z
        yield z, h


def _add_inplace(z: np.ndarray, b: np.ndarray) -> np.ndarray:
    z += b   # the bias in place: no second (N, n) array
    return z


def forward(weights: Weights, X: np.ndarray, *, relu_output: bool = False,
            dtype: np.dtype | type | str | None = np.float64,
            masks: Sequence[np.ndarray] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations ``[Z_1..Z_L]`` and activations ``[A_1..A_L]`` of every layer."""
    zs: list[np.ndarray] = []
    acts: list[np.ndarray] = []
    for z, a in layers(weights, X, relu_output=relu_output, dtype=dtype, masks=masks):
        zs.append(z)
        acts.append(a)
    return zs, acts


def predict(weights: Weights, X: np.ndarray, *, relu_output: bool = False,
            dtype: np.dtype | type | str | None = np.float64) -> np.ndarray:
    """The network output ``A_L`` only (earlier layers are freed as the pass goes)."""
    out = np.asarray(X) if dtype is None else np.asarray(X, dtype=dtype)
    for _, out in layers(weights, X, relu_output=relu_output, dtype=dtype):
        pass
    return out


def input_vjp(weights: Weights, zs: Sequence[np.ndarray], G: np.ndarray) -> np.ndarray:
    """Back-propagate output cotangents ``G`` ``(N, n_L)`` to the input: row ``i`` is
    ``G_i^T dz_L/dx`` at sample ``i`` (a subgradient at kinks, ``relu'(0) = 0``), with ``zs``
    the pre-activations of :func:`forward` at those samples."""
    g = G @ np.asarray(weights[-1][0])
    for (W, _), z in zip(reversed(weights[:-1]), reversed(zs[:-1])):
        g = (g * (z > 0)) @ np.asarray(W)
    return g


__all__ = ["Weights", "forward", "input_vjp", "layers", "predict", "relu"]
