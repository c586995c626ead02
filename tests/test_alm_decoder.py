"""The ALM-trained MLP decoder of the compressed-sensing application."""

from __future__ import annotations

import numpy as np
import pytest

from unrectify.cs import CSInputError, gaussian_operator, load_dataset, measure
from unrectify.cs.decoders import DECODERS, decoder_class, get_decoder, mlp_forward


def test_alm_decoder_is_registered_on_first_use():
    cls = decoder_class("alm")
    assert DECODERS["alm"] is cls and cls.name == "alm" and cls.learned


def test_honest_names_alm_alone_and_alm_then_lbfgs():
    Phi = gaussian_operator(0.25, 64, seed=0)
    assert get_decoder("alm", Phi).polish is False  # `alm` is the ALM alone
    assert get_decoder("alm+lbfgs", Phi).polish is True  # the refined decoder carries its own name
    assert decoder_class("alm+lbfgs").name == "alm+lbfgs"


def test_alm_decoder_fits_and_beats_the_mean_image():
    S_tr = load_dataset("digits", "train", 150, seed=0)
    S_te = load_dataset("digits", "test", 20, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    Y_tr, Y_te = measure(S_tr, Phi, 0.0, seed=1), measure(S_te, Phi, 0.0, seed=2)
    dec = get_decoder("alm+lbfgs", Phi, hidden=(16,), time_limit=3.0, max_outer=5, max_inner=5, seed=0)
    dec.fit(Y_tr, S_tr)
    assert dec.fitted and [W.shape for W, _ in dec.weights_] == [(16, 16), (64, 16)]
    S_hat = dec.reconstruct(Y_te)
    assert S_hat.shape == S_te.shape and S_hat.min() >= 0 and S_hat.max() <= 1
    # weights act on raw measurements (standardisation folded in): same as the numpy forward pass
    assert np.allclose(np.clip(mlp_forward(dec.weights_, Y_te), 0, 1), S_hat)
    mse = np.mean((S_hat - S_te) ** 2)
    mse_mean = np.mean((S_tr.mean(axis=0) - S_te) ** 2)
    assert mse < mse_mean
    assert dec.result_ is not None and dec.result_.history


def test_pure_alm_decoder_without_polish():
    S_tr = load_dataset("digits", "train", 100, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    dec = get_decoder("alm", Phi, hidden=(8,), time_limit=5.0, max_outer=3, max_inner=3)
    dec.fit(measure(S_tr, Phi, 0.0, seed=1), S_tr)
    assert dec.result_.restarts[0].alm_forward_loss == dec.result_.forward_loss  # no refinement ran


def test_alm_decoder_rejects_bad_options():
    Phi = gaussian_operator(0.25, 64, seed=0)
    with pytest.raises(CSInputError):
        get_decoder("alm", Phi, time_limit=-1.0)
    with pytest.raises(CSInputError):
        get_decoder("alm", Phi, max_inner=0)


def test_early_stopping_on_validation_keeps_the_best_checked_weights():
    from unrectify.cs.decoders.mlp import validation_split

    S_tr = load_dataset("digits", "train", 200, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    Y_tr = measure(S_tr, Phi, 0.0, seed=1)
    dec = get_decoder("alm+lbfgs", Phi, hidden=(16,), time_limit=20.0, validation=0.2, check_every=2, patience=2)
    dec.fit(Y_tr, S_tr)
    hist = dec.validation_history_
    phases = [ph for ph, _, _ in hist]
    assert "alm" in phases and "polish" in phases, phases          # both phases are checked
    assert all(it % 2 == 0 for ph, it, _ in hist if ph == "polish")
    # stopped by patience (not by the 20 s limit): the last `patience` = 2 checks are refinement
    # checks that did not beat the lowest before them, and the check before those was an ALM
    # check (the counter starts with the refinement) or a new lowest
    vals = [v for *_, v in hist]
    best = min(vals)
    assert len(vals) >= 3 and phases[-2:] == ["polish", "polish"], hist
    assert min(vals[-2:]) >= min(vals[:-2]), vals
    assert phases[-3] == "alm" or vals[-3] < min(vals[:-3]), hist
    # the returned weights' validation MSE is the best one seen (or better: the final weights)
    _, _, Yv, Sv = validation_split(Y_tr, S_tr, 0.2, 0)
    v = float(np.mean((mlp_forward(dec.weights_, Yv) - Sv) ** 2))
    assert v <= best * (1 + 1e-9)
    with pytest.raises(CSInputError, match="validation"):
        get_decoder("alm", Phi, validation=1.0)


def test_validation_split_is_seeded_and_disjoint():
    from unrectify.cs.decoders.mlp import validation_split

    Y = np.arange(40.0).reshape(20, 2)
    S = Y[:, :1].copy()
    a = validation_split(Y, S, 0.25, 3)
    b = validation_split(Y, S, 0.25, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    Yt, St, Yv, Sv = a
    assert Yv.shape == (5, 2) and Yt.shape == (15, 2)
    assert not set(Yt[:, 0]) & set(Yv[:, 0]) and set(Yt[:, 0]) | set(Yv[:, 0]) == set(Y[:, 0])
    assert validation_split(Y, S, 0.0, 3)[2] is None


def test_twin_start_shapes_distribution_and_seed():
    from unrectify.cs.decoders.mlp import twin_start

    w = twin_start([5, 40, 30, 3], seed=4, output_bias=np.array([0.1, 0.2, 0.3]))
    assert [W.shape for W, _ in w] == [(40, 5), (30, 40), (3, 30)]
    assert np.abs(w[0][0]).max() <= 1 / np.sqrt(5) and np.abs(w[1][0]).max() <= 1 / np.sqrt(40)
    assert np.abs(w[0][0]).max() > 0.8 / np.sqrt(5)   # the whole interval is used, not a narrower one
    assert not w[-1][0].any() and np.allclose(w[-1][1], [0.1, 0.2, 0.3])
    assert not twin_start([5, 40, 3], seed=4)[-1][1].any()
    same, other = twin_start([5, 40, 30, 3], seed=4), twin_start([5, 40, 30, 3], seed=5)
    assert np.array_equal(same[0][0], w[0][0]) and not np.array_equal(other[0][0], w[0][0])


@pytest.mark.parametrize("zero_output", [False, True])
def test_alm_and_adam_twins_start_from_the_same_weights(monkeypatch, zero_output):
    """The ALM gets the Adam twin's start as ``init`` (the twins differ only in the trainer)."""
    torch = pytest.importorskip("torch")
    import unrectify.backends.alm as alm_backend
    from unrectify.cs.decoders.adam import train_mlp_adam
    from unrectify.cs.decoders.alm import train_mlp_alm

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(60, 4)), rng.random((60, 3))
    seen = {}
    real = alm_backend.solve_alm

    def spy(problem, **kw):
        seen["init"] = [(W.copy(), b.copy()) for W, b in kw["init"]]
        return real(problem, **{**kw, "max_outer": 1})

    monkeypatch.setattr(alm_backend, "solve_alm", spy)
    train_mlp_alm(X, T, (6, 5), time_limit=5.0, seed=3, zero_output=zero_output)
    assert torch is not None
    w_adam, _ = train_mlp_adam(X, T, (6, 5), epochs=0, seed=3, zero_output=zero_output)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    # Adam's untrained weights act on raw inputs (standardisation folded); unfold the first layer
    assert np.allclose(w_adam[0][0] * sd, seen["init"][0][0], atol=1e-6)
    for (Wa, ba), (Wi, bi) in zip(w_adam[1:], seen["init"][1:]):
        assert np.allclose(Wa, Wi, atol=1e-6) and np.allclose(ba, bi, atol=1e-6)
    assert np.allclose(seen["init"][-1][1], 0.0 if zero_output else T.mean(axis=0))


@pytest.mark.parametrize("adam, alm", [("tv+res-adam", "tv+res-alm"), ("adaptive-tv+res-adam", "adaptive-tv+res-alm")])
def test_every_hybrid_has_an_alm_alone_twin(adam, alm):
    from unrectify.cs.experiment import TWINS

    a, b = decoder_class(adam), decoder_class(alm)
    assert b.inner_default == "res-alm" and a.inner_default == "res-adam"
    assert type(a).__mro__ == type(b).__mro__ and a.__mro__[1:] == b.__mro__[1:]   # same hybrid, other trainer
    assert "torch" not in getattr(b, "requires", ())                              # the ALM twin needs no torch
    assert (alm, adam) in TWINS


def test_validation_history_names_the_restart_of_each_alm_iterate():
    S_tr = load_dataset("digits", "train", 120, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    dec = get_decoder("alm", Phi, hidden=(8,), time_limit=20.0, max_outer=3, restarts=2, validation=0.2)
    dec.fit(measure(S_tr, Phi, 0.0, seed=1), S_tr)
    phases = [ph for ph, _, _ in dec.validation_history_]
    assert set(phases) == {"alm", "alm restart 1"}, phases     # both restarts checked, each named
    assert dec.train_info_["best_validation"][0] in ("alm", "alm restart 1", "final")
