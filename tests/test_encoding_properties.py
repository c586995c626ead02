"""Property tests of the encodings on a single layer, evaluated through the Model (no solver)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from unrectify.formulations import get_encoding
from unrectify.formulations.model import Model

finite = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False)
unit = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(min_value=0.0, max_value=1.0))
LO, HI = -6.0, 6.0


def layer(enc: str, domain: str = "interval"):
    m = Model()
    Z = m.add_var("Z", (1, 1), LO, HI)
    blocks = get_encoding(enc).add_relu(m, Z, np.full((1, 1), LO), np.full((1, 1), HI), domain, "")
    return m, Z, blocks


def point(m, Z, blocks, z, x, d=None):
    v = np.zeros(m.n_vars)
    v[Z] = z
    v[blocks["X"]] = x
    if d is not None and "D" in blocks:
        v[blocks["D"]] = d
    return v


@settings(max_examples=300, deadline=None)
@given(z=finite, d=unit)
def test_split_relaxed_feasible_points_are_relu(z, d):
    m, Z, b = layer("split")
    ev = m.evaluate(point(m, Z, b, z, d * z, d))
    if ev.max_violation == 0.0:
        assert d * z == max(z, 0.0)


@settings(max_examples=300, deadline=None)
@given(z=finite, x=finite, d=unit)
def test_split_relaxed_near_feasible_points_are_near_relu(z, x, d):
    # robust form: the distance of x from relu(z) is bounded by the violation (|z| <= 5 here)
    m, Z, b = layer("split")
    ev = m.evaluate(point(m, Z, b, z, x, d))
    assert abs(x - max(z, 0.0)) <= 7.0 * ev.max_violation + 1e-12


@settings(max_examples=200, deadline=None)
@given(z=finite)
def test_relu_point_feasible_in_every_encoding_and_domain(z):
    for enc in ("split", "sign", "bigm", "complementarity"):
        for domain in get_encoding(enc).domains:
            m, Z, b = layer(enc, domain)
            assert m.evaluate(point(m, Z, b, z, max(z, 0.0), float(z > 0))).max_violation < 1e-12


@settings(max_examples=200, deadline=None)
@given(z=finite.filter(lambda z: abs(z) > 1e-6))
def test_sign_counterexample(z):
    # d = 1/2 satisfies (2d - 1) z >= 0 for every z: x = z/2 is feasible but is not relu(z)
    m, Z, b = layer("sign", "interval")
    assert m.evaluate(point(m, Z, b, z, z / 2, 0.5)).max_violation < 1e-12
    assert z / 2 != max(z, 0.0)
    # the binary form rejects it
    mb, Zb, bb = layer("sign", "binary")
    assert mb.evaluate(point(mb, Zb, bb, z, z / 2, 0.5)).max_violation > 0


@settings(max_examples=200, deadline=None)
@given(z=st.floats(min_value=LO + 1e-3, max_value=HI - 1e-3))
def test_bigm_relaxation_contains_triangle_hull(z):
    m, Z, b = layer("bigm")
    x_hull = HI * (z - LO) / (HI - LO)
    d = x_hull / HI
    assert m.evaluate(point(m, Z, b, z, x_hull, d)).max_violation < 1e-9
    assert x_hull > max(z, 0.0)


@settings(max_examples=200, deadline=None)
@given(z=finite, x=finite)
def test_complementarity_feasible_points_are_relu(z, x):
    # x >= max(0, z) and x (x - z) = e give |x - relu(z)| = min(x, x - z) <= sqrt(|e|)
    m, Z, b = layer("complementarity")
    viol = m.evaluate(point(m, Z, b, z, x)).max_violation
    assert abs(x - max(z, 0.0)) <= np.sqrt(viol) + 2 * viol + 1e-100
