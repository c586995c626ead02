"""Sparsifying bases as explicit matrices: ``s = Psi c`` (synthesis), ``c = A s`` (analysis).

* ``dct_basis(shape)``: orthonormal 2-D DCT-II, ``A = kron(D_h, D_w)`` for row-major
  images, ``Psi = A^T`` (``Psi^T Psi = I``).
* ``wavelet_basis(shape, wavelet, level)``: PyWavelets ``wavedec2`` with periodization.
  Orthonormal (``Psi = A^T``) when both sides are divisible by ``2**level`` and the
  wavelet is orthogonal; otherwise (odd sides, e.g. 33 x 33) ``A`` is a redundant frame
  and ``Psi = pinv(A)`` (so ``Psi A = I``).
"""

from __future__ import annotations

from collections.abc import Sequence

import warnings

import numpy as np
import scipy.fft

from ..errors import CSDependencyError, CSInputError

BASES: tuple[str, ...] = ("dct", "wavelet")


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal 1-D DCT-II matrix ``D`` (``D x = dct(x, norm='ortho')``, ``D^T D = I``)."""
    return scipy.fft.dct(np.eye(n), norm="ortho", axis=0)


def dct_basis(shape: Sequence[int]) -> np.ndarray:
    """Synthesis matrix ``Psi`` (n x n) of the orthonormal 2-D DCT for images of ``shape``."""
    h, w = (int(s) for s in shape)
    return np.kron(dct_matrix(h), dct_matrix(w)).T


def default_wavelet_level(shape: Sequence[int], wavelet: str = "haar", max_level: int = 3) -> int:
    """Deepest level ``<= max_level`` keeping the transform orthonormal, else ``1``."""
    import pywt

    h, w = (int(s) for s in shape)
    top = max(1, min(max_level, pywt.dwtn_max_level((h, w), wavelet)))
    for lev in range(top, 0, -1):
        if h % 2**lev == 0 and w % 2**lev == 0:
            return lev
    return min(top, max_level)


def wavelet_basis(
    shape: Sequence[int], wavelet: str = "haar", level: int | None = None
) -> np.ndarray:
    """Synthesis matrix ``Psi`` (n x k, k >= n) of a 2-D periodized wavelet transform."""
    try:
        import pywt
    except ModuleNotFoundError as exc:
        raise CSDependencyError("wavelet basis needs PyWavelets: pip install PyWavelets") from exc
    h, w = (int(s) for s in shape)
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise CSInputError(f"unknown discrete wavelet {wavelet!r}")
    lev = default_wavelet_level((h, w), wavelet) if level is None else int(level)
    if lev < 1:
        raise CSInputError(f"wavelet level must be >= 1, got {level!r}")
    top = pywt.dwtn_max_level((h, w), wavelet)
    if lev > max(top, 1):   # deeper levels are all boundary effect (pywt only warns)
        raise CSInputError(f"wavelet level {lev} is too deep for {wavelet!r} on {h}x{w} images "
                           f"(at most {max(top, 1)})")
    n = h * w
    # transform every unit image at once: row i of arr is A e_i, i.e. column i of A
    with warnings.catch_warnings():   # level 1 above pywt's maximum: periodized, checked invertible below
        warnings.simplefilter("ignore", UserWarning)
        coeffs = pywt.wavedec2(np.eye(n).reshape(n, h, w), wavelet, mode="periodization",
                               level=lev, axes=(-2, -1))
    arr, _ = pywt.coeffs_to_array(coeffs, axes=(-2, -1))
    A = arr.reshape(n, -1).T
    if A.shape[0] == n and np.allclose(A @ A.T, np.eye(n), atol=1e-10):
        return A.T
    Psi = np.linalg.pinv(A)
    if not np.allclose(Psi @ A, np.eye(n), atol=1e-8):
        raise CSInputError(f"wavelet {wavelet!r} at level {lev} is not invertible on {h}x{w} images")
    return Psi


def sparsifying_basis(
    basis: str, shape: Sequence[int], wavelet: str = "haar", level: int | None = None
) -> np.ndarray:
    """``Psi`` for ``basis`` in :data:`BASES` (``'dct'`` or ``'wavelet'``)."""
    if basis == "dct":
        if level is not None or wavelet != "haar":   # would be silently ignored
            raise CSInputError(f"wavelet and level apply to basis='wavelet' only (basis is {basis!r})")
        return dct_basis(shape)
    if basis == "wavelet":
        return wavelet_basis(shape, wavelet, level)
    raise CSInputError(f"unknown sparsifying basis {basis!r}; valid: {', '.join(BASES)}")
