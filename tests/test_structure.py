"""Structure tests: no solver involved."""

import numpy as np
import pytest

from unrectify.formulations import (BUILTIN, InputError, TrainingProblem, UnknownNameError, build_training_model,
                          get_encoding, random_instance)

# rows and variables each encoding adds per hidden unit and sample
PER_UNIT = {"split": (3, 3), "sign": (3, 2), "bigm": (3, 3), "complementarity": (2, 2)}  # (vars, rows)


def expected_counts(p, enc):
    N = p.n_samples
    weights = sum(p.widths[l] * (p.widths[l - 1] + 1) for l in range(1, p.n_layers + 1))
    H = N * sum(p.hidden_widths)
    out = N * p.widths[-1]
    v, r = PER_UNIT[enc]
    n_vars = weights + H * v + out * (1 if p.loss == "mse" else 2)
    n_rows = H + H * r + out * (1 if p.loss == "mse" else 3)
    return n_vars, n_rows


@pytest.mark.parametrize("widths", [(1, 2, 1), (2, 3, 1), (1, 2, 2, 1), (3, 2, 2)])
@pytest.mark.parametrize("loss", ["mse", "mae"])
@pytest.mark.parametrize("enc", BUILTIN)
def test_variable_and_row_counts(widths, loss, enc):
    p = random_instance(4, widths, seed=1, loss=loss)
    for domain in get_encoding(enc).domains:
        m = build_training_model(p, enc, domain).model
        assert (m.n_vars, m.n_constraints) == expected_counts(p, enc)
        n_d = 4 * sum(p.hidden_widths) if enc != "complementarity" else 0
        assert m.n_integer == (n_d if domain == "binary" else 0)


def test_problem_classes():
    p = random_instance(4, (1, 2, 1))
    assert build_training_model(p, "split", "binary").model.problem_class == "MIQCQP"
    assert build_training_model(p, "split", "interval").model.problem_class == "QCQP"
    # frozen read-out + big-M + mae is a MILP, + mse a convex MIQP; its relaxation an LP
    pf = TrainingProblem(p.X, p.Y, (1, 2, 1), loss="mae", frozen={2: (np.array([[1.0, -1.0]]), np.array([0.1]))})
    assert build_training_model(pf, "bigm", "binary").model.problem_class == "MILP"
    assert build_training_model(pf, "bigm", "interval").model.problem_class == "LP"
    pq = TrainingProblem(p.X, p.Y, (1, 2, 1), loss="mse", frozen=pf.frozen)
    assert build_training_model(pq, "bigm", "binary").model.problem_class == "MIQP"
    # frozen first layer: the hidden layer is data, training the read-out is a QP / LP
    p1 = TrainingProblem(p.X, p.Y, (1, 2, 1), frozen={1: (np.array([[1.0], [-1.0]]), np.zeros(2))})
    m1 = build_training_model(p1, "split", "binary").model
    assert m1.problem_class == "QP" and m1.n_integer == 0


def test_symmetry_breaking_rows_identical_across_forms():
    p = random_instance(4, (1, 3, 2, 1))
    for enc in BUILTIN:
        for domain in get_encoding(enc).domains:
            m0 = build_training_model(p, enc, domain).model
            m1 = build_training_model(p, enc, domain, symmetry_breaking=True).model
            assert m1.n_constraints - m0.n_constraints == (3 - 1) + (2 - 1)
            assert "order_b1" in m1.constraint_blocks and "order_b2" in m1.constraint_blocks


def test_forward_point_is_feasible_for_every_encoding(rng):
    p = random_instance(6, (2, 3, 2, 1), seed=3)
    B = p.weight_bound
    weights = [(rng.uniform(-B, B, (p.widths[l], p.widths[l - 1])), rng.uniform(-B, B, p.widths[l]))
               for l in range(1, p.n_layers + 1)]
    for enc in BUILTIN:
        for domain in get_encoding(enc).domains:
            tm = build_training_model(p, enc, domain)
            ev = tm.model.evaluate(tm.point_from_weights(weights))
            assert ev.max_violation < 1e-12
            assert ev.objective == pytest.approx(p.forward_loss(weights), rel=1e-12)


def test_bounds_contain_forward_pass(rng):
    p = random_instance(20, (2, 4, 3, 1), seed=5, weight_bound=1.5)
    B = p.weight_bound
    weights = [(rng.uniform(-B, B, (p.widths[l], p.widths[l - 1])), rng.uniform(-B, B, p.widths[l]))
               for l in range(1, p.n_layers + 1)]
    from unrectify.formulations import forward
    zs, _ = forward(weights, p.X)
    for (lo, hi), z in zip(p.bounds(), zs):
        assert np.all(lo <= z + 1e-12) and np.all(z <= hi + 1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(X=np.ones((3, 1)), Y=np.ones(4), widths=(1, 2, 1)), "samples"),
    (dict(X=np.array([[np.nan], [1.0]]), Y=np.ones(2), widths=(1, 2, 1)), "NaN"),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), widths=(1, 2, 1), weight_bound=0), "positive"),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), widths=(1, 2, 1), weight_bound=-1), "positive"),
    (dict(X=np.ones((2, 2)), Y=np.ones(2), widths=(1, 2, 1)), "columns"),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), widths=(1, 1)), "hidden"),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), widths=(1, 0, 1)), "positive"),
    (dict(X=np.zeros((0, 1)), Y=np.zeros(0), widths=(1, 2, 1)), "empty"),
    (dict(X=np.ones((2, 1)), Y=np.ones(2), widths=(1, 2, 1), loss="huber"), "loss"),
])
def test_invalid_problems(kwargs, message):
    with pytest.raises(InputError, match=message):
        TrainingProblem(**kwargs)


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="available"):
        get_encoding("nope")
    p = random_instance(3)
    with pytest.raises(InputError, match="binary"):
        build_training_model(p, "complementarity", "binary")
    with pytest.raises(UnknownNameError):
        build_training_model(p, "split", "continuous")


def test_no_solver_imported_by_formulations():
    import subprocess
    import sys
    code = ("import sys, unrectify.formulations; from unrectify.formulations import *; p = random_instance(3);"
            "build_training_model(p, 'split', 'binary');"
            "bad = [m for m in ('pyomo', 'pyscipopt', 'gurobipy', 'cvxpy', 'highspy') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_user_encoding_registration():
    from unrectify.formulations import Encoding, register_encoding

    @register_encoding
    class Hull(Encoding):
        """x >= z, x >= 0, x <= U (z - L)/(U - L): the convex hull, never exact."""
        name = "test-hull"
        domains = ("interval",)
        tight = False

        def add_relu(self, model, Z, lo, hi, domain, tag):
            X = model.add_var(f"X{tag}", Z.shape, 0.0, np.maximum(hi, 0.0))
            model.add_constraints(f"ge{tag}", ">=", 0.0 * lo, linear=[(1.0, X), (-1.0, Z)])
            s = hi / (hi - lo)
            model.add_constraints(f"hull{tag}", "<=", -s * lo, linear=[(1.0, X), (-s, Z)])
            return {"X": X}

    p = random_instance(4)
    m = build_training_model(p, "test-hull", "interval").model
    assert m.problem_class == "QCQP" and "hull1" in m.constraint_blocks


def test_every_package_folder_is_installed():
    """pyproject's explicit package list (package-dir mapping) names every folder with an
    __init__.py, so a plain `pip install .` carries every module (an editable install hides this)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = cfg["package-dir"]
    listed = set(cfg["packages"])
    found = set()
    for name, folder in mapping.items():
        for init in (root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(root / folder)
            found.add(".".join([name, *rel.parts]))
    # a subpackage mapped on its own (unrectify.formulations) is not also a folder of unrectify/
    assert found - listed == set(), f"package folders missing from pyproject packages: {sorted(found - listed)}"
    assert listed - found == set(), f"pyproject lists packages with no folder: {sorted(listed - found)}"


def test_backend_option_typos_refused_before_any_solve():
    """An option no backend takes is a typo: refused in one line (solve, verify); bad values of
    the shared tolerances too; an option only another backend takes is listed as ignored."""
    import unrectify
    from unrectify.verify import verify

    p = random_instance(4, (1, 2, 1), seed=0)
    with pytest.raises(InputError, match="unknown option time_limt; the backends take: .*gap"):
        unrectify.solve(p, backend="scip", time_limt=5)
    with pytest.raises(InputError, match="unknown options max_outr, restart"):
        verify(p, ["split"], "alm", max_outr=3, restart=2)
    for bad in (-1, float("nan"), "x", True):
        with pytest.raises(InputError, match="scip option gap must be a finite number >= 0"):
            unrectify.get_backend("scip", gap=bad)
    with pytest.raises(InputError, match="feastol must be a positive finite number"):
        unrectify.get_backend("scip", feastol=0)
    with pytest.raises(InputError, match="scip_options must be a dict"):
        unrectify.get_backend("scip", scip_options=["limits/time", 3])
    assert unrectify.get_backend("highs", restarts=3).ignored_options == ["restarts"]
    with pytest.raises(InputError, match="backend 'scip' does not take option restarts"):
        unrectify.solve(p, backend="scip", restarts=3)
    with pytest.raises(InputError, match="restarts is taken by none of the backends scip"):
        verify(p, ["split"], "scip", restarts=2)
    with pytest.raises(InputError, match="objlimit must be a finite number"):
        unrectify.get_backend("scip-direct", objlimit=float("nan"))
    with pytest.raises(InputError, match="start must be a 1-D array"):
        unrectify.get_backend("scip-direct", start="x")


def test_scip_settings_checked_by_scip_before_any_model():
    """Unknown SCIP parameters and values SCIP refuses are input errors at once, quietly."""
    pytest.importorskip("pyscipopt")
    import unrectify

    for kw, match in ((dict(feastol=10), "numerics/feastol = 10"),
                      (dict(scip_options={"limits/nonexist": 1}), "no such SCIP parameter"),
                      (dict(scip_options={"limits/gap": "x"}), "does not take")):
        for backend in ("scip", "scip-direct", "sign-enumerated"):
            with pytest.raises(InputError, match=match):
                unrectify.get_backend(backend, **kw)
    assert unrectify.get_backend("scip", scip_options={"limits/nodes": 5}).options["scip_options"] == {"limits/nodes": 5}
