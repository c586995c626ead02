"""Metrics of the compressed-sensing application (unrectify.cs.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from unrectify.cs import CSInputError, mean_metrics, mse, psnr, ssim
from unrectify.cs.metrics import ssim_window


def _images(n: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, side * side))


def test_identical_images() -> None:
    S = _images(4, 8)
    assert np.all(mse(S, S) == 0)
    assert np.all(np.isinf(psnr(S, S)))
    np.testing.assert_array_equal(psnr(S, S, max_db=100.0), 100.0)
    np.testing.assert_allclose(ssim(S, S, (8, 8)), 1.0)
    np.testing.assert_allclose(ssim(_images(3, 28), _images(3, 28), (28, 28)), 1.0)
    assert mean_metrics(S, S, (8, 8)) == {"psnr": 100.0, "ssim": 1.0, "mse": 0.0}


def test_known_mse_gives_known_psnr() -> None:
    S = np.full((3, 16), 0.5)
    S_hat = S + np.array([[0.1], [0.01], [0.3]])  # constant errors: mse = e^2
    np.testing.assert_allclose(mse(S, S_hat), [0.01, 1e-4, 0.09])
    np.testing.assert_allclose(psnr(S, S_hat), [20.0, 40.0, 10 * np.log10(1 / 0.09)])
    assert psnr(S[0], S_hat[0]).shape == (1,)  # a single image is one row


def test_ssim_matches_per_image_skimage() -> None:
    rng = np.random.default_rng(1)
    for side in (8, 28):
        S = rng.random((5, side * side))
        S_hat = np.clip(S + 0.2 * rng.standard_normal(S.shape), 0, 1)
        win = ssim_window((side, side))
        ref = [
            structural_similarity(a.reshape(side, side), b.reshape(side, side), data_range=1.0, win_size=win)
            for a, b in zip(S, S_hat)
        ]
        np.testing.assert_allclose(ssim(S, S_hat, (side, side)), ref, atol=1e-12)
    assert ssim_window((8, 8)) == 7 and ssim_window((6, 9)) == 5 and ssim_window((33, 33)) == 7


def test_bad_shapes() -> None:
    with pytest.raises(CSInputError):
        mse(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(CSInputError):
        ssim(np.zeros((2, 64)), np.zeros((2, 64)), (8, 9))
    with pytest.raises(CSInputError):
        ssim_window((2, 8))
