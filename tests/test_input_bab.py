"""Input-space branch and bound for fixed networks: batched CROWN box bounds and the search."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unrectify import FixedNetwork, InputError, optimize_output
from unrectify.backends import available_backends
from unrectify.backends.input_bab import maximize_output
from unrectify.formulations.box_bounds import output_upper_bounds
from unrectify.formulations.network import predict


def he(widths, seed):
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, np.sqrt(2.0 / a), (b, a)), rng.normal(0, 0.1, b)) for a, b in zip(widths[:-1], widths[1:])]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), st.integers(1, 4), st.integers(0, 10_000),
       st.sampled_from([1.0, -1.0]))
def test_box_bounds_hold_for_sampled_inputs(hidden, n0, seed, sign):
    """Every sampled input of every box stays below its box's bound; the corner is in the box."""
    widths = (n0, *hidden, 2)
    w = he(widths, seed)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, (2, 16, n0))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    ub, lam, vert = output_upper_bounds(w, lo, hi, row=1, sign=sign)
    assert ub.shape == (16,) and lam.shape == vert.shape == (16, n0)
    assert np.all(vert >= lo) and np.all(vert <= hi)
    t = rng.random((16, 200, n0))
    X = lo[:, None, :] + t * (hi - lo)[:, None, :]
    y = sign * FixedNetwork(w, -1.0, 1.0).forward(X.reshape(-1, n0))[:, 1].reshape(16, 200)
    assert np.all(y <= ub[:, None])


def test_box_bound_of_the_whole_box_is_no_looser_than_crown():
    w = he((3, 8, 8, 2), 4)
    net = FixedNetwork(w, 0.0, 1.0)
    L, U = net.crown_bounds[-1]
    for row in (0, 1):
        up, _, _ = output_upper_bounds(w, np.zeros((1, 3)), np.ones((1, 3)), row, 1.0)
        low, _, _ = output_upper_bounds(w, np.zeros((1, 3)), np.ones((1, 3)), row, -1.0)
        assert up[0] <= U[row] + 1e-9 * (1 + abs(U[row])) and -low[0] >= L[row] - 1e-9 * (1 + abs(L[row]))


@pytest.mark.skipif("highs" not in available_backends(), reason="needs highspy")
@pytest.mark.parametrize("widths,seed", [((2, 16, 16, 1), 1), ((3, 10, 10, 1), 2), ((4, 12, 1), 3), ((3, 8, 8, 2), 4)])
@pytest.mark.parametrize("sense", ["max", "min"])
def test_input_bab_matches_the_milp(widths, seed, sense):
    net = FixedNetwork(he(widths, seed), 0.0, 1.0)
    bab = optimize_output(net, 0, sense, backend="input-bab", time_limit=30)
    mip = optimize_output(net, 0, sense, backend="highs", time_limit=60, gap=1e-9)
    assert bab.status == "optimal" and bab.certified_optimal and mip.certified_optimal
    assert bab.objective == pytest.approx(mip.objective, rel=1e-6, abs=1e-6)
    # the answer is the network's output at an input in the box
    assert np.all((bab.input >= 0) & (bab.input <= 1))
    assert bab.objective == net.forward(bab.input)[0] == bab.forward_objective
    if sense == "max":
        assert bab.objective <= bab.bound <= bab.objective + max(1e-6 * abs(bab.objective), 1e-9) + 1e-12
    else:
        assert bab.objective >= bab.bound >= bab.objective - max(1e-6 * abs(bab.objective), 1e-9) - 1e-12


def test_time_limited_bab_returns_a_valid_bound_and_a_forward_pass():
    net = FixedNetwork(he((10, 50, 50, 1), 0), 0.0, 1.0)
    sol = optimize_output(net, 0, "max", backend="input-bab", time_limit=1.0, batch=256)
    assert sol.status == "time_limit" and not sol.certified_optimal and sol.bound > sol.objective
    assert sol.objective == net.forward(sol.input)[0] and sol.max_violation == 0.0
    X = np.random.default_rng(1).random((50_000, 10))
    assert net.forward(X)[:, 0].max() <= sol.bound
    assert sol.extra["bab"]["open"] > 0 and "boxes open" in sol.message


def test_open_box_memory_cap_stops_with_a_bound():
    w = he((6, 20, 20, 1), 2)
    res = maximize_output(w, np.zeros(6), np.ones(6), time_limit=30, batch=64, max_open=256, gap=0.0, absgap=0.0)
    assert res.status == "time_limit" and "max_open" in res.message and res.bound >= res.value


def test_input_bab_bad_inputs():
    net = FixedNetwork(he((3, 8, 2), 0), 0.0, 1.0)
    with pytest.raises(InputError, match="one integer"):
        optimize_output(net, [0, 1], backend="input-bab")
    with pytest.raises(InputError, match="outside"):
        optimize_output(net, 2, backend="input-bab")
    with pytest.raises(InputError, match="sense"):
        optimize_output(net, 0, "maximum", backend="input-bab")
    with pytest.raises(InputError, match="time_limit"):
        optimize_output(net, 0, backend="input-bab", time_limit=-1)
    with pytest.raises(InputError, match="batch"):
        maximize_output(net.weights, np.zeros(3), np.ones(3), batch=0)
    with pytest.raises(InputError, match="unknown option encoding_typo; the backends take: "):
        optimize_output(net, 1, backend="input-bab", time_limit=5, encoding_typo=1)
    with pytest.raises(InputError, match="backend 'input-bab' does not take option feastol"):
        optimize_output(net, 1, backend="input-bab", time_limit=5, feastol=1e-6)   # a SCIP option
    with pytest.raises(InputError, match="encoding='sos1', bounds='crown' do not apply"):
        optimize_output(net, 1, backend="input-bab", encoding="sos1", bounds="crown")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(2, 12), min_size=1, max_size=3), st.integers(1, 5), st.integers(0, 10_000),
       st.sampled_from([1.0, -1.0]))
def test_local_search_climbs_and_stays_in_the_box(hidden, n0, seed, sign):
    """Ascent and region-LP polish never leave the box, never lose value, and the polished
    point is the maximum of its linear region (no sampled input of the same pattern is higher)."""
    from unrectify.backends.input_search import _region, ascend, polish, value

    w = he((n0, *hidden, 1), seed)
    rng = np.random.default_rng(seed)
    lo, hi = -rng.random(n0), rng.random(n0)
    X0 = lo + (hi - lo) * rng.random((32, n0))
    X1 = ascend(w, X0, lo, hi, 0, sign, steps=20)
    assert np.all((X1 >= lo) & (X1 <= hi))
    x, v = polish(w, X1[0], lo, hi, 0, sign, max_lps=1000)
    assert np.all((x >= lo) & (x <= hi)) and v == value(w, x[None], 0, sign)[0]
    assert v >= value(w, X1[:1], 0, sign)[0] - 1e-12
    # inputs sampled in the region of the returned point are not above it
    G, h, _, key = _region(w, x, 0, sign)
    Y = np.clip(x + 0.05 * (hi - lo) * rng.uniform(-1, 1, (4000, n0)), lo, hi)
    inside = np.all(Y @ G.T <= h + 1e-12, axis=1)
    assert np.all(value(w, Y[inside], 0, sign) <= v + 1e-9 * (1 + abs(v)))


def test_local_search_improves_the_incumbent_of_a_time_limited_search():
    """On the 10-50-50-1 network the region walk finds a higher output than box corners and
    centres alone (the maximum lies where units switch, not at a split point)."""
    w = he((10, 50, 50, 1), 0)
    plain = maximize_output(w, np.zeros(10), np.ones(10), time_limit=1.0, batch=256, local_search=False)
    walk = maximize_output(w, np.zeros(10), np.ones(10), time_limit=1.0, batch=256)
    assert walk.value > plain.value and walk.bound >= walk.value


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(1, 4), st.integers(0, 10_000),
       st.sampled_from([1.0, -1.0]))
def test_precomputed_first_step_equals_the_general_path(hidden, n0, seed, sign):
    """The GEMM form of the first back-substitution step gives the general path's bounds."""
    import unrectify.formulations.box_bounds as bb
    w = he((n0, *hidden, 2), seed)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, (2, 12, n0))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    fast = bb.BoxBounder(w, 1, sign)
    limit = bb.FIRST_STEP_LIMIT
    try:
        bb.FIRST_STEP_LIMIT = 0
        general = bb.BoxBounder(w, 1, sign)
    finally:
        bb.FIRST_STEP_LIMIT = limit
    assert all(f is None for f in general.first)
    uf, lf, _ = fast(lo, hi)
    ug, lg, _ = general(lo, hi)
    np.testing.assert_allclose(uf, ug, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lf, lg, rtol=1e-12, atol=1e-12)


def _boxes(k, n0, seed, spread, widths):
    """``k`` random boxes: lower corners in ``[0, spread]^n0``, side lengths in ``widths``."""
    rng = np.random.default_rng(seed)
    lo = rng.random((k, n0)) * spread
    return lo, lo + rng.uniform(*widths, (k, n0))


def _relax(bounder, w, lo, hi):
    """The hidden layers' ReLU lines of a two-hidden-layer network, as the bounder computes them."""
    from unrectify.formulations.box_bounds import affine_range, relu_lines
    L1, U1 = affine_range(*w[0], lo, hi)
    r1 = relu_lines(L1, U1)
    (lu, cu), (ll, cl) = bounder._first_step(1, r1, len(lo))
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    iL, iU = affine_range(*w[1], np.maximum(L1, 0), np.maximum(U1, 0))
    up = np.minimum(cu + np.einsum("kri,ki->kr", lu, mid) + np.einsum("kri,ki->kr", np.abs(lu), rad), iU)
    low = np.maximum(cl + np.einsum("kri,ki->kr", ll, mid) - np.einsum("kri,ki->kr", np.abs(ll), rad), iL)
    return [r1, relu_lines(low, up)], mid, rad, low, up


def test_output_bound_takes_the_smaller_of_the_two_slope_choices():
    """Each box's bound is the minimum of the CROWN-slope and the zero-slope bound, and neither
    choice is better everywhere (so the minimum tightens boxes of both kinds)."""
    from unrectify.formulations.box_bounds import BoxBounder
    w = he((6, 20, 20, 1), 5)
    lo, hi = _boxes(400, 6, 0, 0.7, (0.05, 0.3))
    bounder = BoxBounder(w)
    ub, _, _ = bounder(lo, hi)
    # the same bound by hand: layer-1 lines by interval arithmetic, layer-2 lines from the bounder's
    # own intermediate step, then both slope choices
    from unrectify.formulations.box_bounds import affine_range
    relax, mid, rad, low, up = _relax(bounder, w, lo, hi)
    crown, _ = bounder._output_line(relax, [r[0] for r in relax], mid, rad)
    zero, _ = bounder._output_line(relax, [np.where(sl != su, 0.0, sl) for sl, su, _ in relax], mid, rad)
    expect = np.minimum(np.minimum(crown, zero), affine_range(*w[2], np.maximum(low, 0), np.maximum(up, 0))[1][:, 0])
    np.testing.assert_allclose(ub, expect + 1e-10 * (1 + np.abs(expect)), rtol=1e-12, atol=1e-12)
    assert (zero < crown).any() and (crown < zero).any()


def _sampled_max(w, n0, seed=0, samples=50_000):
    from unrectify.backends.input_search import ascend, value
    rng = np.random.default_rng(seed)
    X = rng.random((samples, n0))
    f = value(w, X, 0, 1.0)
    X = ascend(w, X[np.argsort(-f)[:256]], np.zeros(n0), np.ones(n0), steps=100)
    return float(max(f.max(), value(w, X, 0, 1.0).max()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_input_bab_certifies_an_8_40_40_1_network(seed):
    """80 hidden units, 8 inputs: certified (bound within the gap of a forward-pass value that no
    sampled and ascended input beats), far beyond what the MILP routes certify in seconds.
    Seeds 1 and 2 stayed open after 120 s when the search halved the coordinate of largest
    ``|lam_i| width_i``; with the widest coordinate they close in seconds."""
    w = he((8, 40, 40, 1), seed)
    res = maximize_output(w, np.zeros(8), np.ones(8), time_limit=120)
    assert res.status == "optimal" and res.stats["open"] == 0
    assert res.value <= res.bound <= res.value + 1e-6 * abs(res.value) + 1e-9 + 1e-12
    assert res.value == pytest.approx(float(predict(w, res.x[None])[0, 0]), abs=0)
    assert res.bound >= _sampled_max(w, 8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_input_bab_certifies_the_benchmark_10_50_50_1_network(seed):
    """The fixed-weight benchmark's seeded 10-50-50-1 network (benchmarks/fixed_weight.py), which
    no MILP route certifies in 60 s, is certified by the input-space branch and bound; so are
    the other nine seeds of the same architecture."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "fixed_weight.py"
    spec = importlib.util.spec_from_file_location("fixed_weight_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    w = bench.he_weights([10, 50, 50, 1], seed)
    res = maximize_output(w, np.zeros(10), np.ones(10), time_limit=600)
    assert res.status == "optimal" and res.stats["open"] == 0
    assert res.value <= res.bound <= res.value + 1e-6 * abs(res.value) + 1e-9 + 1e-12
    assert res.bound >= _sampled_max(w, 10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slope_gradient_matches_finite_differences(seed):
    from unrectify.formulations.box_bounds import BoxBounder
    w = he((5, 12, 12, 1), seed)
    rng = np.random.default_rng(seed)
    lo = rng.random((30, 5)) * 0.6
    hi = lo + rng.uniform(0.1, 0.4, (30, 5))
    bounder = BoxBounder(w)
    relax, mid, rad, _, _ = _relax(bounder, w, lo, hi)
    a = [np.where(sl != su, rng.random(sl.shape), sl) for sl, su, _ in relax]
    ub, _, grads = bounder._output_line(relax, a, mid, rad, grad=True)
    np.testing.assert_array_equal(ub, bounder._output_line(relax, a, mid, rad)[0])
    checked = 0
    for j in range(2):
        for i in range(12):
            free = relax[j][0][:, i] != relax[j][1][:, i]
            e = [x.copy() for x in a]
            e[j][:, i] += 1e-7
            fd = (bounder._output_line(relax, e, mid, rad)[0] - ub) / 1e-7
            np.testing.assert_allclose(fd[free], grads[j][free, i], atol=1e-5)
            checked += int(free.sum())
    assert checked > 20


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(2, 9), min_size=1, max_size=3), st.integers(1, 5), st.integers(0, 10_000),
       st.sampled_from([1.0, -1.0]), st.integers(1, 12))
def test_optimised_slopes_give_valid_bounds_no_looser_than_crown(hidden, n0, seed, sign, steps):
    """Optimising the lower slopes never loosens a box's bound, and no sampled input exceeds it."""
    from unrectify.formulations.box_bounds import BoxBounder
    w = he((n0, *hidden, 1), seed)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, (2, 16, n0))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    bounder = BoxBounder(w, 0, sign)
    ub, _, _ = bounder(lo, hi)
    ubo, lam, vert = bounder(lo, hi, alpha_steps=steps)
    assert np.all(ubo <= ub) and lam.shape == vert.shape == (16, n0)
    X = lo[:, None, :] + rng.random((16, 300, n0)) * (hi - lo)[:, None, :]
    y = sign * FixedNetwork(w, -1.0, 1.0).forward(X.reshape(-1, n0))[:, 0].reshape(16, 300)
    assert np.all(y <= ubo[:, None])


def test_optimised_slopes_tighten_bounds_where_units_are_unstable():
    from unrectify.formulations.box_bounds import BoxBounder
    w = he((6, 20, 20, 1), 3)
    lo, hi = _boxes(200, 6, 1, 0.6, (0.1, 0.4))
    bounder = BoxBounder(w)
    ub, _, _ = bounder(lo, hi)
    ubo, _, _ = bounder(lo, hi, alpha_steps=20)
    assert np.mean(ubo < ub - 1e-9) > 0.5
    # only boxes above the threshold are optimised
    thr = float(np.median(ub))
    ubt, _, _ = bounder(lo, hi, alpha_steps=20, above=thr)
    np.testing.assert_array_equal(ubt[ub <= thr], ub[ub <= thr])
    np.testing.assert_allclose(ubt[ub > thr], ubo[ub > thr], rtol=1e-13, atol=0)


@pytest.mark.skipif("highs" not in available_backends(), reason="needs highspy")
@pytest.mark.parametrize("widths,seed", [((3, 10, 10, 1), 2), ((4, 12, 1), 3)])
def test_input_bab_with_optimised_slopes_matches_the_milp(widths, seed):
    net = FixedNetwork(he(widths, seed), 0.0, 1.0)
    bab = optimize_output(net, 0, "max", backend="input-bab", time_limit=30, alpha_steps=8)
    mip = optimize_output(net, 0, "max", backend="highs", time_limit=60, gap=1e-9)
    assert bab.status == "optimal" and bab.certified_optimal and mip.certified_optimal
    assert bab.objective == pytest.approx(mip.objective, rel=1e-6, abs=1e-6)


def test_split_is_the_widest_coordinate_relative_to_the_root_box_and_never_a_dead_input():
    """The coordinate halved next is the widest relative to the root box (so rescaling an input
    changes nothing), never one the network ignores (all-zero weights) or one of zero range."""
    from unrectify.backends.input_bab import _bound_boxes
    from unrectify.formulations.box_bounds import BoxBounder
    w = he((4, 8, 8, 1), 0)
    w[0][0][:, 2] = 0.0                       # input 2 is dead
    root_lo, root_hi = np.array([0.0, 0.0, 0.0, 0.5]), np.array([1.0, 100.0, 1.0, 0.5])  # input 3: a point
    scale = np.array([1.0, 0.01, 0.0, 0.0])
    rng = np.random.default_rng(0)
    frac_lo = rng.random((64, 4)) * 0.5
    frac_hi = frac_lo + rng.choice([0.125, 0.25, 0.5], (64, 4))
    lo, hi = root_lo + frac_lo * (root_hi - root_lo), root_lo + frac_hi * (root_hi - root_lo)
    _, split, _ = _bound_boxes(BoxBounder(w), lo, hi, scale)
    rel = (frac_hi - frac_lo)[:, :2]
    assert set(np.unique(split)) <= {0, 1}
    assert np.all(rel[np.arange(64), split] >= rel.max(axis=1) - 1e-12)


def test_rescaling_an_input_does_not_change_the_search():
    """x_0 in [0, 100] with its weights divided by 100 is the same function as x_0 in [0, 1]:
    the same optimum, certified, with the same number of boxes."""
    w = he((5, 20, 20, 1), 7)
    ws = [(w[0][0] / np.array([100.0, 1, 1, 1, 1]), w[0][1])] + w[1:]
    hi = np.array([100.0, 1, 1, 1, 1])
    a = maximize_output(w, np.zeros(5), np.ones(5), time_limit=60, local_search=False, samples=1)
    b = maximize_output(ws, np.zeros(5), hi, time_limit=60, local_search=False, samples=1)
    assert a.status == b.status == "optimal"
    assert b.value == pytest.approx(a.value, rel=1e-6)
    assert abs(b.stats["boxes"] - a.stats["boxes"]) <= 0.05 * a.stats["boxes"]


@pytest.mark.skipif("highs" not in available_backends(), reason="needs highspy")
def test_auto_takes_the_input_bab_for_one_output_of_a_small_network_and_says_so():
    net = FixedNetwork(he((3, 10, 10, 2), 2), 0.0, 1.0)
    sol = optimize_output(net, 1, "min", time_limit=30)
    assert sol.backend == "input-bab" and sol.certified_optimal
    assert sol.extra["route"].startswith("auto: one output of a network with 3 inputs (<= 10): routed to input-bab")
    assert sol.extra["route"].endswith("result: optimal, certified")
    mip = optimize_output(net, 1, "min", backend="highs", time_limit=60, gap=1e-9)
    assert sol.objective == pytest.approx(mip.objective, rel=1e-6, abs=1e-6)


@pytest.mark.skipif("highs" not in available_backends(), reason="needs highspy")
@pytest.mark.parametrize("case", ["rows", "inputs", "bounds", "domain", "mip-option", "zero-gap"])
def test_auto_builds_the_milp_model_for_every_other_request(case):
    n0 = 11 if case == "inputs" else 3
    net = FixedNetwork(he((n0, 4, 2), 1), 0.0, 1.0)
    kw = {"rows": {"output_index": [0, 1]}, "inputs": {}, "bounds": {"bounds": "crown"},
          "domain": {"domain": "interval"}, "mip-option": {"feastol": 1e-7}, "zero-gap": {"gap": 0.0}}[case]
    kw = {"output_index": 0} | kw
    sol = optimize_output(net, sense="max", time_limit=30, **kw)
    assert sol.backend != "input-bab" and sol.encoding == "bigm"


def test_boxes_left_at_the_deadline_keep_their_parents_bound():
    """Past the deadline the rest of a round is not bounded: +inf (the parent's bound then
    holds), the widest split, the centre as candidate."""
    from unrectify.backends.input_bab import _bound_boxes
    from unrectify.formulations.box_bounds import BoxBounder
    import time as _time
    w = he((3, 8, 8, 1), 0)
    rng = np.random.default_rng(0)
    lo = rng.random((10, 3)) * 0.5
    hi = lo + rng.uniform(0.1, 0.5, (10, 3))
    bounder = BoxBounder(w)
    full, fsplit, _ = _bound_boxes(bounder, lo, hi, np.ones(3), chunk=2)
    ub, split, vert = _bound_boxes(bounder, lo, hi, np.ones(3), chunk=2, deadline=_time.perf_counter() - 1.0)
    np.testing.assert_array_equal(ub[:2], full[:2])
    assert np.all(np.isposinf(ub[2:]))
    np.testing.assert_array_equal(split[2:], np.argmax(hi[2:] - lo[2:], axis=1))
    np.testing.assert_allclose(vert[2:], 0.5 * (lo[2:] + hi[2:]))


def test_chunks_shrink_with_the_layer_widths():
    """The largest per-box temporary sets how many boxes are bounded at once (memory)."""
    from unrectify.formulations.box_bounds import FIRST_STEP_LIMIT, BoxBounder
    small = BoxBounder(he((10, 50, 50, 1), 0))
    assert small.first[0] is not None and small.box_floats == 50 * 10      # GEMM path: (50 rows, 10 inputs)
    wide = [(np.zeros((1000, 10)), np.zeros(1000)), (np.zeros((1000, 1000)), np.zeros(1000)),
            (np.zeros((1, 1000)), np.zeros(1))]
    b = BoxBounder(wide)
    assert 1000 * 1000 * 10 > FIRST_STEP_LIMIT and b.first[0] is None and b.box_floats == 1000 * 1000
