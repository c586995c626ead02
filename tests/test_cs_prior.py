"""Generator-prior decoder (unrectify.cs.decoders.prior): exact latent search vs gradient descent."""

from __future__ import annotations

import numpy as np
import pytest

from unrectify.cs import CSInputError, gaussian_operator, load_dataset, measure
from unrectify.cs.decoders import decoder_class, get_decoder
from unrectify.cs.decoders.prior import PriorDecoder

from .conftest import needs


def tiny_generator(k=2, h=4, n=64, seed=0):
    r = np.random.default_rng(seed)
    return [(r.normal(0, 1.0, (h, k)), r.normal(0, 0.3, h)), (r.normal(0, 0.3, (n, h)), np.full(n, 0.4))]


@pytest.fixture(scope="module")
def fitted():
    pytest.importorskip("torch")
    S_train = load_dataset("digits", "train", 200, seed=0)
    S_test = load_dataset("digits", "test", 3, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    dec = PriorDecoder(Phi, latent=4, hidden=(16,), epochs=25, time_limit=20, gd_steps=200, gd_starts=6)
    dec.fit(measure(S_train, Phi, 0.0), S_train)
    return dec, measure(S_test, Phi, 0.0, seed=1), S_test


def test_registered_as_prior():
    assert decoder_class("prior") is PriorDecoder
    assert isinstance(get_decoder("prior", np.eye(4, 16)), PriorDecoder)


@needs("highs")
def test_exact_is_no_worse_than_gd(fitted):
    dec, Y, _ = fitted
    We, fe, info = dec.latent_exact(Y[:2])
    Wg, fg, _ = dec.latent_gd(Y[:2])
    assert info["n_certified"] == 2 and info["status"] == ["optimal", "optimal"]
    assert np.all(fe <= fg + 1e-6)
    assert np.all((We >= 0) & (We <= 1)) and np.all((Wg >= 0) & (Wg <= 1))
    # the solver's bound is a true lower bound of the forward-pass objective
    assert np.all(np.array(info["bound"]) <= fe + 1e-6)


@needs("highs")
def test_reconstruct_reports(fitted):
    dec, Y, _ = fitted
    S_hat = dec.reconstruct(Y[:2])
    assert S_hat.shape == (2, 64) and np.all((S_hat >= 0) & (S_hat <= 1))
    assert dec.report["solver"] == "exact" and dec.report["n_certified"] == 2
    np.testing.assert_allclose(np.clip(dec.generate(dec.report["latent"]), 0, 1), S_hat)
    assert dec.loss_history_[-1] < dec.loss_history_[0]


def test_gd_with_given_generator_needs_no_training():
    Phi = gaussian_operator(0.25, 64, seed=3)
    dec = PriorDecoder(Phi, latent=2, hidden=(4,), solver="gd", gd_steps=150).set_generator(tiny_generator())
    w_true = np.array([[0.3, 0.7], [0.9, 0.1]])
    Y = dec.generate(w_true) @ Phi.T
    S_hat = dec.reconstruct(Y)
    assert S_hat.shape == (2, 64)
    assert np.all(dec.report["objectives"] <= dec.objectives(w_true, Y) + 0.5)   # near the planted code


@needs("highs")
@needs("scip")
def test_split_scip_agrees_with_bigm_highs():
    Phi = gaussian_operator(0.1, 64, seed=4)
    gen = tiny_generator(seed=5)
    Y = (PriorDecoder(Phi, latent=2, hidden=(4,)).set_generator(gen).generate(np.array([[0.2, 0.6]])) + 0.05) @ Phi.T
    big = PriorDecoder(Phi, latent=2, hidden=(4,), time_limit=30).set_generator(gen)
    spl = PriorDecoder(Phi, latent=2, hidden=(4,), encoding="split", domain="interval", backend="scip",
                       time_limit=30).set_generator(gen)
    _, fb, ib = big.latent_exact(Y)
    _, fs, is_ = spl.latent_exact(Y)
    assert ib["n_certified"] == 1 and is_["status"] == ["optimal"]
    assert fs[0] == pytest.approx(fb[0], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("opts, match", [
    ({"solver": "adam"}, "solver"),
    ({"latent": 0}, "positive"),
    ({"time_limit": 0.0}, "time_limit"),
    ({"gd_starts": 0}, ">= 1"),
])
def test_bad_options(opts, match):
    with pytest.raises(CSInputError, match=match):
        PriorDecoder(np.eye(4, 16), **opts)


def test_generator_shape_checked():
    dec = PriorDecoder(np.eye(4, 16), latent=2, hidden=(4,))
    with pytest.raises(CSInputError, match="does not match n"):
        dec.set_generator(tiny_generator(n=10))
    with pytest.raises(CSInputError, match="no generator"):
        dec.measured_network()
