"""Residual decoders, the measurement-consistency step, block CS and the scikit-learn convention."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from unrectify.cs import CSInputError, gaussian_operator, load_dataset, measure, psnr
from unrectify.cs.blocks import block_cs, blocks_to_image, image_to_blocks
from unrectify.cs.decoders import DECODERS, CSNotFittedError, LinearDecoder, consistency_step, get_decoder

SMALL = {"hidden": (8,)}
TINY_OPTIONS = {
    "adam": {**SMALL, "epochs": 2}, "alm": {**SMALL, "time_limit": 2.0}, "alm+lbfgs": {**SMALL, "time_limit": 2.0},
    "res-adam": {**SMALL, "epochs": 2}, "res-alm": {**SMALL, "time_limit": 2.0},
    "res-alm+lbfgs": {**SMALL, "time_limit": 2.0}, "l1": {"max_iter": 50}, "tv": {"max_iter": 30},
}


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    S_tr = load_dataset("digits", "train", 300, seed=0)
    S_te = load_dataset("digits", "test", 40, seed=0)
    Phi = gaussian_operator(0.25, 64, seed=0)
    return Phi, measure(S_tr, Phi, seed=1), S_tr, measure(S_te, Phi, seed=2), S_te


# ---------------------------------------------------------------- scikit-learn convention
@pytest.mark.parametrize("name", sorted(set(DECODERS) - {"prior"}))
def test_clone_and_params_follow_sklearn(name: str) -> None:
    from sklearn.base import clone

    if name in ("adam", "res-adam"):
        pytest.importorskip("torch")
    Phi = gaussian_operator(0.25, 64, seed=0)
    dec = get_decoder(name, Phi, **TINY_OPTIONS.get(name, {}))
    params = dec.get_params()
    assert "Phi" in params and "clip" in params
    twin = clone(dec)  # raises if a constructor changed a parameter it was given
    assert type(twin) is type(dec) and twin is not dec
    assert set(twin.get_params()) == set(params)
    assert not twin.fitted and not any(k.endswith("_") and not k.startswith("_") for k in vars(twin))


def test_set_params_revalidates_and_drops_fitted_state(digits) -> None:
    Phi, Y, S, Yt, St = digits
    dec = LinearDecoder(Phi).fit(Y, S)
    assert dec.fitted and dec.coef_.shape == (64, 16) and dec.intercept_.shape == (64,)
    assert dec.set_params(alpha=10.0) is dec and dec.alpha == 10.0 and not dec.fitted
    with pytest.raises(CSNotFittedError):
        dec.predict(Yt)
    assert issubclass(CSNotFittedError, ValueError) and issubclass(CSNotFittedError, AttributeError)  # as sklearn's
    with pytest.raises(CSInputError, match="alpha"):
        dec.set_params(alpha=-1.0)
    with pytest.raises(CSInputError, match="invalid parameters"):
        LinearDecoder(Phi).set_params(nope=1)


def test_predict_decode_score_and_grid_search(digits) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.utils.validation import check_is_fitted

    Phi, Y, S, Yt, St = digits
    dec = LinearDecoder(Phi)
    with pytest.raises(Exception, match="fit"):
        check_is_fitted(dec)
    dec.fit(Y, S)
    check_is_fitted(dec)
    np.testing.assert_array_equal(dec.predict(Yt), dec.reconstruct(Yt))
    np.testing.assert_array_equal(dec.decode(Yt), dec.reconstruct(Yt))
    assert dec.score(Yt, St) == pytest.approx(float(np.mean(psnr(St, dec.reconstruct(Yt)))))
    search = GridSearchCV(LinearDecoder(Phi), {"alpha": [1e-6, 1e3, 1e6]}, cv=3).fit(Y, S)
    assert search.best_params_["alpha"] in (1e-6, 1e3) and search.best_estimator_.fitted


# ---------------------------------------------------------------- consistency step
def test_projection_rounds_never_increase_the_error_on_noiseless_data() -> None:
    rng = np.random.default_rng(0)
    S = load_dataset("digits", "test", 30, seed=1).astype(np.float64)
    Phi = gaussian_operator(0.25, 64, seed=3)
    Y = measure(S, Phi)
    P = np.linalg.pinv(Phi)
    X = np.clip(S + 0.3 * rng.standard_normal(S.shape), 0, 1)  # some estimate
    errs = [np.linalg.norm(X - S, axis=1)]
    for k in range(1, 5):
        Xk = consistency_step(X, Y, Phi, P, "project", k)
        errs.append(np.linalg.norm(Xk - S, axis=1))
    E = np.array(errs)
    assert np.all(np.diff(E, axis=0) <= 1e-10)  # per image, per round: never worse (convex projections)
    assert np.all(E[-1] < E[0])
    # one unclipped projection is exactly consistent
    X1 = X - (X @ Phi.T - Y) @ P.T
    np.testing.assert_allclose(X1 @ Phi.T, Y, atol=1e-10)
    G = consistency_step(X, Y, Phi, P, "gradient", 3)
    assert np.linalg.norm(G @ Phi.T - Y) < np.linalg.norm(X @ Phi.T - Y)
    np.testing.assert_array_equal(consistency_step(X, Y, Phi, P, "none", 3), X)


# ---------------------------------------------------------------- residual decoders
def test_residual_adam_is_no_worse_than_its_linear_part(digits) -> None:
    pytest.importorskip("torch")
    Phi, Y, S, Yt, St = digits
    dec = get_decoder("res-adam", Phi, hidden=(64,), epochs=30, seed=0).fit(Y, S)
    assert set(dec.validation_mse_) == {f"{a}+{b}" for a in ("residual", "linear") for b in ("none", "project", "gradient")}
    chosen = f"{'residual' if dec.residual_used_ else 'linear'}+{dec.consistency_}"
    assert dec.validation_mse_[chosen] == min(dec.validation_mse_.values())
    assert dec.validation_mse_[chosen] <= dec.validation_mse_["linear+none"]  # never worse than linear on held-out
    lin = LinearDecoder(Phi).fit(Y, S)
    assert psnr(St, dec.reconstruct(Yt)).mean() > psnr(St, lin.reconstruct(Yt)).mean()
    # the parts compose as documented
    X = dec.network_estimate(Yt)
    np.testing.assert_allclose(
        dec.reconstruct(Yt),
        np.clip(consistency_step(X, Yt, Phi, dec.Phi_pinv, dec.consistency_, dec.rounds, dec.step), 0, 1))


def test_residual_alm_variants_train_and_are_named_apart(digits) -> None:
    Phi, Y, S, Yt, St = digits
    pure = get_decoder("res-alm", Phi, hidden=(8,), time_limit=3.0).fit(Y, S)
    refined = get_decoder("res-alm+lbfgs", Phi, hidden=(8,), time_limit=3.0).fit(Y, S)
    assert pure.trainer == "alm" and refined.trainer == "alm+lbfgs"
    assert pure.result_ is not None and refined.result_ is not None
    for dec in (pure, refined):
        assert [W.shape for W, _ in dec.weights_] == [(8, 16), (64, 8)]
        out = dec.reconstruct(Yt)
        assert out.shape == St.shape and np.all((out >= 0) & (out <= 1))
    # the ALM's inner Adam steps use the twin's minibatch, step size and schedule
    for dec in (pure, refined):
        o = dec.result_.options
        assert (o["batch_size"], o["lr"], o["lr_schedule"]) == (dec.batch_size_, dec.lr_, dec.schedule) == (64, 1e-3, "cosine")
    const = get_decoder("res-alm", Phi, hidden=(8,), time_limit=1.0, schedule="constant", lr=3e-3).fit(Y, S)
    assert (const.result_.options["lr"], const.result_.options["lr_schedule"]) == (3e-3, "constant")
    with pytest.raises(CSInputError, match="trainer"):
        get_decoder("res-alm", Phi, trainer="sgd")
    with pytest.raises(CSInputError, match="consistency"):
        get_decoder("res-alm", Phi, consistency="magic")
    with pytest.raises(CSInputError, match="schedule"):
        get_decoder("res-alm", Phi, schedule="linear")


@pytest.mark.parametrize("name", ["res-adam", "res-alm", "res-alm+lbfgs"])
def test_residual_training_stops_early_on_the_decoders_held_out_pairs(digits, name: str) -> None:
    """Each twin returns the residual weights with the lowest MSE on the decoder's own held-out
    pairs (the pairs it was not trained on); without early stopping, its last weights."""
    from unrectify.cs.decoders.mlp import mlp_forward, validation_split

    if name == "res-adam":
        pytest.importorskip("torch")
    Phi, Y, S, _, _ = digits
    opts = {"hidden": (32,), "seed": 3, **({"epochs": 40} if name == "res-adam" else {"time_limit": 3.0})}
    dec = get_decoder(name, Phi, **opts).fit(Y, S)
    _, _, Yv, Sv = validation_split(Y, S, dec.validation, dec.seed)
    Rv = Sv - dec.linear_estimate(Yv)
    held_out = float(np.mean((mlp_forward(dec.weights_, Yv) - Rv) ** 2))
    info = dec.train_info_
    history = [v for *_, v in info["validation_history"]] if name != "res-adam" else info["validation_history"]
    assert len(history) >= 2
    if name == "res-adam":
        assert len(history) == info["epochs"] and info["best_epoch"] == int(np.argmin(history)) + 1
        np.testing.assert_allclose(held_out, min(history), rtol=1e-4)      # float32 training, float64 check
    else:   # the lowest checked iterate, or the final weights when they are lower still
        assert info["best_validation"] is not None
        assert held_out <= min(history) * (1 + 1e-4)
        if info["best_validation"][0] != "final":
            np.testing.assert_allclose(held_out, min(history), rtol=1e-4)
    last = get_decoder(name, Phi, early_stopping=False, **opts).fit(Y, S)
    assert last.train_info_["validation_history"] == []
    assert last.train_info_["best_epoch" if name == "res-adam" else "best_validation"] is None
    if name == "res-adam":   # the same epochs either way: the kept epoch is no worse than the last
        last_held_out = float(np.mean((mlp_forward(last.weights_, Yv) - Rv) ** 2))
        assert held_out <= last_held_out * (1 + 1e-4) and held_out <= history[-1] * (1 + 1e-4)
    with pytest.raises(CSInputError, match="early_stopping"):
        get_decoder(name, Phi, early_stopping="yes")


@pytest.mark.parametrize("name", ["res-adam", "res-alm"])
def test_step_candidates_keep_the_lowest_held_out_error(digits, name: str) -> None:
    """With lists of ``lr``/``batch_size`` the decoder trains once per pair and keeps the pair
    with the lowest held-out MSE of the residual network: the same weights as a decoder given
    that pair alone."""
    from unrectify.cs.decoders.mlp import mlp_forward, validation_split

    if name == "res-adam":
        pytest.importorskip("torch")
        opts, grid = {"hidden": (16,), "seed": 2, "epochs": 6}, {"lr": [3e-2, 1e-3], "batch_size": [32, 128]}
    else:   # a capped number of outer iterations keeps the ALM runs deterministic
        opts = {"hidden": (8,), "seed": 2, "time_limit": 30.0, "max_outer": 3, "max_inner": 20}
        grid = {"lr": [1e-3, 1e-2]}
    Phi, Y, S, Yt, _ = digits
    dec = get_decoder(name, Phi, **opts, **grid).fit(Y, S)
    tried = dec.train_info_["step_choices"]
    pairs = [(b, r) for b in grid.get("batch_size", [64]) for r in grid["lr"]]
    assert [(t["batch_size"], t["lr"]) for t in tried] == pairs
    best = min(tried, key=lambda t: t["validation_mse"])
    assert (dec.batch_size_, dec.lr_) == (best["batch_size"], best["lr"])
    assert dec.train_info_["step_chosen"] == [best["batch_size"], best["lr"]]
    _, _, Yv, Sv = validation_split(Y, S, dec.validation, dec.seed)
    held_out = float(np.mean((mlp_forward(dec.weights_, Yv) - (Sv - dec.linear_estimate(Yv))) ** 2))
    np.testing.assert_allclose(held_out, best["validation_mse"], rtol=1e-9)
    alone = get_decoder(name, Phi, **opts, lr=dec.lr_, batch_size=dec.batch_size_).fit(Y, S)
    assert "step_choices" not in alone.train_info_ and (alone.batch_size_, alone.lr_) == (dec.batch_size_, dec.lr_)
    np.testing.assert_allclose(alone.predict(Yt), dec.predict(Yt), atol=1e-6)


def test_step_candidates_are_checked() -> None:
    Phi = gaussian_operator(0.25, 64, seed=0)
    for name in ("res-adam", "res-alm"):
        if name == "res-adam" and importlib.util.find_spec("torch") is None:
            continue
        for bad, words in (({"lr": []}, "must not be empty"), ({"lr": [1e-3, "x"]}, "list of numbers"),
                           ({"batch_size": [64, True]}, "list of numbers"), ({"lr": [1e-3, -1.0]}, "lr"),
                           ({"batch_size": [64, 0]}, "batch_size"),
                           ({"lr": [1e-3, 1e-4], "validation": 0.0}, "held-out pairs")):
            with pytest.raises(CSInputError, match=words):
                get_decoder(name, Phi, **bad)


def test_trainers_check_the_held_out_pairs_they_are_given(digits) -> None:
    from unrectify.cs.decoders.alm import train_mlp_alm
    from unrectify.cs.decoders.mlp import training_and_held_out

    _, Y, S, _, _ = digits
    assert training_and_held_out(Y, S, 0.5, 0, None, (Y[:0], S[:0]))[2] is None   # no rows: nothing held out
    for bad, words in (((Y[:5, :3], S[:5]), "inputs"), ((Y[:5], S[:4]), "targets"),
                       ((np.full((2, Y.shape[1]), np.nan), S[:2]), "NaN"), (("a", "b"), "numeric")):
        with pytest.raises(CSInputError, match=words):
            train_mlp_alm(Y, S, (4,), time_limit=1.0, validation_data=bad)


# ---------------------------------------------------------------- block CS
def test_blocks_round_trip_and_exact_block_cs() -> None:
    img = np.random.default_rng(0).random((70, 40))
    blocks, padded = image_to_blocks(img, 33)
    assert blocks.shape == (3 * 2, 33 * 33) and padded == (99, 66)
    np.testing.assert_array_equal(blocks_to_image(blocks, padded, img.shape, 33), img)
    np.testing.assert_array_equal(blocks[0].reshape(33, 33), img[:33, :33])
    Phi = gaussian_operator(1.0, 33 * 33, seed=0)  # square Phi: the pseudo-inverse is exact
    pinv = get_decoder("pinv", Phi, clip=False)
    rec = block_cs(img, lambda B: measure(B, Phi), pinv.reconstruct)
    np.testing.assert_allclose(rec, img, atol=1e-8)


def test_tv_anchored_hybrid_picks_beta_on_held_out_pairs(digits) -> None:
    pytest.importorskip("torch")
    from unrectify.cs.metrics import psnr

    Phi, Y, S, Yt, St = digits
    dec = get_decoder("tv+res-adam", Phi, inner_options={"hidden": (8,), "epochs": 2}, betas=(0.0, 0.1, 10.0),
                      max_iter=50, validation=0.2).fit(Y, S)
    assert dec.name == "tv+res-adam" and dec.inner_.name == "res-adam"
    assert set(dec.validation_psnr_) == set(dec.validation_mse_) == {"tv", 0.0, 0.1, 10.0}
    # chosen by the reported metric (mean PSNR), so on the held-out pairs never below plain TV
    assert dec.validation_psnr_[dec.beta_] == max(dec.validation_psnr_.values()) >= dec.validation_psnr_["tv"]
    tv = get_decoder("tv", Phi, max_iter=50)
    Yv, Sv = dec_validation(Y, S)
    assert dec.validation_psnr_["tv"] == pytest.approx(float(np.mean(psnr(Sv, tv.reconstruct(Yv), max_db=100.0))))
    X0 = dec.inner_.reconstruct(Yt)
    for beta in (0.1, "tv"):
        dec.beta_ = beta
        want = tv.reconstruct(Yt) if beta == "tv" else np.clip(dec._tv.solve(Yt, S0=X0, anchor=X0, beta=beta), 0, 1)
        np.testing.assert_allclose(dec.reconstruct(Yt), want)
    # a huge anchor weight returns the learned estimate; beta = 0 is TV recovery
    big = dec._tv.solve(Yt, S0=X0, anchor=X0, beta=1e8)
    np.testing.assert_allclose(big, np.clip(X0, 0, 1), atol=1e-5)
    no_tv = get_decoder("tv+res-adam", Phi, inner_options={"hidden": (8,), "epochs": 1}, betas=(0.0, 1.0),
                        plain_tv=False, max_iter=20, validation=0.2).fit(Y, S)
    assert set(no_tv.validation_psnr_) == {0.0, 1.0}
    with pytest.raises(CSInputError, match="learned"):
        get_decoder("tv+res-adam", Phi, inner="tv")


def dec_validation(Y, S, validation=0.2, seed=0):
    """The held-out pairs the hybrid selects on (same split; all of them when at most n_select = 200)."""
    from unrectify.cs.decoders.mlp import validation_split

    _, _, Yv, Sv = validation_split(Y, S, validation, seed)
    return Yv[:200], Sv[:200]


# ---------------------------------------------------------------- held-out groups
def test_held_out_mask_holds_out_whole_groups() -> None:
    from unrectify.cs.decoders.mlp import MIN_HELD_OUT_GROUPS, held_out_mask

    rng = np.random.default_rng(0)
    for seed in range(20):
        sizes = rng.integers(1, 60, size=rng.integers(2, 25))
        groups = np.repeat(np.arange(sizes.size), sizes)
        mask = held_out_mask(groups.size, 0.1, seed, groups)
        if mask is None:
            continue
        held = np.unique(groups[mask])
        assert not np.isin(groups[~mask], held).any()          # no group on both sides
        assert (~mask).sum() >= 10 and held.size < sizes.size   # something is left to train on
        if sizes.size >= 2 * MIN_HELD_OUT_GROUPS:
            assert held.size >= MIN_HELD_OUT_GROUPS
        small = sizes <= max(2 * round(0.1 * groups.size), sizes.min())
        # the fraction is reached unless every small group is already held out
        assert mask.sum() >= round(0.1 * groups.size) or held.size >= min(small.sum(), sizes.size - 1) \
            or held.size == MIN_HELD_OUT_GROUPS
        np.testing.assert_array_equal(mask, held_out_mask(groups.size, 0.1, seed, groups))  # seeded
    # one huge group is passed over; a single group cannot be split
    groups = np.repeat(np.arange(8), [1000, 30, 30, 30, 30, 30, 30, 30])
    mask = held_out_mask(groups.size, 0.05, 0, groups)
    assert 0 not in groups[mask] and np.unique(groups[mask]).size >= MIN_HELD_OUT_GROUPS
    assert held_out_mask(100, 0.2, 0, np.zeros(100, dtype=int)) is None


def test_fit_with_groups_validates_and_reaches_the_held_out_choices(digits) -> None:
    from unrectify.cs.decoders.mlp import held_out_mask

    Phi, Y, S, Yt, St = digits
    with pytest.raises(CSInputError, match="groups must be one label per training pair"):
        get_decoder("linear", Phi).fit(Y, S, groups=np.zeros(3))
    with pytest.raises(CSInputError, match="non-finite"):
        get_decoder("linear", Phi).fit(Y, S, groups=np.full(Y.shape[0], np.nan))
    labels = np.array([f"img{k}" for k in np.arange(Y.shape[0]) % 12])   # any hashable labels
    g = np.unique(labels, return_inverse=True)[1]
    mask = held_out_mask(Y.shape[0], 0.2, 0, g)
    assert mask is not None
    hyb = get_decoder("tv+res-alm+lbfgs", Phi, inner_options={"hidden": (8,), "time_limit": 1.0}, betas=(0.0, 1.0),
                      max_iter=10, validation=0.2).fit(Y, S, groups=labels)
    # the inner decoder trained on exactly the pairs of the groups that were not held out
    assert hyb.inner_.n_train_ == (~mask).sum() < Y.shape[0]
    assert set(hyb.validation_psnr_) == {"tv", 0.0, 1.0}


def test_adaptive_hybrid_weights_each_image_by_its_disagreement(digits) -> None:
    Phi, Y, S, Yt, St = digits
    dec = get_decoder("adaptive-tv+res-alm+lbfgs", Phi, inner_options={"hidden": (8,), "time_limit": 1.0},
                      gammas=(1e-4, 1e-2), max_iter=40, validation=0.2).fit(Y, S)
    assert dec.name == "adaptive-tv+res-alm+lbfgs" and dec.gammas == (1e-4, 1e-2)
    assert set(dec.validation_psnr_) == {"tv", 1e-4, 1e-2}
    assert dec.validation_psnr_[dec.beta_] == max(dec.validation_psnr_.values())
    X_L, X_TV = dec.inner_.reconstruct(Yt), dec._tv.solve(Yt)
    w = dec.anchor_weights(X_L, X_TV, 1e-2)
    d = np.mean((X_L - X_TV) ** 2, axis=1)
    np.testing.assert_allclose(w, 1e-2 / np.maximum(d, 1e-8))
    assert np.all(np.diff(w[np.argsort(d)]) <= 0)     # more disagreement, less weight on the anchor
    # one weight per row reaches the solver: it equals solving each row with its own scalar weight
    dec.beta_ = 1e-2
    rows = np.stack([np.clip(dec._tv.solve(Yt[i:i + 1], S0=X_L[i:i + 1], anchor=X_L[i:i + 1], beta=w[i]), 0, 1)[0]
                     for i in range(3)])
    np.testing.assert_allclose(dec.reconstruct(Yt)[:3], rows, atol=1e-6)
    with pytest.raises(CSInputError, match="anchor weight"):
        dec._tv.solve(Yt, anchor=X_L, beta=np.ones(2))
    with pytest.raises(CSInputError, match="gammas must be"):
        get_decoder("adaptive-tv+res-alm+lbfgs", Phi, gammas=(-1.0,))
