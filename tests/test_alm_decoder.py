"""The ALM-trained MLP decoder of the compressed-sensing application."""

from __future__ import annotations

import numpy as np
import pytest

from cs_problems import CSInputError, gaussian_operator, load_dataset, measure
from cs_problems.decoders import DECODERS, decoder_class, get_decoder, mlp_forward


def test_alm_decoder_is_registered_on_first_use():
    cls = decoder_class("alm")
    assert DECODERS["alm"] is cls and cls.name == "alm" and cls.learned


def test_alm_decoder_fits_and_beats_the_mean_image():
    S_tr = load_dataset("digits", "train", 150, seed=0)
    S_te = load_dataset("digits", "test", 20, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    Y_tr, Y_te = measure(S_tr, Phi, 0.0, seed=1), measure(S_te, Phi, 0.0, seed=2)
    dec = get_decoder("alm", Phi, hidden=(16,), time_limit=3.0, max_outer=5, max_inner=5, seed=0)
    dec.fit(Y_tr, S_tr)
    assert dec.fitted and [W.shape for W, _ in dec.weights] == [(16, 16), (64, 16)]
    S_hat = dec.reconstruct(Y_te)
    assert S_hat.shape == S_te.shape and S_hat.min() >= 0 and S_hat.max() <= 1
    # weights act on raw measurements (standardisation folded in): same as the numpy forward pass
    assert np.allclose(np.clip(mlp_forward(dec.weights, Y_te), 0, 1), S_hat)
    mse = np.mean((S_hat - S_te) ** 2)
    mse_mean = np.mean((S_tr.mean(axis=0) - S_te) ** 2)
    assert mse < mse_mean
    assert dec.result is not None and dec.result.history


def test_pure_alm_decoder_without_polish():
    S_tr = load_dataset("digits", "train", 100, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    dec = get_decoder("alm", Phi, hidden=(8,), polish=False, time_limit=5.0, max_outer=3, max_inner=3)
    dec.fit(measure(S_tr, Phi, 0.0, seed=1), S_tr)
    assert dec.result.restarts[0].alm_forward_loss == dec.result.forward_loss  # no refinement ran


def test_alm_decoder_rejects_bad_options():
    Phi = gaussian_operator(0.25, 64, seed=0)
    with pytest.raises(CSInputError):
        get_decoder("alm", Phi, time_limit=-1.0)
    with pytest.raises(CSInputError):
        get_decoder("alm", Phi, max_inner=0)
