"""The sign-enumerated exact route (issue 13): formulation validity, agreement with the split
forms and the enumeration oracle on every installed exact backend, OBBT validity, routing."""

from __future__ import annotations

import numpy as np
import pytest

from unrectify import solve
from unrectify.backends import available_backends, get_backend
from unrectify.formulations import InputError, TrainingProblem, random_instance
from unrectify.formulations.sign_cases import (build_sign_case, canonical_weights, case_signs,
                                              interval_preactivation_bounds, residual_bound_from_loss,
                                              sign_enumeration_reason)
from unrectify.backends.cases import SignEnumeratedBackend
from unrectify.routing import route

SIGN_ENUMERATED = SignEnumeratedBackend.name

from .oracle import enumerate_optimum

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _random_net(rng, n0, h, B, zero_units=0):
    W = rng.uniform(-B, B, (h, n0))
    b = rng.uniform(-B, B, h)
    v = rng.uniform(-B, B, h)
    v[:zero_units] = 0.0
    return [(W, b), (v[None, :], rng.uniform(-B, B, 1))]


def _tied_instance(N=12, seed=0, n0=1):
    """1-D data with repeated x values (ties must not break the orientation and hinge cuts)."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-1, 1, (N, n0)), 1)
    y = np.sin(np.pi * x[:, 0]) + 0.1 * rng.normal(size=N)
    return TrainingProblem(x, y, (n0, 3, 1), weight_bound=2.0)


# ------------------------------------------------------------------ formulation (no solver)
@pytest.mark.parametrize("n0", [1, 2])
def test_canonical_map_keeps_the_function_and_lands_in_its_case(n0):
    rng = np.random.default_rng(1)
    P = _tied_instance(n0=n0)
    for trial in range(20):
        w = _random_net(rng, n0, 3, 2.0, zero_units=trial % 3)
        k, cw = canonical_weights(P, w)
        np.testing.assert_allclose(P.forward(cw), P.forward(w), atol=1e-12)
        np.testing.assert_allclose(cw[1][0][0], 2.0 * case_signs(3, k))
        assert np.all(np.abs(cw[0][0]) <= 2.0 + 1e-12) and np.all(np.abs(cw[0][1]) <= 2.0 + 1e-12)
        s = case_signs(3, k)
        for cls in (s > 0, s < 0):
            assert np.all(np.diff(cw[0][1][cls]) >= 0)


@pytest.mark.parametrize("n0", [1, 2])
def test_every_network_is_a_feasible_point_of_its_case(n0):
    """Validity of the orientation, slope and convexity cuts (and of the big-M bounds): the
    canonical image of random networks (with tied inputs) satisfies every row of its case."""
    rng = np.random.default_rng(2)
    P = _tied_instance(n0=n0)
    for trial in range(30):
        w = _random_net(rng, n0, 3, 2.0, zero_units=trial % 2)
        k, cw = canonical_weights(P, w)
        cm = build_sign_case(P, k)
        v = cm.point_from_weights(cw)
        ev = cm.model.evaluate(v)
        assert ev.max_violation <= 1e-9, (trial, ev.max_violation)
        assert ev.objective == pytest.approx(P.forward_loss(w), rel=1e-9, abs=1e-12)


def test_hinge_cuts_are_not_vacuous():
    """The cuts must be able to fail: a point that is not a ReLU network violates them."""
    P = _tied_instance()
    cm = build_sign_case(P, 2)
    rng = np.random.default_rng(0)
    k, cw = canonical_weights(P, _random_net(rng, 1, 3, 2.0))
    cm = build_sign_case(P, k)
    v = cm.point_from_weights(cw)
    H = cm.model.blocks["X1"]
    v[H[:, 0]] = rng.uniform(0, 1, P.n_samples)      # a non-convex activation column
    rows = cm.model.evaluate(v).row_violation
    hinge = [n for n in ("convex", "slope_o_lo", "slope_o_hi", "slope_w_lo", "slope_w_hi")
             if rows[cm.model.constraint_blocks[n].rows].max() > 1e-6]
    assert hinge


def test_sign_enumeration_reasons():
    assert sign_enumeration_reason(random_instance(5, (1, 2, 1))) is None
    assert "single output" in sign_enumeration_reason(random_instance(5, (1, 2, 2)))
    assert "one hidden layer" in sign_enumeration_reason(random_instance(5, (1, 2, 2, 1)))
    with pytest.raises(InputError, match="sign enumeration"):
        build_sign_case(random_instance(5, (1, 2, 2)), 0)
    with pytest.raises(InputError, match="case k=3"):
        build_sign_case(random_instance(5, (1, 2, 1)), 3)


# ------------------------------------------------------------------ exact agreement
EXACT = [b for b in ("scip-direct", "scip", "gurobi", "cvxpy", "highs") if b in available_backends()]


def _usable(backend, loss):
    if backend == "highs" and loss == "mse":
        return False     # quadratic objective: HiGHS takes the MILP (mae) cases only
    if backend == "cvxpy":
        import cvxpy as cp
        return any(s in cp.installed_solvers() for s in ("SCIP", "GUROBI", "HIGHS", "GLPK_MI", "CBC")) and loss == "mae"
    return True


@pytest.mark.parametrize("backend", EXACT)
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_cases_match_the_oracle_on_every_exact_backend(backend, loss):
    if not _usable(backend, loss):
        pytest.skip(f"{backend} cannot take the {loss} cases")
    from unrectify.backends.cases import solve_sign_enumerated

    P = random_instance(7, (1, 2, 1), seed=4, loss=loss)
    try:
        sol = solve_sign_enumerated(P, backend=backend, time_limit=60, processes=1)
    except Exception as exc:   # a licence limit etc. is a skip, not a pass
        pytest.skip(f"{backend}: {exc}")
    ref = enumerate_optimum(P.X, P.Y, 2, 2.0, loss)
    assert sol.status == "optimal" and sol.certified_optimal
    assert sol.objective == pytest.approx(ref, rel=1e-5, abs=1e-8)
    assert sol.bound <= sol.objective + 1e-9


@pytest.mark.slow   # the oracle enumerates ~10^4 QPs (about 3 minutes on a loaded 2-core machine)
def test_three_units_match_the_oracle():
    from unrectify.backends.cases import solve_sign_enumerated

    P = random_instance(6, (1, 3, 1), seed=2)
    sol = solve_sign_enumerated(P, time_limit=120)
    assert sol.certified_optimal
    assert sol.objective == pytest.approx(enumerate_optimum(P.X, P.Y, 3, 2.0), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("widths", [(1, 2, 1), (2, 2, 1)])
def test_cases_match_split_binary(widths):
    """Same optimum as the split form solved directly (2-D inputs: no orientation cuts)."""
    from unrectify.backends.cases import solve_sign_enumerated

    P = random_instance(6, widths, seed=5)
    ref = solve(P, "split", "binary", backend="scip", time_limit=120, symmetry_breaking="all")
    sol = solve_sign_enumerated(P, time_limit=120)
    assert ref.certified_optimal and sol.certified_optimal
    assert sol.objective == pytest.approx(ref.objective, rel=1e-5, abs=1e-8)


def test_incumbent_cutoff_closes_worse_cases():
    """Cases that cannot beat the incumbent end 'infeasible' under the cut-off, and their bound is
    the cut-off: the global bound still meets the best loss."""
    from unrectify.backends.cases import solve_sign_enumerated

    sol = solve_sign_enumerated(random_instance(10, (1, 2, 1), seed=1), time_limit=60)
    assert sol.certified_optimal
    cases = sol.extra["cases"]
    assert len(cases) == 3 and all(c["bound"] is not None for c in cases)
    assert min(c["bound"] for c in cases) >= sol.objective * (1 - 1e-6) - 1e-9


def _high_targets(N=10, seed=0):
    """1-D data whose targets lie far above B: no network with every read-out weight negative
    (output <= c <= B) comes near the incumbent, so the residual bound excludes case k = 0."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-2, 2, (N, 1)), 1)
    y = 3 * np.abs(x[:, 0]) + 4 + 0.1 * rng.normal(size=N)
    return TrainingProblem(x, y, (1, 2, 1), weight_bound=2.0)


def test_case_excluded_by_the_residual_bound():
    """build_sign_case raises CaseExcludedError (an InputError) when the residual bound empties a
    residual's range, naming the case and the sample; without the bound the case builds."""
    from unrectify.formulations.sign_cases import CaseExcludedError

    P = _high_targets()
    with pytest.raises(CaseExcludedError, match=r"case k=0: no network of the case fits the residual bound"):
        build_sign_case(P, 0, residual_bound=0.5)
    assert isinstance(CaseExcludedError("x"), InputError)
    build_sign_case(P, 0)


@pytest.mark.parametrize("obbt", [False, True])
def test_excluded_cases_are_closed_not_errors(obbt):
    """Targets beyond the reach of a sign case: the route closes that case at the incumbent's
    cut-off (status 'excluded', never run) and still certifies the oracle's optimum."""
    if obbt and "highs" not in available_backends():
        pytest.skip("OBBT needs highspy")
    from unrectify.backends.cases import solve_sign_enumerated

    P = _high_targets()
    sol = solve_sign_enumerated(P, time_limit=60, obbt=obbt)
    excluded = [c for c in sol.extra["cases"] if c["status"] == "excluded"]
    assert [c["k"] for c in excluded] == [0] and excluded[0]["bound"] >= sol.objective
    assert sol.status == "optimal" and sol.certified_optimal
    assert sol.objective == pytest.approx(enumerate_optimum(P.X, P.Y, 2, 2.0, "mse"), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("processes", [1, 2, None])
def test_case_processes_queue_gives_the_same_certified_optimum(processes):
    """4 cases through 1, 2 (a queue: cases start as others finish) or all-at-once child processes,
    every child forked from the calling thread."""
    from unrectify.backends.cases import solve_sign_enumerated

    P = random_instance(12, (1, 3, 1), seed=3)
    sol = solve_sign_enumerated(P, time_limit=60, processes=processes)
    assert sol.certified_optimal and sol.extra["processes"] == (processes or 4)
    assert all(c["status"] != "error" and c["runs"] >= 1 for c in sol.extra["cases"])
    ref = solve_sign_enumerated(P, time_limit=60, processes=1, guard=False)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------ OBBT
@pytest.mark.skipif("highs" not in available_backends(), reason="needs highspy")
def test_obbt_bounds_contain_sampled_networks():
    """LP-OBBT bounds of a case under a residual bound: every sampled network of the case whose
    loss is within the bound stays inside them, and the bounds are never looser than interval."""
    from unrectify.backends.obbt import case_preactivation_bounds

    P = random_instance(12, (1, 2, 1), seed=3)
    rng = np.random.default_rng(0)
    nets = [canonical_weights(P, _random_net(rng, 1, 2, 2.0)) for _ in range(4000)]
    losses = np.array([P.forward_loss(w) for _, w in nets])
    ub = float(np.quantile(losses, 0.2))
    rb = residual_bound_from_loss(P, ub)
    ilo, ihi = interval_preactivation_bounds(P)
    tightened = False
    for k in range(3):
        lo, hi = case_preactivation_bounds(P, k, rb)
        assert np.all(lo >= ilo - 1e-9) and np.all(hi <= ihi + 1e-9)
        tightened |= bool(np.any(hi - lo < ihi - ilo - 1e-6))
        inside = [w for kk, w in nets if kk == k and P.forward_loss(w) <= ub]
        for w in inside:
            Z = P.X @ w[0][0].T + w[0][1]
            assert np.all(Z >= lo - 1e-9) and np.all(Z <= hi + 1e-9)
    assert tightened


@pytest.mark.skipif("highs" not in available_backends(), reason="needs highspy")
def test_fixed_weight_obbt_contains_sampled_forward_passes():
    from unrectify.backends.obbt import fixed_network_bounds
    from unrectify.formulations.fixed_weight import FixedNetwork

    rng = np.random.default_rng(1)
    ws = [(rng.normal(0, 0.6, (8, 3)), rng.normal(0, 0.1, 8)), (rng.normal(0, 0.5, (8, 8)), rng.normal(0, 0.1, 8)),
          (rng.normal(0, 0.5, (1, 8)), rng.normal(0, 0.1, 1))]
    net = FixedNetwork(ws, 0.0, 1.0)
    bounds = fixed_network_bounds(net, passes=2, time_limit=60)
    crown = net.bounds("crown")
    x = rng.uniform(0, 1, (20000, 3))
    zs = net.preactivations(x)
    for (L, U), z in zip(bounds, zs):
        assert np.all(z >= L - 1e-9) and np.all(z <= U + 1e-9)
    assert sum(float((U - L).sum()) for L, U in bounds) <= sum(float((U - L).sum()) for L, U in crown) + 1e-9


# ------------------------------------------------------------------ routing
def test_auto_routes_large_split_instances_to_the_sign_enumeration():
    if "scip-direct" not in available_backends():
        pytest.skip("needs pyscipopt")
    P = random_instance(40, (1, 2, 1), seed=0)
    r = route(P, "split", "interval")
    assert r.backend == SIGN_ENUMERATED and r.certifies
    assert "80 activation variables" in r.reason and "routed to sign-enumerated, an exact route (certified if it closes" in r.reason
    assert route(P, "split", "binary").backend == SIGN_ENUMERATED
    assert route(P, "bigm", "binary").backend != SIGN_ENUMERATED
    two_outputs = route(random_instance(40, (1, 2, 2), seed=0), "split", "interval")
    assert two_outputs.backend != SIGN_ENUMERATED and not two_outputs.certifies
    # h + 1 cases: wide hidden layers are not enumerated (a 1-20000-1 net would be 20001 cases)
    wide = random_instance(40, (1, 9, 1), seed=0)
    assert route(wide, "split", "binary").backend != SIGN_ENUMERATED
    assert "narrow networks" in SignEnumeratedBackend.takes(wide, "split", "binary")
    small = route(random_instance(8, (1, 2, 1), seed=0), "split", "interval")
    assert small.backend != SIGN_ENUMERATED and small.certifies


def test_auto_split_solution_is_certified_and_says_its_route():
    if "scip-direct" not in available_backends():
        pytest.skip("needs pyscipopt")
    P = random_instance(33, (1, 2, 1), seed=2)
    sol = solve(P, "split", "interval", backend="auto", time_limit=120, symmetry_breaking="all")
    assert "routed to sign-enumerated" in sol.extra["route"] and sol.backend == SIGN_ENUMERATED
    assert sol.route.endswith("; result: optimal, certified")
    assert sol.encoding == "split" and sol.domain == "interval"
    assert sol.certified_optimal and sol.certificate.relu_gap == 0.0
    assert sol.bound <= sol.objective


def test_route_that_does_not_close_says_not_certified():
    """The route line states the outcome: an exact route stopped by the time limit is 'not certified'."""
    if "scip-direct" not in available_backends():
        pytest.skip("needs pyscipopt")
    P = random_instance(400, (1, 3, 1), seed=0)
    sol = solve(P, "split", "binary", backend="auto", time_limit=3)
    assert sol.backend == SIGN_ENUMERATED and not sol.certified_optimal
    assert "routed to sign-enumerated, an exact route" in sol.route
    assert sol.route.endswith(f"; result: {sol.status}, not certified") and sol.status != "optimal"


def test_scip_direct_cutoff_reports_infeasible_with_bound():
    if "scip-direct" not in available_backends():
        pytest.skip("needs pyscipopt")
    P = random_instance(6, (1, 2, 1), seed=1)
    cm = build_sign_case(P, 1)
    opt = get_backend("scip-direct").solve(cm.model, time_limit=60)
    assert opt.status == "optimal"
    cut = get_backend("scip-direct", objlimit=opt.objective * 0.9).solve(cm.model, time_limit=60)
    assert cut.status == "infeasible" and cut.bound == pytest.approx(opt.objective * 0.9)
