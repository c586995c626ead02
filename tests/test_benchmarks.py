"""Smoke tests of the benchmark scripts at tiny sizes: they run from an installed checkout and
write the JSON their docs describe (the measured tables in docs/ come from full-size runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_alm_throughput_writes_summary(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    proc = _run(["benchmarks/alm_throughput.py", "--samples", "300", "--widths", "30,20,20,30",
                 "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    s = rep["summary"]
    assert s["failed"] == [] and 0 < s["gemm_fraction"] and s["peak_over_state_and_data_max"] > 0
    run = rep["runs"][0]
    assert run["samples"] == 300 and run["sweeps"] >= 1 and run["gflop"] > 0


def test_alm_reduced_speed_writes_rows(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    proc = _run(["benchmarks/alm_reduced_speed.py", "--samples", "600", "--widths", "12,10,10,8", "--batches",
                 "32,300", "--steps", "3", "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    assert [r["batch"] for r in rep["rows"]] == [32, 300] and rep["workers"] >= 1
    for r in rep["rows"]:
        assert r["serial"]["ms_per_step"] > 0 and r["threads"]["outer_pass_s"] > 0 and r["epoch_s"] > 0
    assert "| 300 |" in proc.stdout


def test_alm_vs_exact_from_cached_optima(tmp_path: Path) -> None:
    """With the optimum supplied in the cache (no SCIP run), ALM and the scipy baseline are
    scored against it; the oracle optimum of a 6-sample 1-2-1 instance is used."""
    pytest.importorskip("cvxpy")  # the oracle
    from benchmarks._common import instance_key, make_instance
    from tests.oracle import enumerate_optimum

    spec = (6, (1, 2, 1), 0, "mse", 2.0)
    p = make_instance(*spec)
    opt = enumerate_optimum(p.X, p.Y, 2, 2.0)
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"exact": {instance_key(*spec): {"status": "optimal", "objective": opt}}}))
    out = tmp_path / "r.json"
    proc = _run(["benchmarks/alm_vs_exact.py", "--samples", "6", "--instances", "1", "--restarts", "3",
                 "--methods", "alm,slsqp", "--cached-only", "--cache", str(cache), "--json", str(out)])
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    assert rep["summary"]["instances"] == 1
    row = rep["instances"][0]
    for m in ("alm", "slsqp"):
        assert row[m]["gap"] >= -1e-6  # nobody beats a certified optimum
    assert "| alm |" in proc.stdout


def test_alm_scale_smoke_writes_finite_results(tmp_path: Path) -> None:
    """benchmarks/alm_scale.py --smoke: pure ALM, ALM + refinement and Adam on a tiny digits
    decoder; the JSON has every documented key with finite numbers and the names tell the pure
    ALM from the refined result."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "scale.json"
    proc = _run(["benchmarks/alm_scale.py", "--smoke", "--seconds", "1", "--methods", "alm,alm+lbfgs,adam32",
                 "--json", str(out), "--plots", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    res = rep["problems"]["digits25"]
    assert set(res["methods"]) == {"alm", "alm+lbfgs", "adam32"}
    for meth, r in res["methods"].items():
        for key in ("seconds", "train_mse", "mse_pixel", "max_violation", "binary_fraction", "test_psnr"):
            assert isinstance(r[key], float) and np.isfinite(r[key]), (meth, key)
    alm = res["methods"]["alm"]
    assert alm["name"] == "alm" and alm["method"] == "reduced"
    assert res["methods"]["alm+lbfgs"]["name"] in ("alm+lbfgs", "alm")
    for key in ("peak_bytes", "variable_bytes", "peak_over_variables", "mse_over_adam32"):
        assert np.isfinite(alm[key]) and alm[key] > 0, key
    assert 0.0 <= alm["binary_fraction"] <= 1.0
    assert res["history"]["alm"] and res["history"]["adam32"]
    assert (tmp_path / "alm_scale_digits25.png").is_file()
    assert "| digits25 | alm |" in proc.stdout


BAD_ARGS = [
    (["benchmarks/certify.py", "--widths", "1,x,1"], "--widths"),
    (["benchmarks/certify.py", "--samples", "0"], "--samples"),
    (["benchmarks/certify.py", "--markdown-from", "no_such_file.json"], "not found"),
    (["benchmarks/certify.py", "--markdown-from", "README.md"], "--markdown-from"),
    (["benchmarks/fixed_weight.py", "--nets", "10-x-1"], "--nets"),
    (["benchmarks/fixed_weight.py", "--nets", "3-4-1:solve"], ":build"),
    (["benchmarks/fixed_weight.py", "--repeats", "0"], "--repeats"),
    (["benchmarks/alm_vs_exact.py", "--widths", "1,0,1"], "--widths"),
    (["benchmarks/alm_vs_exact.py", "--instances", "0"], "--instances"),
    (["benchmarks/alm_vs_exact.py", "--alm-options", "[1]"], "--alm-options"),
    (["benchmarks/alm_throughput.py", "--widths", "3"], "--widths"),
    (["benchmarks/alm_reduced_speed.py", "--batches", "64,64"], "more than once"),
    (["benchmarks/alm_reduced_speed.py", "--samples", "100", "--batches", "512"], "--batches"),
    (["benchmarks/certify.py", "--backend", "nosuch"], "--backend"),
    (["benchmarks/certify.py", "--merge", "README.md"], "--merge"),
    (["benchmarks/certify.py", "--forms", "split/binary,split/binary"], "more than once"),
    (["benchmarks/fixed_weight.py", "--nets", "2-3-1", "2-3-1"], "more than once"),
    (["benchmarks/alm_scale.py", "--smoke", "--methods", "nosuch"], "--methods"),
    (["benchmarks/alm_scale.py", "--smoke", "--alm-option", "nosuch=1"], "nosuch"),
    (["benchmarks/alm_scale.py", "--smoke", "--plot-only", "--json", "no_such_file.json"], "--plot-only"),
]


@pytest.mark.parametrize("args,word", BAD_ARGS, ids=[f"{a[0].split('/')[-1]} {a[1]} {a[2]}" for a, _ in BAD_ARGS])
def test_benchmark_refuses_bad_arguments(args: list[str], word: str) -> None:
    """Misused benchmark options end in argparse's one-line usage error (exit 2), no traceback."""
    proc = _run(args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert word in proc.stderr.strip().splitlines()[-1], proc.stderr
