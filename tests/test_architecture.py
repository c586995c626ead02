"""The solving chain's architecture: import direction, one registry, routing, the certificate gate."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import needs

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> installed package name (pyproject's package-dir mapping)
PACKAGES = {"formulations": "unrectify.formulations", "backends": "unrectify.backends",
            "cs_problems": "unrectify.cs", "unrectify": "unrectify"}
#: layers, lowest first: a module may import only from its own layer or lower ones
CLI_MODULES = {"unrectify.cli", "unrectify.cs_cli", "unrectify.__main__"}


def _layer(module: str) -> int:
    if module in CLI_MODULES:
        return 4
    for prefix, rank in (("unrectify.formulations", 0), ("unrectify.backends", 1), ("unrectify.cs", 3)):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return 2   # the unrectify API (solve, verify, fixed, routing, io, sweep, ...)


def _modules():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            is_pkg = path.name == "__init__.py"
            yield name, is_pkg, path


def _imports(name: str, is_pkg: bool, path: Path):
    """Every unrectify module named by an import statement anywhere in the file (lazy ones too)."""
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod]
        else:
            continue
        for t in targets:
            if t == "unrectify" or t.startswith("unrectify."):
                yield node.lineno, t


def test_import_direction_follows_the_layers():
    """formulations <- backends <- unrectify API <- (CS layer) <- CLI, by parsing every module."""
    bad = []
    n = 0
    for name, is_pkg, path in _modules():
        n += 1
        for line, target in _imports(name, is_pkg, path):
            if target == "unrectify":   # the top package: API layer
                target = "unrectify.api"
            if _layer(target) > _layer(name):
                bad.append(f"{path.relative_to(ROOT)}:{line} ({name}) imports {target}")
    assert n > 60
    assert not bad, "\n".join(bad)


def test_only_the_cli_imports_the_cs_layer():
    bad = [f"{path.relative_to(ROOT)}:{line}" for name, is_pkg, path in _modules() if _layer(name) < 3
           for line, target in _imports(name, is_pkg, path) if _layer(target) == 3]
    assert not bad
    out = subprocess.run([sys.executable, "-c", "import sys, unrectify; print('unrectify.cs' in sys.modules)"],
                         capture_output=True, text=True, check=True, cwd="/").stdout.strip()
    assert out == "False"


def test_the_layering_checker_can_fail(tmp_path):
    """The checker sees a relative import climbing a layer (so the test above can fail)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from ..api import solve\n")
    assert list(_imports("unrectify.backends.m", False, f)) == [(2, "unrectify.api")]
    assert _layer("unrectify.api") > _layer("unrectify.backends.m")


def test_no_branching_on_a_backend_name_outside_its_package():
    hits = []
    for folder in ("unrectify", "formulations"):
        for path in (ROOT / folder).rglob("*.py"):
            for k, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"""["'](alm|scip|gurobi|highs|cvxpy)["']""", line) and not line.lstrip().startswith("#"):
                    hits.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    # help texts may list names; no comparison, membership test or call may use one
    code = [h for h in hits if re.search(r"""(==|!=|\bin\b|get_backend\(|backend_class\()\s*\(?\s*["'](alm|scip|gurobi|highs|cvxpy)""", h)]
    assert not code, "\n".join(code)


def test_every_backend_is_registered_with_capabilities():
    from unrectify.backends import Capabilities, backend_class, backend_names

    names = backend_names()
    assert {"scip", "gurobi", "highs", "cvxpy", "alm"} <= set(names)
    for n in names:
        cap = backend_class(n).capabilities
        assert isinstance(cap, Capabilities) and cap.level in ("model", "problem")
    alm = backend_class("alm").capabilities
    assert alm.level == "problem" and not alm.global_optimum and not alm.needs_box
    assert alm.encodings == ("split",) and alm.domains == ("interval",)


# ---------------------------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------------------------
@needs("scip")
def test_auto_routes_large_interval_form_to_alm_and_says_why():
    from unrectify import random_instance, solve
    from unrectify.routing import route

    # 80 activation variables > 64; two outputs, so the exact sign enumeration does not apply
    p = random_instance(40, (1, 2, 2))
    r = route(p, "split", "interval")
    assert r.backend == "alm" and not r.certifies
    assert r.reason == ("split/interval form has 80 activation variables > 64 (scip's limit for auto): "
                        "routed to alm, not certified")
    small = route(random_instance(4, (1, 2, 2)), "split", "interval")
    assert small.backend == "scip" and small.certifies and "QCQP" in small.reason
    # a form the ALM does not take stays exact, and says so
    other = route(p, "bigm", "interval")
    assert other.backend == "scip" and "no other backend takes" in other.reason
    sol = solve(p, "split", "interval", time_limit=20, max_outer=3, max_inner=3, restarts=2)
    assert sol.backend == "alm" and sol.route == sol.extra["route"] == f"{r.reason}; result: {sol.status}, not certified"
    assert sol.status in ("local", "time_limit") and not sol.certified and not sol.certified_optimal


def test_no_box_routes_to_alm():
    from unrectify import InputError, TrainingProblem, random_instance
    from unrectify.routing import route

    q = random_instance(4, (1, 2, 1))
    p = TrainingProblem(q.X, q.Y, (1, 2, 1), weight_bound=None)
    r = route(p, "split", "interval")
    assert r.backend == "alm" and r.reason.startswith("split/interval form has no weight box")
    # a box too wide for exact solvers: the interval form goes to the ALM, the binary form fails in one line
    wide = random_instance(4, (1, 2, 1), weight_bound=1e9)
    w = route(wide, "split", "interval")
    assert w.backend == "alm" and "exceed" in w.reason and w.reason.endswith("routed to alm, not certified")
    with pytest.raises(InputError, match="exceed"):
        route(wide, "split", "binary")


def test_auto_and_named_alm_run_with_the_same_defaults():
    """The ALM reached through auto behaves exactly as the ALM named: same options, same answer."""
    from unrectify import TrainingProblem, random_instance, solve

    q = random_instance(6, (1, 3, 1), seed=2)
    p = TrainingProblem(q.X, q.Y, (1, 3, 1), weight_bound=None)   # auto must route it to the ALM
    a = solve(p, backend="auto", time_limit=30, max_outer=4, max_inner=4)
    b = solve(p, backend="alm", time_limit=30, max_outer=4, max_inner=4)
    assert a.backend == b.backend == "alm"
    assert a.extra["alm_options"] == b.extra["alm_options"]
    assert len(a.extra["restart_losses"]) == len(b.extra["restart_losses"]) == 10   # the backend's default
    assert a.forward_loss == b.forward_loss and a.route and b.route is None


def test_named_alm_runs_its_default_restarts_on_a_network_of_the_reduced_method():
    """Above ``polish_max_weights`` the ALM runs the reduced method: all of the backend's default
    10 restarts run (each after the first reads the best weights so far) and the best is kept."""
    from unrectify import TrainingProblem, random_instance, solve

    q = random_instance(30, (3, 20, 20, 1), seed=3)
    p = TrainingProblem(q.X, q.Y, (3, 20, 20, 1), weight_bound=None)   # 521 weights > 300
    s = solve(p, backend="alm", time_limit=60, max_outer=3, max_inner=10, polish=False)
    assert s.extra["alm_options"]["method"] in ("auto", "reduced")
    assert len(s.extra["restart_losses"]) == 10
    assert s.forward_loss == pytest.approx(min(s.extra["restart_losses"]), rel=1e-9)


# ---------------------------------------------------------------------------------------------
# the certificate gate
# ---------------------------------------------------------------------------------------------
def _register_liar(scale: float):
    """A model-level backend, registered like any other, that solves exactly through HiGHS/SCIP
    but reports ``scale`` times the true objective (a solver bug, as far as we can tell)."""
    from unrectify.backends import backend_class, register_backend
    from unrectify.backends.base import Backend

    real = backend_class("scip")

    class Liar(Backend):
        name = "test-liar"
        solver = "liar"
        module = real.module
        capabilities = real.capabilities

        def solve(self, model, time_limit=None, guard=True):
            raw = real().solve(model, time_limit=time_limit, guard=guard)
            raw.objective = None if raw.objective is None else raw.objective * scale
            return raw

    return register_backend(Liar)


@needs("scip")
def test_wrong_solver_answer_is_not_certified(tmp_path):
    from unrectify import random_instance, solve, verify
    from unrectify.backends import _BACKENDS

    _register_liar(1.5)
    try:
        p = random_instance(4, (1, 2, 1), seed=1)
        good = solve(p, "bigm", "binary", backend="scip", time_limit=60, symmetry_breaking="all")
        bad = solve(p, "bigm", "binary", backend="test-liar", time_limit=60, symmetry_breaking="all")
        assert good.status == "optimal" and good.certified and good.solver_objective == good.objective
        assert bad.solver_status == "optimal" and bad.status == "uncertified" and bad.certified is False
        assert not bad.certified_optimal and "certificate disagrees" in bad.message
        assert bad.solver_objective == pytest.approx(1.5 * good.solver_objective)
        assert bad.forward_loss == pytest.approx(good.forward_loss, rel=1e-6)   # the point itself is fine
        report = verify(p, ["bigm"], "test-liar", time_limit=60, symmetry_breaking="all")
        out = tmp_path / "v.json"
        report.write_json(str(out))
        runs = json.loads(out.read_text())["runs"]
        assert {r["domain"] for r in runs} == {"binary", "interval"}
        binary = next(r for r in runs if r["domain"] == "binary")
        assert binary["certified"] is False and binary["status"] == "uncertified"
        assert binary["solver_status"] == "optimal"
        assert binary["solver_objective"] == pytest.approx(1.5 * binary["forward_loss"], rel=1e-6)
        assert report.verdicts[0].tight is not True    # nothing certified: no tightness claim
    finally:
        _BACKENDS.pop("test-liar", None)


def test_gate():
    from unrectify.formulations.certificate import gate

    assert gate("optimal", True, True) == ("optimal", True)
    assert gate("optimal", True, False) == ("uncertified", False)
    assert gate("optimal", False, True) == ("uncertified", False)   # a local method never certifies
    assert gate("time_limit", True, True) == ("time_limit", False)


def test_one_gap_convention():
    from unrectify.backends.results import Result, Solution
    from unrectify.fixed import FixedSolution

    s = Solution(status="time_limit", objective=2.0, bound=1.0, weights=None, activations=None, seconds=0.0,
                 backend="scip", solver="x", encoding="split", domain="binary", certificate=None)
    assert isinstance(s, Result) and issubclass(FixedSolution, Result)
    assert s.gap == pytest.approx(0.5)
    f = FixedSolution.__new__(FixedSolution)           # a maximisation: the bound is above
    f.objective, f.bound = 1.0, 1.5
    assert f.gap == pytest.approx(0.5)


@needs("highs")
def test_lp_has_no_invented_bound():
    from unrectify import TrainingProblem, random_instance, solve

    q = random_instance(5, (1, 2, 1), loss="mae")
    p = TrainingProblem(q.X, q.Y, (1, 2, 1), loss="mae", frozen={1: (np.array([[1.0], [-1.0]]), np.zeros(2))})
    sol = solve(p, "split", "binary", backend="highs", time_limit=30)
    assert sol.model_stats["class"] == "LP" and sol.status == "optimal" and sol.certified
    assert sol.bound is None and sol.solver_bound is None and sol.gap is None


# ---------------------------------------------------------------------------------------------
# docs/extending.md: the documented examples run as written
# ---------------------------------------------------------------------------------------------
def _doc_blocks() -> list[str]:
    text = (ROOT / "docs" / "extending.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_extending_examples_run():
    from unrectify.backends import _BACKENDS
    from unrectify.formulations.encodings.base import _REGISTRY

    blocks = _doc_blocks()
    assert len(blocks) >= 2
    try:
        ns: dict = {}
        for code in blocks:
            exec(compile(code, "docs/extending.md", "exec"), ns)   # each block asserts its own result
    finally:
        _BACKENDS.pop("scipy-lp", None)
        _REGISTRY.pop("hull", None)
