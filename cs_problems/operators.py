"""Gaussian measurement operators ``Phi`` and the measurement map ``Y = S Phi^T + noise``."""

from __future__ import annotations

import numpy as np

from .errors import CSInputError


def check_ratio(ratio: float) -> float:
    """Return ``ratio`` as float after checking ``0 < ratio <= 1`` (finite)."""
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise CSInputError(f"measurement ratio must be a number in (0, 1], got {ratio!r}") from None
    if not (np.isfinite(r) and 0.0 < r <= 1.0):
        raise CSInputError(f"measurement ratio must be in (0, 1], got {ratio!r}")
    return r


def n_measurements(ratio: float, n: int) -> int:
    """Number of measurements ``m = max(1, round(ratio * n))`` for signal length ``n``."""
    r = check_ratio(ratio)
    if int(n) != n or n <= 0:
        raise CSInputError(f"signal length n must be a positive integer, got {n!r}")
    return max(1, int(round(r * int(n))))


def gaussian_operator(ratio: float, n: int, seed: int = 0) -> np.ndarray:
    """Gaussian ``Phi`` of shape ``(m, n)``, ``m = max(1, round(ratio n))``, entries N(0, 1/m).

    Deterministic in ``seed`` (``numpy.random.default_rng``); float64. Each column has
    expected squared norm 1, so ``E ||Phi s||^2 = ||s||^2``.
    """
    m = n_measurements(ratio, n)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, int(n))) / np.sqrt(m)


def measure(
    S: np.ndarray, Phi: np.ndarray, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Measurements of all rows of ``S`` at once: ``Y = S Phi^T + noise * E``, ``E ~ N(0, 1)``.

    ``S`` is ``(N, n)``, ``Phi`` ``(m, n)``; returns float64 ``(N, m)``. ``noise`` is the
    absolute standard deviation of the additive Gaussian noise (``seed`` fixes it).
    """
    S = np.asarray(S)
    Phi = np.asarray(Phi)
    if Phi.ndim != 2:
        raise CSInputError(f"Phi must be a 2-D (m, n) matrix, got shape {Phi.shape}")
    if S.ndim != 2 or S.shape[1] != Phi.shape[1]:
        raise CSInputError(f"S must be (N, {Phi.shape[1]}) to match Phi {Phi.shape}, got {S.shape}")
    for name, A in (("S", S), ("Phi", Phi)):
        if not np.issubdtype(A.dtype, np.number) or np.iscomplexobj(A) or not np.all(np.isfinite(A)):
            raise CSInputError(f"{name} must hold finite real numbers (no NaN or inf), got dtype {A.dtype}"
                               + (" with NaN or inf entries" if np.issubdtype(A.dtype, np.number) else ""))
    if not (isinstance(noise, (int, float, np.floating, np.integer)) and np.isfinite(noise) and noise >= 0):
        raise CSInputError(f"noise standard deviation must be finite and >= 0, got {noise!r}")
    Y = S.astype(np.float64, copy=False) @ Phi.T.astype(np.float64, copy=False)
    if noise > 0:
        Y = Y + noise * np.random.default_rng(seed).standard_normal(Y.shape)
    return Y
