"""Command-line tests: bad input gives one line on stderr, exit 2, and no output file."""

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import needs


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "unrectify", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture
def data(tmp_path):
    def make(name="d.npz", **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return str(path)
    return make


def assert_one_line_error(res, *words, json_path=None):
    assert res.returncode == 2, res.stderr
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    if json_path is not None:
        assert not json_path.exists()


def test_missing_file(tmp_path):
    out = tmp_path / "o.json"
    assert_one_line_error(run("verify", "--data", str(tmp_path / "nope.npz"), "--json", str(out)),
                          "not found", json_path=out)


def test_wrong_array_names(data, tmp_path):
    out = tmp_path / "o.json"
    path = data(A=np.ones((3, 1)), B=np.ones(3))
    assert_one_line_error(run("verify", "--data", path, "--json", str(out)), "no array 'X'", json_path=out)


def test_not_an_npz(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("hello")
    assert_one_line_error(run("verify", "--data", str(bad)), "cannot read")


def test_mismatched_shapes(data, tmp_path):
    out = tmp_path / "o.json"
    path = data(X=np.ones((3, 1)), Y=np.ones(4))
    assert_one_line_error(run("verify", "--data", path, "--json", str(out)), "samples", json_path=out)


def test_nan(data, tmp_path):
    out = tmp_path / "o.json"
    path = data(X=np.array([[0.0], [np.nan], [1.0]]), Y=np.ones(3))
    assert_one_line_error(run("verify", "--data", path, "--json", str(out)), "NaN", json_path=out)


@pytest.mark.parametrize("B", ["0", "-1", "nan"])
def test_bad_weight_bound(B, tmp_path):
    out = tmp_path / "o.json"
    assert_one_line_error(run("verify", "--weight-bound", B, "--json", str(out)), "weight-bound", json_path=out)


def test_unknown_encoding(tmp_path):
    out = tmp_path / "o.json"
    assert_one_line_error(run("verify", "--encodings", "split,magic", "--json", str(out)), "magic", json_path=out)


def test_unknown_backend(tmp_path):
    out = tmp_path / "o.json"
    assert_one_line_error(run("verify", "--backend", "cplex", "--json", str(out)), "cplex", json_path=out)


def test_widths_mismatch_and_garbage(data, tmp_path):
    path = data(X=np.ones((3, 1)), Y=np.ones(3))
    assert_one_line_error(run("verify", "--data", path, "--widths", "2,2,1"), "columns")
    assert_one_line_error(run("verify", "--widths", "1,x,1"), "widths")
    assert_one_line_error(run("verify", "--loss", "huber"), "loss")
    assert_one_line_error(run("verify", "--time-limit", "0"), "time-limit")


@needs("gurobi")
def test_oversize_for_gurobi_licence(tmp_path):
    out = tmp_path / "o.json"
    res = subprocess.run([sys.executable, "-m", "unrectify", "verify", "--samples", "60", "--backend", "gurobi",
                          "--json", str(out)], capture_output=True, text=True,
                         env={**__import__("os").environ, "GRB_LICENSE_FILE": ""}, timeout=300)
    assert_one_line_error(res, "licence", json_path=out)
    assert "instance:" not in res.stdout    # nothing announced for a run refused before solving


@needs("scip")
def test_verify_json_schema_and_verdicts(tmp_path):
    out = tmp_path / "o.json"
    res = run("verify", "--samples", "4", "--encodings", "split,sign", "--symmetry-breaking", "permutation", "--no-progress",
              "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert "TIGHT" in res.stdout and "NOT TIGHT" in res.stdout
    doc = json.loads(out.read_text())
    assert set(doc) >= {"problem", "runs", "verdicts"}
    assert doc["problem"]["samples"] == 4 and doc["problem"]["symmetry_breaking"] == ["permutation"]
    assert {(r["encoding"], r["domain"]) for r in doc["runs"]} == {
        ("split", "binary"), ("split", "interval"), ("sign", "binary"), ("sign", "interval")}
    for r in doc["runs"]:
        assert set(r) >= {"encoding", "domain", "backend", "status", "objective", "bound", "forward_loss",
                          "max_violation", "seconds"}
        assert r["status"] in {"optimal", "uncertified", "time_limit", "infeasible", "local", "error"}
        # the solver's own numbers beside the recomputed forward-pass loss, and the certificate's verdict
        assert isinstance(r["certified"], bool) and "solver_objective" in r and "solver_bound" in r
        assert r["certified"] == (r["status"] == "optimal")
    runs = {(r["encoding"], r["domain"]): r for r in doc["runs"]}
    # the non-tight relaxation is solved to optimality, but its point is no ReLU network: not certified
    assert runs["sign", "interval"]["solver_status"] == "optimal" and runs["sign", "interval"]["certified"] is False
    assert runs["split", "interval"]["certified"] is True
    verdicts = {v["encoding"]: v for v in doc["verdicts"]}
    assert verdicts["split"]["tight"] is True
    assert verdicts["sign"]["tight"] is False
    assert verdicts["sign"]["interval_objective"] < verdicts["sign"]["binary_objective"]


def test_sweep_options_need_sweep():
    assert_one_line_error(run("verify", "--workers", "2"), "need --sweep")


@needs("scip")
def test_verify_sweep_tiny(tmp_path):
    pytest.importorskip("distributed")
    spec = tmp_path / "s.toml"
    spec.write_text('name = "t"\nseeds = [0, 1]\nsamples = [3]\nwidths = ["1,2,1"]\nencodings = ["split"]\n'
                    'domains = ["interval"]\nbackends = ["scip"]\ntime_limit = 20\n')
    results = tmp_path / "r.jsonl"
    res = run("verify", "--sweep", str(spec), "--results", str(results), "--workers", "1", "--no-progress")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(l) for l in results.read_text().splitlines()]
    assert len(lines) == 2 and len({l["key"] for l in lines}) == 2
    again = run("verify", "--sweep", str(spec), "--results", str(results), "--workers", "1", "--no-progress")
    assert again.returncode == 0 and len(results.read_text().splitlines()) == 2
