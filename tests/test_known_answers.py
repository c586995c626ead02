"""One known-answer suite, run on every installed backend (absent ones are skipped).

Answers come from independent methods in tests/oracle.py (pattern enumeration with convex
subproblems; scipy least squares / linprog), never from the backend under test.
"""

import numpy as np
import pytest

from unrectify.formulations import TrainingProblem, random_instance
from unrectify import solve

from .conftest import needs
from .oracle import enumerate_optimum, first_layer_optimum, output_layer_optimum

RTOL = 1e-5


def frozen_readout(loss, n=6, seed=2):
    p = random_instance(n, (1, 2, 1), seed=seed, loss=loss)
    v, c0 = np.array([1.5, -1.0]), 0.1
    return TrainingProblem(p.X, p.Y, (1, 2, 1), loss=loss, frozen={2: (v[None, :], np.array([c0]))}), v, c0


def frozen_features(loss, n=8, seed=3):
    p = random_instance(n, (1, 3, 1), seed=seed, loss=loss)
    W1, b1 = np.array([[1.0], [-1.5], [0.5]]), np.array([0.2, 0.1, -0.3])
    q = TrainingProblem(p.X, p.Y, (1, 3, 1), loss=loss, frozen={1: (W1, b1)})
    return q, np.maximum(p.X @ W1.T + b1, 0.0)


def check(sol, expected):
    assert sol.status == "optimal", sol.message
    assert sol.objective == pytest.approx(expected, rel=RTOL, abs=1e-9)
    assert sol.certificate.max_violation <= 1e-6
    assert sol.certificate.forward_loss == pytest.approx(sol.objective, rel=1e-6, abs=1e-12)


ALL = ["scip", "gurobi", "highs", "cvxpy"]


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in ALL])
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_train_readout_on_frozen_features(backend, loss):
    if backend == "highs" and loss == "mse":
        pytest.skip("highs backend is linear-only")
    p, H = frozen_features(loss)
    check(solve(p, "split", "binary", backend=backend, time_limit=60), output_layer_optimum(H, p.Y, p.weight_bound, loss))


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in ALL])
@pytest.mark.parametrize("loss", ["mae", "mse"])
def test_train_first_layer_under_frozen_readout_bigm_milp(backend, loss):
    if backend == "highs" and loss == "mse":
        pytest.skip("highs backend is linear-only")
    p, v, c0 = frozen_readout(loss)
    expected = first_layer_optimum(p.X, p.Y, v, c0, p.weight_bound, loss)
    check(solve(p, "bigm", "binary", backend=backend, time_limit=60), expected)


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in ["scip", "gurobi"]])
@pytest.mark.parametrize("domain", ["binary", "interval"])
def test_full_training_split(backend, domain):
    p = random_instance(5, (1, 2, 1), seed=3)
    expected = enumerate_optimum(p.X, p.Y, 2, p.weight_bound)
    check(solve(p, "split", domain, backend=backend, time_limit=120, symmetry_breaking="all"), expected)


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in ["highs", "cvxpy"]])
def test_linear_backends_refuse_bilinear_models(backend):
    from unrectify.formulations import ModelClassError
    with pytest.raises(ModelClassError, match="bilinear|linear"):
        solve(random_instance(3), "split", "interval", backend=backend)


@needs("gurobi")
def test_gurobi_refuses_oversize_model_with_licence_message(monkeypatch):
    from unrectify.formulations import LicenseLimitError
    monkeypatch.delenv("GRB_LICENSE_FILE", raising=False)
    import unrectify.backends.gurobi as g
    monkeypatch.setattr(g, "full_licence_configured", lambda: False)
    p = random_instance(60, (1, 2, 1))   # > 200 variables with a quadratic objective
    with pytest.raises(LicenseLimitError, match="licence allows 200"):
        solve(p, "split", "interval", backend="gurobi")
