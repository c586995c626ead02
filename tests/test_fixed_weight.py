"""Fixed-weight networks: structure without a solver, known answers, backend agreement."""

import numpy as np
import pytest

from unrectify.formulations import BUILTIN, InputError, UnknownNameError, get_encoding
from unrectify.formulations.fixed_weight import (
    FixedNetwork,
    build_bound_tightening_model,
    build_inversion_model,
    build_output_bound_model,
)
from unrectify.fixed import invert, optimize_output, tighten_bounds

from .conftest import needs

# y = relu(x) + 2 relu(0.5 - x) - 0.25 on x in [-1, 1]:
# x <= 0: 0.75 - 2x;  0 <= x <= 0.5: 0.75 - x;  x >= 0.5: x - 0.25.
# max 2.75 at x = -1, min 0.25 at x = 0.5 (a kink), y = 1 at x = -0.125.
HAND = [(np.array([[1.0], [-1.0]]), np.array([0.0, 0.5])), (np.array([[1.0, 2.0]]), np.array([-0.25]))]


def hand_net():
    return FixedNetwork(HAND, -1.0, 1.0)


def he_net(widths, seed=0, lo=0.0, hi=1.0):
    r = np.random.default_rng(seed)
    w = [(r.normal(0, np.sqrt(2 / a), (b, a)), r.normal(0, 0.1, b)) for a, b in zip(widths[:-1], widths[1:])]
    return FixedNetwork(w, lo, hi)


# (vars, rows) each encoding adds per hidden unit and row, the affine row and Z included
PER_UNIT = {"bigm": (3, 4), "split": (3, 4), "sign": (3, 3), "complementarity": (2, 3)}


# ------------------------------------------------------------------ structure, no solver
@pytest.mark.parametrize("enc", BUILTIN)
@pytest.mark.parametrize("widths", [(1, 2, 1), (3, 4, 5, 2), (2, 1)])
def test_structure_counts(enc, widths):
    net = he_net(widths)
    H = sum(widths[1:-1])
    n0, nL = widths[0], widths[-1]
    v, r = PER_UNIT[enc]
    for domain in get_encoding(enc).domains:
        for B, idx in ((1, 0), (3, [0, nL - 1, 0])):
            m = build_output_bound_model(net, idx, "max", enc, domain).model
            assert m.n_vars == B * (n0 + v * H + nL)
            assert m.n_constraints == B * (r * H + nL)
            n_d = B * H if enc != "complementarity" else 0
            assert m.n_integer == (n_d if domain == "binary" else 0)
        t = np.zeros((2, nL))
        extra = {"l1": (nL, 2 * nL), "l2": (0, 0), "linf": (1, 2 * nL)}
        for norm, (ev, er) in extra.items():
            m = build_inversion_model(net, t, norm, enc, domain).model
            assert m.n_vars == 2 * (n0 + v * H + nL + ev)
            assert m.n_constraints == 2 * (r * H + nL + er)


def test_problem_classes():
    net = he_net((2, 4, 1))
    assert build_output_bound_model(net).model.problem_class == "MILP"
    assert build_output_bound_model(net, domain="interval").model.problem_class == "LP"
    assert build_output_bound_model(net, encoding="split").model.problem_class == "MIQCQP"
    assert build_output_bound_model(net, encoding="split", domain="interval").model.problem_class == "QCQP"
    assert build_inversion_model(net, [0.0], "l1").model.problem_class == "MILP"
    assert build_inversion_model(net, [0.0], "l2").model.problem_class == "MIQP"


@pytest.mark.parametrize("enc", BUILTIN)
def test_forward_pass_point_is_feasible(enc, rng):
    net = he_net((3, 6, 5, 2), seed=4)
    X = rng.uniform(0, 1, (4, 3))
    for domain in get_encoding(enc).domains:
        fm = build_inversion_model(net, rng.normal(size=(4, 2)), "l1", enc, domain)
        v = fm.point_from_input(X)
        ev = fm.model.evaluate(v)
        assert ev.max_violation <= 1e-12
        assert ev.objective == pytest.approx(fm.objective_from_outputs(net.forward(X)))
        fm2 = build_output_bound_model(net, [1, 0, 1, 0], "min", enc, domain)
        assert fm2.model.evaluate(fm2.point_from_input(X)).max_violation <= 1e-12


def test_bounds_contain_samples_and_crown_is_tighter(rng):
    for widths in [(2, 16, 16, 1), (5, 32, 32, 3), (10, 20, 20, 20, 2)]:
        net = he_net(widths, seed=1)
        zs = net.preactivations(rng.uniform(0, 1, (5000, widths[0])))
        for (iL, iU), (cL, cU), z in zip(net.bounds("interval"), net.bounds("crown"), zs):
            assert np.all(cL >= iL - 1e-12) and np.all(cU <= iU + 1e-12)
            assert np.all(z >= cL - 1e-9) and np.all(z <= cU + 1e-9)
        wI = net.bounds("interval")[-1][1] - net.bounds("interval")[-1][0]
        wC = net.bounds("crown")[-1][1] - net.bounds("crown")[-1][0]
        assert np.all(wC < wI)
        s = net.stable_units("crown")
        assert s["active"] + s["inactive"] + s["unstable"] == s["hidden_units"] == sum(widths[1:-1])


def test_hand_network_bounds():
    (L1, U1), (L2, U2) = hand_net().bounds("interval")
    np.testing.assert_allclose(L1, [-1.0, -0.5])
    np.testing.assert_allclose(U1, [1.0, 1.5])
    # relu boxes [0, 1] and [0, 1.5]: y in [-0.25, 1 + 2 * 1.5 - 0.25]
    np.testing.assert_allclose([L2[0], U2[0]], [-0.25, 3.75])


@pytest.mark.parametrize("bad, match", [
    ([], "empty"),
    ([(np.ones((2, 3)), np.zeros(2)), (np.ones((1, 4)), np.zeros(1))], "expects 4 inputs"),
    ([(np.ones((2, 3)), np.zeros(3))], "b has shape"),
    ([(np.full((2, 3), np.nan), np.zeros(2))], "NaN"),
    ([(np.ones(3), np.zeros(1))], "2-D"),
])
def test_network_validation(bad, match):
    with pytest.raises(InputError, match=match):
        FixedNetwork(bad)


def test_builder_validation():
    net = hand_net()
    with pytest.raises(InputError, match="input_lo > input_hi"):
        FixedNetwork(HAND, 1.0, -1.0)
    with pytest.raises(InputError, match="do not match"):
        FixedNetwork(HAND, [0.0, 0.0], 1.0)
    with pytest.raises(InputError, match="outside"):
        build_output_bound_model(net, 1)
    with pytest.raises(UnknownNameError, match="sense"):
        build_output_bound_model(net, 0, "maximum")
    with pytest.raises(UnknownNameError, match="norm"):
        build_inversion_model(net, [0.0], "l3")
    with pytest.raises(InputError, match="target"):
        build_inversion_model(net, [0.0, 1.0])
    with pytest.raises(UnknownNameError, match="bound method"):
        build_output_bound_model(net, bounds="lp")
    with pytest.raises(InputError, match="no binary form"):
        build_output_bound_model(net, encoding="complementarity", domain="binary")


# ------------------------------------------------------------------ known answers
@needs("highs")
@pytest.mark.parametrize("bounds", ["interval", "crown"])
def test_hand_network_known_answers_highs(bounds):
    net = hand_net()
    hi = optimize_output(net, 0, "max", backend="highs", time_limit=20, bounds=bounds)
    assert hi.certified_optimal and hi.objective == pytest.approx(2.75, abs=1e-8)
    assert hi.bound >= hi.objective - 1e-8
    assert hi.input == pytest.approx([-1.0])
    lo = optimize_output(net, 0, "min", backend="highs", time_limit=20, bounds=bounds)
    assert lo.certified_optimal and lo.objective == pytest.approx(0.25, abs=1e-8)
    assert lo.input == pytest.approx([0.5], abs=1e-7)
    inv = invert(net, [1.0], "l1", backend="highs", time_limit=20, bounds=bounds)
    assert inv.certified_optimal and inv.objective == pytest.approx(0.0, abs=1e-8)
    assert inv.input == pytest.approx([-0.125], abs=1e-7)
    batch = invert(net, [[3.0], [0.0], [1.0]], "linf", backend="highs", time_limit=20, bounds=bounds)
    assert batch.certified_optimal and batch.input.shape == (3, 1)
    np.testing.assert_allclose(batch.row_objectives, [0.25, 0.25, 0.0], atol=1e-8)
    np.testing.assert_allclose(batch.input[:, 0], [-1.0, 0.5, -0.125], atol=1e-7)


@needs("highs")
def test_grid_search_agrees_and_batch_rows():
    net = he_net((2, 8, 8, 2), seed=3)
    g = np.linspace(0, 1, 401)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    F = net.forward(G)
    sol = optimize_output(net, [0, 1, 0], "max", backend="highs", time_limit=20)
    assert sol.certified_optimal and sol.input.shape == (3, 2)
    for r, k in enumerate([0, 1, 0]):
        assert F[:, k].max() <= sol.row_objectives[r] + 1e-9          # exact max >= any grid value
        assert sol.row_objectives[r] <= F[:, k].max() + 0.05           # and close to the grid max
        assert sol.forward_output[r, k] == pytest.approx(sol.row_objectives[r], abs=1e-7)
    single = optimize_output(net, 1, "max", backend="highs", time_limit=20)
    assert single.objective == pytest.approx(sol.row_objectives[1], abs=1e-7)
    assert sol.objective == pytest.approx(sol.row_objectives.sum(), abs=1e-7)


@needs("highs")
def test_non_tight_relaxation_is_caught():
    net = he_net((2, 16, 16, 1))
    rel = optimize_output(net, 0, "max", "bigm", "interval", backend="highs", time_limit=20)
    exact = optimize_output(net, 0, "max", "bigm", "binary", backend="highs", time_limit=20)
    # the LP relaxation is solved to optimality but is looser: the certificate refuses "optimal"
    assert rel.solver_status == "optimal" and rel.status == "uncertified" and not rel.certified
    assert rel.objective > exact.objective + 1e-3
    assert not rel.forward_agrees and not rel.certified_optimal
    assert exact.certified_optimal


AGREE = [("highs", "bigm", "binary"), ("scip", "bigm", "binary"), ("scip", "split", "binary"),
         ("scip", "split", "interval"), ("gurobi", "bigm", "binary"), ("cvxpy", "bigm", "binary")]


@pytest.fixture(scope="module")
def reference_max():
    from unrectify.backends import available_backends
    if "highs" not in available_backends():
        pytest.skip("reference needs highs")
    net = he_net((2, 6, 6, 1), seed=7)
    return net, optimize_output(net, 0, "max", backend="highs", time_limit=30, bounds="crown").objective


@pytest.mark.parametrize("backend, enc, domain", [pytest.param(*a, marks=needs(a[0])) for a in AGREE])
def test_backends_agree(backend, enc, domain, reference_max):
    net, ref = reference_max
    sol = optimize_output(net, 0, "max", enc, domain, backend=backend, time_limit=60)
    assert sol.status == "optimal", sol.message
    assert sol.objective == pytest.approx(ref, rel=1e-5, abs=1e-7)
    assert sol.forward_objective == pytest.approx(ref, rel=1e-5, abs=1e-7)
    assert sol.certified_optimal


@needs("scip")
def test_l2_inversion_scip_matches_l1_on_reachable_target():
    net = hand_net()
    sol = invert(net, [1.0], "l2", backend="scip", time_limit=30)
    assert sol.status == "optimal" and sol.objective == pytest.approx(0.0, abs=1e-7)
    assert sol.forward_output == pytest.approx([1.0], abs=1e-4)


@needs("highs")
def test_guarded_solve_after_inline_highs_does_not_hang():
    # a forked HiGHS child deadlocks once HiGHS has run in the parent process; unrectify.fixed
    # resets HiGHS's scheduler in the child.  Run in a subprocess: an inline HiGHS solve here
    # would poison guarded HiGHS solves of other tests in this pytest process.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from unrectify.formulations.fixed_weight import FixedNetwork\n"
        "from unrectify.fixed import optimize_output\n"
        "r = np.random.default_rng(2)\n"
        "net = FixedNetwork([(r.normal(size=(4, 2)), r.normal(size=4)), (r.normal(size=(1, 4)), r.normal(size=1))], 0, 1)\n"
        "a = optimize_output(net, 0, 'max', backend='highs', guard=False, time_limit=10)\n"
        "b = optimize_output(net, 0, 'max', backend='highs', guard=True, time_limit=10)\n"
        "assert b.status == 'optimal' and b.seconds < 8, (b.status, b.seconds)\n"
        "assert abs(a.objective - b.objective) < 1e-9\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]


def test_explicit_bounds_and_tightening_model_structure():
    net = he_net((3, 5, 4, 2), seed=6)
    b = net.bounds("crown")
    fm = build_output_bound_model(net, 0, bounds=b)
    assert fm.bound_method == "given" and fm.model.n_vars == build_output_bound_model(net, 0).model.n_vars
    with pytest.raises(InputError, match="2 layers"):
        build_output_bound_model(net, 0, bounds=b[:2])
    with pytest.raises(InputError, match="lower bound above"):
        build_output_bound_model(net, 0, bounds=[b[0], (b[1][1] + 1, b[1][1]), b[2]])
    tm = build_bound_tightening_model(net, 2, "crown", units=[1, 3])
    assert tm.batch == 4 and tm.net.n_layers == 2 and tm.model.problem_class == "LP"
    np.testing.assert_array_equal(tm.output_index, [1, 3, 1, 3])


@needs("highs")
def test_lp_tightening_is_sound_and_tighter(rng):
    net = he_net((3, 12, 12, 2), seed=8)
    lp = tighten_bounds(net, time_limit=30)
    zs = net.preactivations(rng.uniform(0, 1, (20000, 3)))
    for (L, U), (cL, cU), z in zip(lp, net.bounds("crown"), zs):
        assert np.all(L >= cL) and np.all(U <= cU)
        assert np.all(z >= L - 1e-9) and np.all(z <= U + 1e-9)
    assert np.sum(lp[-1][1] - lp[-1][0]) < np.sum(net.bounds("crown")[-1][1] - net.bounds("crown")[-1][0])
    a = optimize_output(net, 1, "max", backend="highs", time_limit=30, bounds="lp")
    b = optimize_output(net, 1, "max", backend="highs", time_limit=30)
    assert a.certified_optimal and a.objective == pytest.approx(b.objective, abs=1e-7)
    assert a.extra["bounds"] == "given"


# ------------------------------------------------------------------ solver answers checked by sampling
def test_a_sampled_input_refutes_a_wrong_optimum():
    """The forward pass at sampled inputs of the box refutes a claimed optimum that one of them
    beats (max, min and inversion), and never a true optimum."""
    from unrectify.fixed.solve import _refutation

    net = hand_net()
    fmax = build_output_bound_model(net, 0, "max", "bigm", "binary")
    assert _refutation(fmax, np.array([2.75])) == ""
    assert "better than the solver's optimum 2" in _refutation(fmax, np.array([2.0]))
    fmin = build_output_bound_model(net, 0, "min", "bigm", "binary")
    assert _refutation(fmin, np.array([0.25])) == ""
    assert "input-bab" in _refutation(fmin, np.array([0.5]))
    finv = build_inversion_model(net, [[1.0], [3.0]], "l1", "bigm", "binary")
    assert _refutation(finv, np.array([0.0, 0.25])) == ""
    assert "(row 0)" in _refutation(finv, np.array([0.3, 0.25]))


@needs("highs")
def test_solver_infeasible_on_a_box_problem_is_an_error_naming_the_bounds():
    """Every input of the box is feasible for the network, so 'infeasible' can only mean bounds
    that exclude its values (here: given all-zero bounds) or a numerical failure: an error."""
    net = hand_net()
    zero = [(np.zeros(2), np.zeros(2)), (np.zeros(1), np.zeros(1))]
    sol = optimize_output(net, 0, "max", backend="highs", time_limit=20, bounds=zero)
    assert sol.status == "error" and not sol.certified_optimal and sol.solver_status == "infeasible"
    assert "pre-activation bounds (given) exclude" in sol.message


def test_input_bab_on_a_network_without_hidden_layer():
    """L = 1: the affine output's optimum at the box vertex its weights point to."""
    net = FixedNetwork([(np.array([[1.0, -2.0]]), np.array([0.5]))], 0.0, 1.0)
    hi = optimize_output(net, 0, "max", backend="input-bab")
    lo = optimize_output(net, 0, "min", backend="input-bab")
    assert hi.certified_optimal and hi.objective == pytest.approx(1.5) and list(hi.input) == [1.0, 0.0]
    assert lo.certified_optimal and lo.objective == pytest.approx(-1.5) and list(lo.input) == [0.0, 1.0]
