"""Augmented Lagrangian solver (unrectify.backends.alm): block descent, convergence, restarts, inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from unrectify.backends.alm import ALMResult, solve_alm
from unrectify.backends.alm.blocks import (
    update_hidden_x,
    update_hidden_zdpq,
    update_output,
    update_weights,
)
from unrectify.backends.alm.boxls import box_qp
from unrectify.backends.alm.state import (
    affine,
    augmented_lagrangian,
    evaluate,
    layer_input,
    make_context,
    state_from_forward,
)
from unrectify.formulations.errors import InputError
from unrectify.formulations.problem import TrainingProblem, random_instance
from unrectify.solution import certify_split_iterate

FAST = {"max_outer": 20, "max_inner": 50}


# ---------------------------------------------------------------- block descent (property)
def _random_state(data):
    n_hidden = data.draw(hst.integers(1, 2), label="hidden layers")
    widths = [data.draw(hst.integers(1, 3), label="n0")]
    widths += [data.draw(hst.integers(1, 3), label=f"n{k}") for k in range(1, n_hidden + 1)]
    widths.append(data.draw(hst.integers(1, 2), label="nL"))
    N = data.draw(hst.integers(2, 7), label="N")
    loss = data.draw(hst.sampled_from(["mse", "mae"]), label="loss")
    B = data.draw(hst.sampled_from([None, 0.7, 2.0]), label="B")
    seed = data.draw(hst.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(N, widths[0]))
    Y = rng.normal(size=(N, widths[-1]))
    p = TrainingProblem(X, Y, widths, loss=loss, weight_bound=B)
    lim = 1.0 if B is None else B
    weights = [(rng.uniform(-lim, lim, size=(widths[l], widths[l - 1])), rng.uniform(-lim, lim, size=widths[l]))
               for l in range(1, len(widths))]
    mu = float(10 ** rng.uniform(-3, 1))
    ctx = make_context(p)
    st = state_from_forward(ctx, weights, mu)
    # move every variable away from the forward pass, inside its bounds, with random multipliers
    for h in st.hidden:
        h.Z += rng.normal(size=h.Z.shape)
        h.X += rng.normal(size=h.X.shape)
        h.D[...] = rng.uniform(size=h.D.shape)
        h.P[...] = np.abs(rng.normal(size=h.P.shape))
        h.Q[...] = np.abs(rng.normal(size=h.Q.shape))
        for U in (h.U1, h.U2, h.U3, h.U4):
            U[...] = mu * rng.normal(size=U.shape)
    st.ZL += rng.normal(size=st.ZL.shape)
    st.U1L[...] = mu * rng.normal(size=st.U1L.shape)
    return ctx, st


def _blocks(ctx, st):
    """(name, update) for every block of one sweep, in sweep order."""
    L = len(st.weights)
    out = []
    for l in range(L):
        out.append((f"W{l}", lambda l=l: update_weights(ctx, st, l)))
        A = lambda l=l: affine(layer_input(ctx, st, l), *st.weights[l], ctx.dtype)
        if l < L - 1:
            out.append((f"ZDPQ{l}", lambda l=l, A=A: update_hidden_zdpq(ctx, st, l, A())))
            out.append((f"X{l}", lambda l=l: update_hidden_x(ctx, st, l)))
        else:
            out.append(("ZL", lambda A=A: update_output(ctx, st, A())))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hst.data())
def test_every_block_update_does_not_increase_the_augmented_lagrangian(data):
    ctx, st = _random_state(data)
    for _ in range(2):
        for name, upd in _blocks(ctx, st):
            before = augmented_lagrangian(ctx, st)
            upd()
            after = augmented_lagrangian(ctx, st)
            assert after <= before + 1e-9 * max(1.0, abs(before)), (name, before, after)
    # bounds of the block variables hold after the updates
    for h in st.hidden:
        assert h.D.min() >= 0 and h.D.max() <= 1 and h.P.min() >= 0 and h.Q.min() >= 0
    if ctx.bound is not None:
        assert max(max(np.abs(W).max(), np.abs(b).max()) for W, b in st.weights) <= ctx.bound


def test_box_qp_matches_bounded_least_squares():
    from scipy.optimize import lsq_linear

    rng = np.random.default_rng(3)
    for d, kw in ((3, {}), (6, {}), (9, {"newton_dim": 4})):  # faces, projected Newton, projected gradient
        A = rng.normal(size=(30, d))
        G = A.T @ A
        H = rng.normal(size=(d, 4)) * 20
        T = box_qp(G, H, 0.5, np.zeros((d, 4)), iters=5000, **kw)
        Lc = np.linalg.cholesky(G)
        for j in range(4):
            ref = lsq_linear(Lc.T, np.linalg.solve(Lc, H[:, j]), bounds=(-0.5, 0.5), method="bvls", tol=1e-14).x
            def q(t, G=G, h=H[:, j]):
                return 0.5 * t @ G @ t - h @ t

            assert q(T[:, j]) <= q(ref) + 1e-8 * abs(q(ref))
        assert np.abs(T).max() <= 0.5


# ---------------------------------------------------------------- convergence and certificates
def test_tiny_instance_converges_to_a_certified_kkt_point():
    p = random_instance(5, (1, 2, 1), seed=2, weight_bound=2.0)
    res = solve_alm(p, restarts=1, seed=0)
    assert isinstance(res, ALMResult)
    assert res.status == "local" and res.stop_reason == "converged" and res.converged
    assert res.max_violation <= 1e-6 and res.stationarity <= 1e-6
    cert = certify_split_iterate(p, res.weights, res.hidden, res.output)
    assert cert.max_violation <= 1e-6 and cert.loss_agrees
    assert abs(res.forward_loss - res.objective) <= 1e-6 * max(1.0, res.forward_loss)
    assert res.forward_loss == pytest.approx(p.forward_loss(res.weights), rel=1e-12)
    keys = {"restart", "outer", "loss", "forward_loss", "viol", "pgrad", "mu", "seconds"}
    assert res.history and keys <= set(res.history[0])


def test_pure_alm_without_polish_reaches_feasibility():
    p = random_instance(5, (1, 2, 1), seed=2, weight_bound=2.0)
    res = solve_alm(p, restarts=1, seed=0, polish=False, max_outer=60, max_inner=300, stat_tol=1e-4)
    # the ALM iterate itself (no refinement): small violation and a matching forward loss
    assert res.max_violation <= 1e-4
    cert = res.certificate(p)
    assert abs(cert.forward_loss - cert.objective_recomputed) <= 1e-3 * max(cert.forward_loss, 1e-3)
    assert res.restarts[0].forward_loss == res.forward_loss


def test_restarts_and_seeds_are_reproducible():
    p = random_instance(6, (1, 2, 1), seed=4, weight_bound=2.0)
    a = solve_alm(p, restarts=3, seed=7, **FAST)
    b = solve_alm(p, restarts=3, seed=7, **FAST)
    assert a.restart_losses == b.restart_losses
    for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
    assert a.forward_loss == min(a.restart_losses)
    assert a.restarts[0].start == "diverse"
    c = solve_alm(p, restarts=3, seed=8, **FAST)
    assert c.restart_losses != a.restart_losses


def test_reduced_method_runs_every_restart_and_returns_the_best():
    """Restarts of the reduced method: each restart after the first starts from the pattern
    rules (which read the best weights so far), and the best forward loss is returned."""
    p = random_instance(40, (2, 6, 1), seed=5, weight_bound=None)
    res = solve_alm(p, method="reduced", restarts=3, seed=2, polish=False, max_outer=5, max_inner=20)
    assert [r.restart for r in res.restarts] == [0, 1, 2]
    assert res.forward_loss == min(res.restart_losses)
    assert res.best_restart == int(np.argmin(res.restart_losses))
    assert {h["restart"] for h in res.history} == {0, 1, 2}


def test_warm_start_from_a_solution_stays_there():
    p = random_instance(6, (1, 2, 1), seed=1, weight_bound=2.0)
    a = solve_alm(p, restarts=1, seed=0, **FAST)
    b = solve_alm(p, restarts=1, init=a.weights, **FAST)
    assert b.restarts[0].start == "init"
    assert b.forward_loss <= a.forward_loss * (1 + 1e-6) + 1e-12


# ---------------------------------------------------------------- variants (smoke)
def test_mae_loss():
    p = random_instance(6, (1, 2, 1), seed=3, loss="mae", weight_bound=2.0)
    res = solve_alm(p, restarts=2, seed=0, **FAST)
    assert math.isfinite(res.forward_loss) and res.status in ("local", "time_limit")
    assert res.forward_loss <= p.forward_loss(res.weights) + 1e-12
    assert res.max_violation < 1e-2


def test_float32_and_no_box():
    p = random_instance(30, (2, 4, 1), seed=0, weight_bound=None)
    res = solve_alm(p, restarts=1, seed=0, dtype="float32", pattern_moves=0, **FAST)
    # the iterate comes back in the working dtype (no float64 copy doubling the memory);
    # weights are float64
    assert res.hidden[0]["Z"].dtype == np.float32 and res.multipliers[0][0].dtype == np.float32
    assert res.weights[0][0].dtype == np.float64
    assert res.certificate(p).max_violation < 1e-2
    assert math.isfinite(res.forward_loss) and res.max_violation < 1e-2
    ref = solve_alm(p, restarts=1, seed=0, pattern_moves=0, **FAST)
    assert res.forward_loss <= 1.5 * ref.forward_loss + 1e-3


def test_two_hidden_layers_and_certificate():
    p = random_instance(12, (1, 3, 2, 1), seed=0, weight_bound=2.0)
    res = solve_alm(p, restarts=2, seed=0, **FAST)
    assert len(res.hidden) == 2 and res.hidden[1]["Z"].shape == (12, 2)
    cert = res.certificate(p)
    assert cert.max_violation == pytest.approx(res.max_violation, abs=1e-9)
    assert res.forward_loss <= p.forward_loss(res.weights) + 1e-12


def test_frozen_layer_is_kept():
    base = random_instance(8, (1, 2, 1), seed=0, weight_bound=2.0)
    W1, b1 = np.array([[1.0], [-1.0]]), np.array([0.2, 0.1])
    p = TrainingProblem(base.X, base.Y, (1, 2, 1), weight_bound=2.0, frozen={1: (W1, b1)})
    res = solve_alm(p, restarts=2, seed=0, **FAST)
    assert np.array_equal(res.weights[0][0], W1) and np.array_equal(res.weights[0][1], b1)


# ---------------------------------------------------------------- observability and limits
def test_callback_stops_and_time_limit():
    p = random_instance(6, (1, 2, 1), seed=0, weight_bound=2.0)
    seen = []
    res = solve_alm(p, restarts=3, callback=lambda info: seen.append(info) or len(seen) >= 2)
    assert res.stop_reason == "callback" and len(seen) == 2 and len(res.restarts) == 1
    # the callback sees the iterate's weights (the history does not keep them)
    assert [W.shape for W, _ in seen[0]["weights"]] == [(n_out, n_in) for n_in, n_out in zip(p.widths, p.widths[1:])]
    assert all("weights" not in h for h in res.history)
    assert {"loss", "viol", "pgrad", "mu", "seconds"} <= set(seen[0])
    res = solve_alm(p, restarts=50, time_limit=0.5, polish=False)
    assert res.seconds < 5 and len(res.restarts) < 50


def test_progress_bar_runs(capsys):
    p = random_instance(5, (1, 2, 1), seed=0, weight_bound=2.0)
    res = solve_alm(p, progress=True, max_outer=3, max_inner=20)
    assert len(res.history) >= 1


def test_evaluate_reports_zero_violation_at_the_forward_pass():
    p = random_instance(7, (2, 3, 2, 1), seed=1, weight_bound=None)
    rng = np.random.default_rng(0)
    w = [(rng.normal(size=(p.widths[l], p.widths[l - 1])), rng.normal(size=p.widths[l])) for l in range(1, 4)]
    ctx = make_context(p)
    m = evaluate(ctx, state_from_forward(ctx, w, 1.0))
    assert m.viol <= 1e-12 and m.objective == pytest.approx(p.forward_loss(w), rel=1e-12)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"init": [(np.full((2, 1), np.nan), np.zeros(2)), (np.zeros((1, 2)), np.zeros(1))]}, "NaN"),
    ({"init": [(np.zeros((3, 1)), np.zeros(3)), (np.zeros((1, 3)), np.zeros(1))]}, "layer 1 needs"),
    ({"init": [(np.zeros((2, 1)), np.zeros(2))]}, "layers"),
    ({"restarts": 0}, "restarts"),
    ({"time_limit": -1.0}, "time_limit"),
    ({"dtype": "float16"}, "dtype"),
    ({"mu0": 0.0}, "mu0"),
    ({"nonsense": 1}, "unknown ALM option"),
    ({"strategy": "magic"}, "strategy"),
    ({"lr_schedule": "step"}, "lr_schedule"),
])
def test_bad_input_raises_one_line_value_error(kwargs, match):
    p = random_instance(5, (1, 2, 1), seed=0, weight_bound=2.0)
    with pytest.raises(InputError, match=match) as info:
        solve_alm(p, **kwargs)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_not_a_problem_raises():
    with pytest.raises(InputError):
        solve_alm("not a problem")  # type: ignore[arg-type]


def test_warm_start_outside_the_box_is_clipped_and_reported():
    p = random_instance(5, (1, 2, 1), seed=0, weight_bound=1.0)
    w = [(np.full((2, 1), 3.0), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))]
    res = solve_alm(p, init=w, **FAST)
    assert "clipped" in res.message
    assert max(np.abs(W).max() for W, _ in res.weights) <= 1.0


# ---------------------------------------------------------------- pattern search and polish
def test_pattern_search_never_increases_the_forward_loss():
    from unrectify.backends.alm.init import kink_start
    from unrectify.backends.alm.patterns import candidate_flips, pattern_search
    from unrectify.backends.alm.polish import forward_all

    p = random_instance(6, (1, 2, 1), seed=3, weight_bound=2.0)
    w0 = kink_start(p, np.random.default_rng(0))
    w, _ = pattern_search(p, w0, max_moves=3)
    assert p.forward_loss(w) <= p.forward_loss(w0)
    assert max(max(np.abs(W).max(), np.abs(b).max()) for W, b in w) <= 2.0
    _, zs = forward_all(w0, p.X)
    flips = candidate_flips(zs)
    assert len(flips) == 4 and all(f[3] >= 0 for f in flips)  # one per side of each of 2 kinks


def test_polished_point_with_a_kink_on_a_data_point_is_certified():
    # seed 7 ends with a kink exactly on a sample (a degenerate entry held at z = 0)
    p = random_instance(6, (1, 2, 1), seed=7, weight_bound=2.0)
    res = solve_alm(p, restarts=3, seed=5)
    assert res.status == "local"
    cert = res.certificate(p)
    assert cert.max_violation <= 1e-6 and cert.loss_agrees and res.stationarity <= 1e-6


def test_stationarity_matches_a_finite_difference_gradient():
    # evaluate's stationarity = sup norm over all variables of the projected step
    # |v - P(v - g)| (P: projection on the bounds of v; identity for free variables), with
    # weight gradients divided by N; here g comes from central differences of L
    rng = np.random.default_rng(0)
    p = TrainingProblem(rng.uniform(-1, 1, (5, 2)), rng.normal(size=(5, 1)), (2, 3, 2, 1), weight_bound=None)
    w = [(rng.normal(size=(p.widths[l], p.widths[l - 1])), rng.normal(size=p.widths[l])) for l in range(1, 4)]
    ctx = make_context(p)
    st = state_from_forward(ctx, w, 0.3)
    for h in st.hidden:
        h.Z += rng.normal(size=h.Z.shape)
        h.X += rng.normal(size=h.X.shape)
        h.D[...] = rng.uniform(0.2, 0.8, size=h.D.shape)
        h.P[...] = rng.uniform(0.0, 1.0, size=h.P.shape)
        h.Q[...] = rng.uniform(0.0, 1.0, size=h.Q.shape)
        for U in (h.U1, h.U2, h.U3, h.U4):
            U[...] = rng.normal(size=U.shape)
    st.ZL += rng.normal(size=st.ZL.shape)
    blocks = []  # (array, projection of v - g, scale)
    for h in st.hidden:
        blocks += [(h.Z, None, 1.0), (h.X, None, 1.0), (h.D, (0.0, 1.0), 1.0), (h.P, (0.0, None), 1.0),
                   (h.Q, (0.0, None), 1.0)]
    blocks.append((st.ZL, None, 1.0))
    blocks += [(a, None, 1.0 / p.n_samples) for W, b in st.weights for a in (W, b)]
    measure = 0.0
    for a, box, scale in blocks:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + 1e-6
            up = augmented_lagrangian(ctx, st)
            a[idx] = old - 1e-6
            down = augmented_lagrangian(ctx, st)
            a[idx] = old
            g[idx] = (up - down) / 2e-6 * scale
        step = a - g if box is None else np.clip(a - g, *box)
        measure = max(measure, float(np.abs(a - step).max()))
    assert evaluate(ctx, st).pgrad == pytest.approx(measure, rel=1e-5)


def test_polish_callback_sees_weights_and_stops_the_polish():
    """polish_callback gets every polish iteration's weights and loss; True ends the polish."""
    p = random_instance(40, (2, 8, 1), seed=1, weight_bound=None)
    calls = []

    def cb(it, weights, loss):
        calls.append((it, loss))
        assert [W.shape for W, _ in weights] == [(8, 2), (1, 8)]
        assert abs(loss - p.forward_loss(weights)) <= 1e-9 * max(1.0, loss)
        return it >= 3

    res = solve_alm(p, polish_max_weights=1, polish_callback=cb, pattern_moves=0)
    assert [it for it, _ in calls] == [1, 2, 3]
    pol = [h for h in res.history if h.get("phase") == "polish"]
    assert pol and pol[0]["polish_iters"] <= 3
    with pytest.raises(InputError, match="polish_callback"):
        solve_alm(p, polish_callback=3)


# ---------------------------------------------------------------- reduced-space ALM (large networks)
def _reduced_run(seed: int = 0, widths=(3, 4, 3, 2), N: int = 7):
    from unrectify.backends.alm.options import ALMOptions
    from unrectify.backends.alm.reduced import _Run

    rng = np.random.default_rng(seed)
    p = TrainingProblem(rng.normal(size=(N, widths[0])), rng.normal(size=(N, widths[-1])), widths,
                        loss="mse", weight_bound=None)
    w = [(rng.normal(size=(widths[l], widths[l - 1])), rng.normal(size=widths[l])) for l in range(1, len(widths))]
    run = _Run(p, w, "float64", ALMOptions(rho0=3.0))
    run.refresh, run.d_damp = False, 1.0
    for D in run.D:
        D[...] = rng.uniform(size=D.shape)
    for lam in run.la + run.lb:
        lam[...] = np.abs(rng.normal(size=lam.shape)) * (rng.uniform(size=lam.shape) < 0.5)
    return p, run, rng


def test_reduced_gradient_matches_finite_differences():
    """The backpropagated weight gradient of loss + PHR penalty through X = D * Z."""
    _, run, _ = _reduced_run()
    rows = np.arange(run.N)
    gW, gb, *_ = run.grads(rows, 1.0)
    for arrs, gs in ((run.W, gW), (run.b, gb)):
        for A, G in zip(arrs, gs):
            for idx in np.ndindex(A.shape):
                old = A[idx]
                A[idx] = old + 1e-6
                up = run.penalty_value(rows)
                A[idx] = old - 1e-6
                down = run.penalty_value(rows)
                A[idx] = old
                assert (up - down) / 2e-6 == pytest.approx(G[idx], abs=1e-6)


def test_reduced_d_step_is_the_exact_block_minimiser():
    """refresh_d returns the minimiser over [0, 1] of its convex piecewise quadratic (checked on a
    fine grid, for all sign cases, small and large z, zero and nonzero multipliers, several rho)."""
    _, run, rng = _reduced_run()
    n = 5000
    Z = rng.normal(size=n) * rng.choice([1e-3, 1.0, 10.0], n)
    Z[:5] = 0.0
    D0 = rng.uniform(size=n)
    la = np.abs(rng.normal(size=n)) * (rng.uniform(size=n) < 0.5) * rng.choice([1.0, 100.0], n)
    lb = np.abs(rng.normal(size=n)) * (rng.uniform(size=n) < 0.5)
    kp = np.abs(rng.normal(size=n))
    grid = np.linspace(0.0, 1.0, 4001)[:, None]
    for rho in (0.1, 1.0, 1e3, 1e6):
        run.rho = rho

        def f(x):
            return 0.5 * kp * Z**2 * (x - D0) ** 2 + (0.5 / rho) * (
                np.maximum(0, la - rho * Z * x) ** 2 + np.maximum(0, lb + rho * Z * (1 - x)) ** 2)

        d = run.refresh_d(D0, Z, la, lb, kp)
        assert np.all((d >= 0) & (d <= 1))
        assert np.all(f(d) <= f(grid).min(axis=0) + 1e-12 * np.maximum(1.0, np.abs(f(grid).min(axis=0))))
        assert np.array_equal(d[:5], D0[:5])  # z = 0: the value does not depend on d


def test_reduced_step_is_adam_on_each_weight_array():
    """The flat-vector update of ``_Run.step`` is textbook Adam (bias-corrected) per weight array
    on the block gradient, followed by the weight box; a frozen layer never moves."""
    from unrectify.backends.alm.options import ALMOptions
    from unrectify.backends.alm.reduced import _Run

    rng = np.random.default_rng(3)
    widths, N, B, lr = (3, 5, 4, 2), 9, 0.55, 0.05
    w = [(rng.uniform(-0.5, 0.5, size=(widths[l], widths[l - 1])), rng.uniform(-0.5, 0.5, size=widths[l]))
         for l in range(1, len(widths))]
    p = TrainingProblem(rng.normal(size=(N, 3)), rng.normal(size=(N, 2)), widths, loss="mse", weight_bound=B,
                        frozen={2: w[1]})
    run = _Run(p, w, "float64", ALMOptions(rho0=2.0))
    run.refresh, run.d_step, run.d_damp = False, False, 1.0
    for D in run.D:
        D[...] = rng.uniform(size=D.shape)
    for lam in run.la + run.lb:
        lam[...] = np.abs(rng.normal(size=lam.shape))
    rows = np.array([0, 2, 3, 7])
    params = [*run.W, *run.b]
    m = [np.zeros_like(a) for a in params]
    v = [np.zeros_like(a) for a in params]
    frozen = [run.W[1].copy(), run.b[1].copy()]
    for t in range(1, 7):
        gW, gb, *_ = run.grads(rows, 1.0 / len(rows))
        grads = [None if g is None else g.copy() for g in (*gW, *gb)]
        expected = []
        for i, (a, g) in enumerate(zip(params, grads)):
            if g is None:
                expected.append(a.copy())
                continue
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            step = lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8 / np.sqrt(1 - 0.999**t))
            expected.append(np.clip(a - step, -B, B))
        run.step(rows, lr)
        for a, e in zip(params, expected):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)
    assert any(np.any(np.abs(a) == B) for a in params)  # the box was active
    np.testing.assert_array_equal(run.W[1], frozen[0])
    np.testing.assert_array_equal(run.b[1], frozen[1])


def test_reduced_worker_threads_reproduce_the_serial_run(monkeypatch):
    """Split over two threads (rows halved, gradients summed, Adam on halves of the flat vector,
    outer-pass chunks in parallel) a run takes the serial run's steps, D steps and multiplier
    updates, up to the rounding of the gradient sum."""
    from unrectify.backends.alm import reduced

    # split this small network's steps and Adam update too (at decoder size they are split
    # from 2 x 128 rows of width 256 and 2 x 2^16 weights)
    monkeypatch.setattr(reduced, "MIN_PART_ENTRIES", 9 * 64)
    monkeypatch.setattr(reduced, "MIN_SLICE", 1)
    MIN_PART = 64

    runs = []
    for workers in (1, 2):
        p, run, rng = _reduced_run(seed=5, widths=(5, 9, 7, 3), N=4 * MIN_PART + 3)
        run.refresh, run.d_step = True, True
        run.B = 0.9
        run.segments = [slice(0, run.theta.size)]
        run.start_workers(workers)
        for _ in range(4):
            rows = np.sort(rng.choice(run.N, size=2 * MIN_PART + 1, replace=False))
            assert len(run.parts(rows)) == workers
            assert len(run.parts(rows[:2 * MIN_PART - 1])) == 1  # too small to split
            run.step(rows, 0.05)
        m = run.outer_pass(50.0, refresh=True, update=True, chunk=MIN_PART)
        run.stop_workers()
        runs.append((run, m))
    (a, ma), (b, mb) = runs
    for x, y in ((a.theta, b.theta), (a.m, b.m), (a.v, b.v), *zip(a.D, b.D), *zip(a.la, b.la), *zip(a.lb, b.lb)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    assert not np.array_equal(a.theta, _reduced_run(seed=5, widths=(5, 9, 7, 3), N=4 * MIN_PART + 3)[1].theta)
    for k in ma:
        assert ma[k] == pytest.approx(mb[k], rel=1e-10, abs=1e-12)


def test_reduced_steps_split_only_with_enough_entries_per_thread():
    """A step is split over two threads from 2 x 128 rows at hidden width 256 (the measured
    break-even), from fewer rows on wider layers, never on narrow ones at these sizes."""
    for widths, split_from in (((3, 256, 3), 256), ((3, 512, 256, 3), 128), ((3, 8, 3), None)):
        _, run, _ = _reduced_run(widths=widths, N=600)
        run.start_workers(2)
        try:
            for n in (128, 255, 256, 600):
                expect = 2 if split_from is not None and n >= split_from else 1
                assert len(run.parts(np.arange(n))) == expect, (widths, n)
        finally:
            run.stop_workers()


@pytest.mark.parametrize("pattern", ["relaxed", "forward", "layer2_off"])
def test_reduced_outer_pass_forward_loss_is_the_relu_networks(pattern):
    """The outer pass reports the ReLU forward-pass loss of the weights whatever D is: relaxed,
    the forward pass's own 0/1 pattern (then the relaxed pass is reused), or that pattern with
    one entry of the second layer flipped (the first layer reused, the rest recomputed)."""
    p, run, _ = _reduced_run(seed=2, widths=(4, 6, 5, 3), N=40)
    if pattern != "relaxed":
        H = p.X
        for l, D in enumerate(run.D):
            Z = H @ run.W[l].T + run.b[l]
            D[...] = Z > 0
            H = D * Z
        if pattern == "layer2_off":
            i, j = np.argwhere(np.abs(H) > 1e-3)[0]
            run.D[1][i, j] = 0.0
    m = run.outer_pass(10.0, refresh=False, update=False, chunk=16)
    assert m["forward_loss"] == pytest.approx(p.forward_loss(list(zip(run.W, run.b))), rel=1e-12)
    assert (m["forward_loss"] == pytest.approx(m["objective"], rel=1e-12)) == (pattern == "forward")


def test_stall_monitor_compares_window_means():
    from unrectify.backends.alm.outer import StallMonitor

    m = StallMonitor(window=3, obj_rtol=1e-3, viol_ratio=0.5, viol_floor=1e-6)
    # fewer than 2 windows: never stalled, even when flat
    assert [m.update(1.0, 1.0) for _ in range(5)] == [False] * 5
    assert m.update(1.0, 1.0)  # 6th: flat objective, violation not halved
    # noisy but falling: single values bounce above the best, window means fall -> progress
    m = StallMonitor(window=3, obj_rtol=1e-3, viol_ratio=0.5, viol_floor=1e-6)
    seq = [1.0, 0.8, 0.9, 0.85, 0.7, 0.95, 0.8, 0.65, 0.9, 0.6, 0.75, 0.7]
    assert not any(m.update(v, 1e-7) for v in seq)
    # violation above the floor that halves counts as progress; below the floor it does not
    m = StallMonitor(window=2, obj_rtol=1e-3, viol_ratio=0.5, viol_floor=1e-6)
    assert [m.update(1.0, v) for v in (1.0, 1.0, 0.4, 0.4)] == [False, False, False, False]
    assert m.update(1.0, 0.4) is True  # last window [0.4, 0.4] vs best before it 0.4
    m = StallMonitor(window=2, obj_rtol=1e-3, viol_ratio=0.5, viol_floor=1e-6)
    assert [m.update(1.0, v) for v in (1e-7, 1e-7, 1e-9, 1e-11)] == [False, False, False, True]
    # the window grows with the run: after 40 iterations it is 10, so a flat stretch of 6 after
    # a long decrease is not yet a stall
    m = StallMonitor(window=3, obj_rtol=1e-3, viol_ratio=0.5)
    assert not any(m.update(1.0 - 0.01 * i, 1.0) for i in range(40))
    assert not any(m.update(0.6, 1.0) for _ in range(6))


def test_reduced_alm_stops_as_stalled_not_at_the_time_limit():
    """A run that cannot progress (lr tiny, feasible start) stops with stop_reason 'stalled',
    well before its time limit, and its status does not claim convergence."""
    p = random_instance(60, (2, 8, 8, 1), seed=3, weight_bound=None)
    res = solve_alm(p, method="reduced", polish=False, lr=1e-14, d_refresh=False, d_step=False, stall_window=3,
                    time_limit=60, max_outer=10**6)
    assert res.stop_reason == "stalled"
    assert res.status == "time_limit" and not res.converged
    assert res.seconds < 30
    assert res.name == "alm" and res.method == "reduced"
    assert len([h for h in res.history if h.get("phase") == "reduced"]) <= 6  # two windows of 3


def test_cosine_lr_decays_over_whichever_budget_runs_out_first():
    from unrectify.backends.alm.reduced import cosine_lr

    assert cosine_lr(1e-3, 0.0, 10.0, 0, 100) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 5.0, 10.0, 0, 100) == pytest.approx(5e-4)          # half the seconds
    assert cosine_lr(1e-3, 1.0, 10.0, 50, 100) == pytest.approx(5e-4)         # half the outer steps
    assert cosine_lr(1e-3, 20.0, 10.0, 0, 100) == pytest.approx(0.0, abs=1e-18)
    assert cosine_lr(1e-3, 5.0, None, 25, 100) == pytest.approx(1e-3 * (1 + np.cos(np.pi / 4)) / 2)


def test_reduced_alm_passes_the_scheduled_lr_to_its_steps(monkeypatch):
    """``lr_schedule="cosine"`` with a time limit: the inner steps get a non-increasing lr that
    starts at ``lr`` and ends near 0; ``"constant"`` keeps ``lr`` throughout."""
    from unrectify.backends.alm import reduced

    p = random_instance(400, (2, 16, 16, 1), seed=5, weight_bound=None)
    step = reduced._Run.step
    for sched in ("constant", "cosine"):
        lrs: list[float] = []

        def spy(self, rows, lr, *a, lrs=lrs, **k):
            lrs.append(lr)
            return step(self, rows, lr, *a, **k)

        monkeypatch.setattr(reduced._Run, "step", spy)
        res = solve_alm(p, method="reduced", polish=False, time_limit=2, max_outer=10**6, lr=3e-3,
                        lr_schedule=sched, stall_window=10**6)
        assert np.isfinite(res.forward_loss) and len(lrs) > 100
        if sched == "constant":
            assert set(lrs) == {3e-3}
        else:
            assert lrs[0] == 3e-3 and all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 3e-4


def test_reduced_alm_ends_feasible_with_binary_d_and_matching_forward_loss():
    """The pure reduced ALM drives the sign-constraint violation down (D to 0/1): the returned D
    is binary to 1e-3 on >= 99.9 % of the entries, the split iterate certifies at the reported
    violation, and the ReLU forward pass (D = 1[Z > 0]) reproduces the ALM's objective."""
    p = random_instance(200, (2, 16, 16, 1), seed=4, weight_bound=None)
    res = solve_alm(p, method="reduced", polish=False, time_limit=8, max_outer=60, lr=3e-3)
    assert res.name == "alm"
    assert res.max_violation <= 1e-4
    assert res.binary_fraction >= 0.999
    cert = certify_split_iterate(p, res.weights, res.hidden, res.output)
    assert cert.max_violation <= 1e-4 + 1e-9
    assert abs(res.forward_loss - res.objective) <= 1e-3 * max(1.0, res.objective)


def test_rounding_a_feasible_relaxed_iterate_keeps_the_loss():
    """Theorem (docs/theory.md): at a feasible relaxed point, D = 1[Z > 0] changes no X, so no loss,
    even where D is fractional at z = 0."""
    from unrectify.backends.alm.reduced import binarize

    X = np.array([[0.0], [1.0], [-1.0], [2.0]])
    Y = np.array([[0.3], [1.0], [0.0], [2.5]])
    p = TrainingProblem(X, Y, (1, 2, 1), loss="mse", weight_bound=None)
    weights = [(np.array([[1.0], [-1.0]]), np.array([0.0, 0.0])), (np.array([[1.0, 0.5]]), np.array([0.1]))]
    Z = X @ weights[0][0].T + weights[0][1]
    D = (Z > 0).astype(float)
    D[Z == 0] = 0.37  # fractional where z = 0: still feasible (x = d z = 0 = relu(0))
    hidden = [{"Z": Z, "X": D * Z, "D": D}]
    out = hidden[0]["X"] @ weights[1][0].T + weights[1][1]
    assert certify_split_iterate(p, weights, hidden, out).max_violation == 0.0
    relaxed_loss = float(np.sum((out - Y) ** 2) / 4)
    bh, bout, loss = binarize(p, weights)
    assert np.array_equal(bh[0]["D"], (Z > 0).astype(float))
    assert set(np.unique(bh[0]["D"])) <= {0.0, 1.0}
    assert loss == pytest.approx(relaxed_loss, abs=1e-15)
    assert loss == pytest.approx(p.forward_loss(weights), abs=1e-15)


def test_result_names_tell_pure_alm_from_refined():
    """'alm' is the ALM alone; a gradient refinement that made the weights is named apart."""
    p = random_instance(80, (2, 12, 12, 1), seed=5, weight_bound=None)
    pure = solve_alm(p, method="reduced", polish=False, time_limit=3, max_outer=20)
    assert pure.name == "alm" and pure.summary()["name"] == "alm"
    ref = solve_alm(p, method="reduced", polish=True, time_limit=3, max_outer=20, polish_iters=30)
    assert ref.name in ("alm+lbfgs", "alm")
    if ref.name == "alm+lbfgs":
        assert ref.forward_loss <= ref.alm_forward_loss
    small = solve_alm(random_instance(10, (1, 2, 1), seed=0), restarts=1)
    assert small.method == "blocks" and small.name in ("alm", "alm+slsqp")
    with pytest.raises(InputError, match="method"):
        solve_alm(p, method="nope")


# ---------------------------------------------------------------- wide layers (issue 16)
def test_wide_output_fit_matches_the_gram_solve():
    """The kernel-form output fit (layer wider than the data) solves the same box QP as the
    (n+1) x (n+1) Gram path: equal objective, with and without active bounds."""
    from unrectify.backends.alm.boxls import box_ls_wide
    from unrectify.backends.alm.state import augmented_gram

    rng = np.random.default_rng(3)
    N, n = 12, 150
    H = np.maximum(rng.standard_normal((N, n)), 0.0)
    Y = rng.standard_normal((N, 2))
    T0 = rng.uniform(-0.01, 0.01, (n + 1, 2))
    G = augmented_gram(H)
    eps = 1e-6 * np.trace(G) / (n + 1)
    G[np.diag_indices(n + 1)] += eps
    h = np.vstack([H.T @ Y, Y.sum(axis=0)[None, :]]) + eps * T0

    def q(t):
        return 0.5 * np.einsum("ij,ij->j", t, G @ t) - np.einsum("ij,ij->j", h, t)

    for B in (None, 10.0, 0.05):
        a = box_qp(G, h, B, T0, iters=2000)
        b = box_ls_wide(H, Y, B, T0, eps, iters=2000)
        if B is not None:
            assert np.abs(b).max() <= B
        np.testing.assert_allclose(q(b), q(a), rtol=1e-6, atol=1e-9)


def test_wide_network_honours_the_time_limit():
    """A 1-8000-1 net on 20 samples: the start's output fit must not form and factorise the
    8001 x 8001 Gram (about 8 s before the fix, against a 1 s limit)."""
    import time

    p = random_instance(20, (1, 8000, 1), seed=0)
    t = time.perf_counter()
    res = solve_alm(p, restarts=10, time_limit=1.0)
    wall = time.perf_counter() - t
    assert wall <= 1.0 + 3.0, f"took {wall:.1f} s against a 1 s limit"
    assert res.status == "time_limit" or "time_limit" in res.stop_reason
    assert math.isfinite(res.forward_loss)


def test_pattern_program_stops_at_its_deadline():
    """The pattern search's SLSQP (N x width sign constraints, ~0.1 s an iteration at 200 x 40)
    stops at the solver's deadline instead of running its 100 iterations (measured: a 10 s ALM
    call took 61 s before)."""
    import time

    from unrectify.backends.alm.patterns import solve_pattern
    from unrectify.formulations import TrainingProblem

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 5))
    Y = np.maximum(X @ rng.normal(size=(5, 3)), 0) @ rng.normal(size=(3, 1))
    p = TrainingProblem(X, Y, (5, 40, 1), weight_bound=None)
    w = [(rng.normal(size=(40, 5)), rng.normal(size=40)), (rng.normal(size=(1, 40)), rng.normal(size=1))]
    D = [(X @ w[0][0].T + w[0][1]) > 0]
    t0 = time.perf_counter()
    solve_pattern(p, w, D, max_iter=1)          # the cost of one iteration (and the set-up) here
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = solve_pattern(p, w, D, deadline=t0 + 0.2)   # 100 iterations allowed, the deadline stops it
    assert time.perf_counter() - t0 < 3 * one + 0.5
    assert [W.shape for W, _ in out] == [(40, 5), (1, 40)] and all(np.all(np.isfinite(W)) for W, _ in out)
