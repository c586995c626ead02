"""Decoders of the compressed-sensing application (unrectify.cs.decoders)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unrectify.cs import CSInputError, gaussian_operator, load_dataset, measure, psnr
from unrectify.cs.decoders import (
    DECODERS,
    CSNotFittedError,
    Decoder,
    L1Decoder,
    LinearDecoder,
    MLPDecoder,
    OMPDecoder,
    PinvDecoder,
    TVDecoder,
    dct_basis,
    decoder_class,
    get_decoder,
    mlp_forward,
    register_decoder,
    wavelet_basis,
)

FAST_OPTIONS = {
    "l1": {"max_iter": 100},
    "tv": {"max_iter": 50},
    "adam": {"epochs": 2, "hidden": (16,)},
}


@pytest.fixture(scope="module")
def digits_small() -> tuple[np.ndarray, np.ndarray]:
    return load_dataset("digits", "train", 200, seed=0), load_dataset("digits", "test", 12, seed=0)


def _sparse_dct_images(n_images: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images ``S = C Psi^T`` with k nonzero AC coefficients plus a DC of 0.5 mean."""
    rng = np.random.default_rng(seed)
    C = np.zeros((n_images, 64))
    for i in range(n_images):  # test-data construction only
        idx = rng.choice(np.arange(1, 64), k, replace=False)
        C[i, idx] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.1, 0.3, k)
    C[:, 0] = 4.0
    return C, C @ dct_basis((8, 8)).T


@pytest.mark.parametrize("name", ["pinv", "linear", "l1", "tv", "omp", "adam"])
def test_every_decoder_runs_with_right_shape(name: str, digits_small: tuple[np.ndarray, np.ndarray]) -> None:
    if name == "adam":
        pytest.importorskip("torch")
    S_tr, S_te = digits_small
    Phi = gaussian_operator(0.25, 64, seed=0)
    dec = get_decoder(name, Phi, **FAST_OPTIONS.get(name, {}))
    assert isinstance(dec, Decoder) and dec.name == name
    assert dec.fit(measure(S_tr, Phi), S_tr) is dec
    S_hat = dec.reconstruct(measure(S_te, Phi))
    assert S_hat.shape == S_te.shape and np.all(np.isfinite(S_hat))
    assert S_hat.min() >= 0.0 and S_hat.max() <= 1.0


def test_pinv_exact_when_square() -> None:
    S = load_dataset("digits", "test", 20)
    Phi = gaussian_operator(1.0, 64, seed=2)
    assert Phi.shape == (64, 64)
    np.testing.assert_allclose(PinvDecoder(Phi).reconstruct(measure(S, Phi)), S, atol=1e-8)


def test_linear_decoder_learns_the_inverse_at_full_ratio(digits_small: tuple[np.ndarray, np.ndarray]) -> None:
    S_tr, S_te = digits_small
    Phi = gaussian_operator(1.0, 64, seed=0)
    dec = LinearDecoder(Phi, alpha=1e-9).fit(measure(S_tr, Phi), S_tr)
    assert psnr(S_te, dec.reconstruct(measure(S_te, Phi))).min() > 60


def test_l1_fista_recovers_sparse_dct_signal() -> None:
    _, S = _sparse_dct_images(5, k=4)
    Phi = gaussian_operator(0.5, 64, seed=0)
    S_hat = L1Decoder(Phi).reconstruct(measure(S, Phi))
    assert psnr(S, S_hat).min() > 30
    # and OMP, with the right sparsity, recovers it exactly
    S_omp = OMPDecoder(Phi, n_nonzero=5).reconstruct(measure(S, Phi))
    assert psnr(S, S_omp).min() > 60


def test_l1_cvxpy_and_fista_agree_on_a_tiny_lasso() -> None:
    pytest.importorskip("cvxpy")
    rng = np.random.default_rng(1)
    Phi = gaussian_operator(0.5, 16, seed=1)
    Y = measure(rng.random((3, 16)), Phi)
    common = {"lam": 0.05, "clip": False}
    fista = L1Decoder(Phi, max_iter=5000, tol=1e-12, **common).coefficients(Y)
    cvx = L1Decoder(Phi, solver="cvxpy", batch_size=2, **common).coefficients(Y)
    np.testing.assert_allclose(fista, cvx, atol=2e-4)
    # box-constrained lasso: Chambolle-Pock against cvxpy
    pd = L1Decoder(Phi, solver="pdhg", box=True, max_iter=5000, tol=1e-12, **common).reconstruct(Y)
    cvx_box = L1Decoder(Phi, solver="cvxpy", box=True, **common).reconstruct(Y)
    np.testing.assert_allclose(pd, cvx_box, atol=2e-4)
    assert pd.min() >= 0.0 and pd.max() <= 1.0


def test_l1_constrained_form_fits_measurements() -> None:
    pytest.importorskip("cvxpy")
    Phi = gaussian_operator(0.5, 16, seed=3)
    S = np.random.default_rng(3).random((2, 16))
    dec = L1Decoder(Phi, solver="cvxpy", form="constrained", clip=False)
    np.testing.assert_allclose(dec.reconstruct(measure(S, Phi)) @ Phi.T, measure(S, Phi), atol=1e-6)
    with pytest.raises(CSInputError):
        L1Decoder(Phi, form="constrained")  # needs cvxpy
    with pytest.raises(CSInputError):
        L1Decoder(Phi, box=True)  # FISTA has no box


def test_wavelet_bases() -> None:
    Psi = wavelet_basis((8, 8), "haar")
    np.testing.assert_allclose(Psi.T @ Psi, np.eye(64), atol=1e-12)
    Psi_odd = wavelet_basis((9, 9), "haar")  # odd side: a frame, Psi A = I with A = pinv(Psi)
    assert Psi_odd.shape[0] == 81 and Psi_odd.shape[1] >= 81
    np.testing.assert_allclose(Psi_odd @ np.linalg.pinv(Psi_odd), np.eye(81), atol=1e-8)
    _, S = _sparse_dct_images(2, k=2)
    Phi = gaussian_operator(0.75, 64, seed=0)
    S_hat = L1Decoder(Phi, basis="wavelet").reconstruct(measure(S, Phi))
    assert S_hat.shape == S.shape
    with pytest.raises(CSInputError):
        L1Decoder(Phi, basis="curvelet")


def test_tv_recovers_piecewise_constant_image() -> None:
    S = np.full((2, 8, 8), 0.2)
    S[0, 2:6, 3:7] = 0.9
    S[1, :, 4:] = 0.7
    S = S.reshape(2, 64)
    Phi = gaussian_operator(0.5, 64, seed=0)
    Y = measure(S, Phi)
    tv = psnr(S, TVDecoder(Phi, lam=1e-3, max_iter=2000).reconstruct(Y))
    assert tv.min() > 30 and np.all(tv > psnr(S, PinvDecoder(Phi).reconstruct(Y)) + 10)


def test_mlp_forward_and_weights() -> None:
    rng = np.random.default_rng(0)
    W1, b1 = rng.standard_normal((5, 3)), rng.standard_normal(5)
    W2, b2 = rng.standard_normal((4, 5)), rng.standard_normal(4)
    Y = rng.standard_normal((7, 3))
    expected = np.maximum(Y @ W1.T + b1, 0) @ W2.T + b2
    np.testing.assert_allclose(mlp_forward([(W1, b1), (W2, b2)], Y), expected)
    with pytest.raises(CSInputError):
        mlp_forward([(W1, b1), (W1, b1)], Y)  # widths do not chain
    Phi = gaussian_operator(0.75, 4, seed=0)  # m = 3 measurements of 2x2 images
    assert Phi.shape == (3, 4)
    dec = MLPDecoder(Phi, hidden=(5,), clip=False)
    dec.set_weights([(W1, b1), (W2, b2)])
    np.testing.assert_allclose(dec.reconstruct(Y), expected)


def test_adam_decoder_is_deterministic(digits_small: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("torch")
    S_tr, S_te = digits_small
    Phi = gaussian_operator(0.25, 64, seed=0)
    Y_tr = measure(S_tr, Phi)
    a = get_decoder("adam", Phi, epochs=3, hidden=(32, 32), seed=5).fit(Y_tr, S_tr)
    b = get_decoder("adam", Phi, epochs=3, hidden=(32, 32), seed=5).fit(Y_tr, S_tr)
    assert [w.shape for w, _ in a.weights_] == [(32, 16), (32, 32), (64, 32)]
    for (wa, ba), (wb, bb) in zip(a.weights_, b.weights_):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    assert len(a.loss_history_) == 3 and a.loss_history_[-1] < a.loss_history_[0]
    # reconstruction is the numpy forward pass of the exported (standardisation-folded) weights
    Y_te = measure(S_te, Phi)
    np.testing.assert_allclose(a.reconstruct(Y_te), np.clip(mlp_forward(a.weights_, Y_te), 0, 1))


def test_registry_errors_and_extension() -> None:
    Phi = gaussian_operator(0.25, 64, seed=0)
    with pytest.raises(CSInputError, match="unknown decoder"):
        get_decoder("nope", Phi)
    assert decoder_class("alm").name == "alm" and decoder_class("prior").name == "prior"  # auto-imported
    with pytest.raises(CSInputError, match="bad options"):
        get_decoder("pinv", Phi, epochs=3)
    with pytest.raises(CSNotFittedError):
        get_decoder("linear", Phi).reconstruct(np.zeros((1, Phi.shape[0])))
    with pytest.raises(CSInputError):
        get_decoder("pinv", Phi).reconstruct(np.zeros((1, Phi.shape[0] + 1)))

    class Zeros(Decoder):
        name = "zeros_for_test"

        def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
            return np.zeros((Y.shape[0], self.n))

    try:
        register_decoder("zeros_for_test", Zeros)
        assert get_decoder("zeros_for_test", Phi).reconstruct(np.ones((2, 16))).shape == (2, 64)
        with pytest.raises(CSInputError, match="already registered"):
            register_decoder("zeros_for_test", PinvDecoder)
    finally:
        DECODERS.pop("zeros_for_test", None)


def test_package_imports_without_torch_or_cvxpy() -> None:
    code = (
        "import sys, cs_problems, unrectify.cs.decoders, unrectify.cs.experiment; "
        "print(sorted(m for m in ('torch', 'cvxpy') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, options", [("pinv", {"rcond": "abc"}), ("pinv", {"shape": 8}),
                                           ("l1", {"max_iter": float("nan")}), ("adam", {"epochs": float("inf")})])
def test_get_decoder_names_bad_option_values(name, options):
    """A value of the wrong kind is a CSInputError naming the decoder and the option, not a
    numpy or int() error from inside the decoder."""
    if name == "adam":
        pytest.importorskip("torch")
    Phi = gaussian_operator(0.1, 64)
    key = next(iter(options))
    with pytest.raises(CSInputError, match=rf"decoder '{name}' \({key}="):
        get_decoder(name, Phi, **options)
