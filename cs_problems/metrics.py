"""Reconstruction quality metrics, one value per image (rows of ``(N, n)`` arrays).

* ``mse(S, S_hat)_i  = (1/n) sum_j (S_ij - S_hat_ij)^2``            (per pixel)
* ``psnr(S, S_hat)_i = 10 log10(1 / mse_i)``                         (data range 1; +inf if exact)
* ``ssim(S, S_hat)_i`` = scikit-image ``structural_similarity`` of image i (data range 1,
  uniform 7 x 7 window, or the largest odd window that fits the image, e.g. 7 for 8 x 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import CSInputError

PSNR_CAP_DB = 100.0
"""Cap used by :func:`mean_metrics` so that exact reconstructions give finite means."""


def _pair(S: np.ndarray, S_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    S = np.asarray(S, dtype=np.float64)
    S_hat = np.asarray(S_hat, dtype=np.float64)
    if S.ndim == 1:
        S = S[None, :]
    if S_hat.ndim == 1:
        S_hat = S_hat[None, :]
    if S.shape != S_hat.shape or S.ndim != 2:
        raise CSInputError(f"metric needs two (N, n) arrays of equal shape, got {S.shape} and {S_hat.shape}")
    return S, S_hat


def mse(S: np.ndarray, S_hat: np.ndarray) -> np.ndarray:
    """Per-image mean squared error per pixel, shape ``(N,)``."""
    S, S_hat = _pair(S, S_hat)
    return np.mean((S - S_hat) ** 2, axis=1)


def psnr(S: np.ndarray, S_hat: np.ndarray, max_db: float | None = None) -> np.ndarray:
    """Per-image PSNR in dB for data range 1: ``10 log10(1 / mse)``, shape ``(N,)``.

    Exact reconstructions give ``+inf``, or ``max_db`` when given (values are capped there).
    """
    err = mse(S, S_hat)
    with np.errstate(divide="ignore"):
        out = -10.0 * np.log10(err)
    if max_db is not None:
        out = np.minimum(out, float(max_db))
    return out


def ssim_window(shape: Sequence[int]) -> int:
    """Largest odd SSIM window ``<= 7`` that fits an image of 2-D ``shape``."""
    side = min(int(s) for s in shape)
    if side < 3:
        raise CSInputError(f"SSIM needs images at least 3x3, got shape {tuple(shape)}")
    w = min(7, side)
    return w if w % 2 == 1 else w - 1


def ssim(
    S: np.ndarray, S_hat: np.ndarray, shape: Sequence[int], win_size: int | None = None
) -> np.ndarray:
    """Per-image SSIM (scikit-image, data range 1), images reshaped to ``shape``; ``(N,)``.

    All images go through one ``structural_similarity`` call as channels of an
    ``(h, w, N)`` stack (``full=True``); image i's SSIM is the mean of its map after
    cropping ``(win_size - 1) // 2`` border pixels -- exactly what a per-image call returns.
    """
    from skimage.metrics import structural_similarity

    S, S_hat = _pair(S, S_hat)
    h, w = (int(s) for s in shape)
    if h * w != S.shape[1]:
        raise CSInputError(f"image shape {tuple(shape)} does not match row length {S.shape[1]}")
    win = ssim_window((h, w)) if win_size is None else int(win_size)
    a = np.moveaxis(S.reshape(-1, h, w), 0, -1)
    b = np.moveaxis(S_hat.reshape(-1, h, w), 0, -1)
    _, smap = structural_similarity(a, b, win_size=win, data_range=1.0, channel_axis=-1, full=True)
    pad = (win - 1) // 2
    return smap[pad : h - pad, pad : w - pad, :].mean(axis=(0, 1))


def mean_metrics(
    S: np.ndarray, S_hat: np.ndarray, shape: Sequence[int], max_db: float = PSNR_CAP_DB
) -> dict[str, float]:
    """Means over images: ``{"psnr", "ssim", "mse"}`` (PSNR capped at ``max_db``)."""
    return {
        "psnr": float(np.mean(psnr(S, S_hat, max_db=max_db))),
        "ssim": float(np.mean(ssim(S, S_hat, shape))),
        "mse": float(np.mean(mse(S, S_hat))),
    }
