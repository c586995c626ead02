"""The bad-input corpus (docs/reliability.md): every case is refused before any work.

* command line: exit code 2, exactly one line on stderr that names the argument and the
  problem, no traceback, no file or folder created anywhere under the working folder, no
  input file changed;
* Python API: a documented exception type (all derive from built-in exceptions), one line.

The CLI cases run ``unrectify.cli.main`` in-process (the same code path as the console
script, minus interpreter start-up) inside a fresh working folder; a few subprocess tests
check the real entry point.  The corpus size is printed at the end of the session
(``bad-input corpus: N cases``, see conftest.py) and must be at least 100.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unrectify.formulations import (InputError, LicenseLimitError, ModelClassError, ResourceLimitError,
                                    TrainingProblem, UnknownNameError, UnrectifyError, random_instance)
from unrectify.formulations.fixed_weight import FixedNetwork

from .conftest import INSTALLED

#: a folder this user cannot write into (root writes into read-only folders, not into /proc)
UNWRITABLE = "/proc" if os.geteuid() == 0 else "readonly"

CORPUS: set[str] = set()   # ids of the table-driven cases that ran (counted at session end)


def _record(case_id: str) -> None:
    CORPUS.add(case_id)


# --------------------------------------------------------------------------- helpers
def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``unrectify <argv>`` in-process: (exit code, stdout, stderr)."""
    from unrectify.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:   # argparse errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a hash of its content (folders: "dir")."""
    snap = {}
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            snap[str(p.relative_to(root))] = "dir"
        elif p.is_file():
            snap[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


def assert_refused(root: Path, argv: list[str], *words: str) -> str:
    before = snapshot(root)
    code, out, err = run_main(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err, out[-500:])
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    assert snapshot(root) == before, "a file or folder was created or changed"
    return lines[0]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A fresh working folder with input files of every kind."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (6, 1))
    Y = np.sin(X)
    np.savez(tmp_path / "good.npz", X=X, Y=Y)
    np.savez(tmp_path / "keys.npz", x=X, y=Y)
    np.savez(tmp_path / "onlyx.npz", X=X)
    np.savez(tmp_path / "pickled.npz", X=np.array([{"a": 1}] * 6, dtype=object), Y=Y)
    np.savez(tmp_path / "strings.npz", X=np.array([["1.0"]] * 6), Y=Y)
    np.savez(tmp_path / "bools.npz", X=np.ones((6, 1), dtype=bool), Y=Y)
    np.savez(tmp_path / "complex.npz", X=X + 1j, Y=Y)
    np.savez(tmp_path / "nan.npz", X=np.where(np.arange(6)[:, None] == 2, np.nan, X), Y=Y)
    np.savez(tmp_path / "inf.npz", X=X, Y=np.where(np.arange(6)[:, None] == 1, np.inf, Y))
    np.savez(tmp_path / "huge.npz", X=X * 1e200, Y=Y)
    np.savez(tmp_path / "cube.npz", X=np.ones((6, 1, 1)), Y=Y)
    np.savez(tmp_path / "empty.npz", X=np.ones((0, 1)), Y=np.ones((0, 1)))
    np.savez(tmp_path / "mismatch.npz", X=X, Y=np.ones((5, 1)))
    np.savez(tmp_path / "twocols.npz", X=np.ones((6, 2)), Y=Y)
    (tmp_path / "text.npz").write_text("not a zip archive")
    np.save(tmp_path / "plain.npy", X)
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:40])
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "blocked" / "results.json").mkdir(parents=True)
    (tmp_path / "spec.toml").write_text('encodings = ["split"]\n')
    (tmp_path / "existing.json").write_text('{"keep": true}\n')
    (tmp_path / "afile").write_text("x")
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield tmp_path
    ro.chmod(stat.S_IRWXU)


# --------------------------------------------------------------------------- verify corpus
# (case id, argv, words the one-line message must contain)
VERIFY_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    # counts and numbers
    ("samples-zero", ["--samples", "0"], ("--samples", "positive")),
    ("samples-negative", ["--samples", "-3"], ("--samples",)),
    ("samples-text", ["--samples", "abc"], ("--samples",)),
    ("samples-fraction", ["--samples", "1.5"], ("--samples",)),
    ("samples-nan", ["--samples", "nan"], ("--samples",)),
    ("samples-too-many", ["--samples", "100000000", "--widths", "1,2,1"], ("too large",)),
    ("seed-text", ["--seed", "x"], ("--seed",)),
    ("seed-negative", ["--seed", "-1"], ("--seed",)),
    ("weight-bound-zero", ["--weight-bound", "0"], ("--weight-bound",)),
    ("weight-bound-negative", ["--weight-bound", "-1"], ("--weight-bound",)),
    ("weight-bound-nan", ["--weight-bound", "nan"], ("--weight-bound",)),
    ("weight-bound-inf", ["--weight-bound", "inf"], ("--weight-bound",)),
    ("weight-bound-text", ["--weight-bound", "two"], ("--weight-bound",)),
    ("weight-bound-too-large", ["--weight-bound", "1e9"], ("bounds", "weight")),
    ("time-limit-zero", ["--time-limit", "0"], ("--time-limit",)),
    ("time-limit-negative", ["--time-limit", "-5"], ("--time-limit",)),
    ("time-limit-nan", ["--time-limit", "nan"], ("--time-limit",)),
    ("time-limit-inf", ["--time-limit", "inf"], ("--time-limit",)),
    ("time-limit-text", ["--time-limit", "soon"], ("--time-limit",)),
    ("restarts-zero", ["--backend", "alm", "--restarts", "0"], ("--restarts",)),
    ("restarts-negative", ["--backend", "alm", "--restarts", "-2"], ("--restarts",)),
    ("restarts-text", ["--backend", "alm", "--restarts", "many"], ("--restarts",)),
    ("restarts-huge-memory", ["--backend", "alm", "--restarts", "1e9"], ("memory", "GB", "available")),
    ("restarts-above-max", ["--backend", "alm", "--restarts", "1e15"], ("--restarts",)),
    # widths
    ("widths-empty", ["--widths", ""], ("widths",)),
    ("widths-one", ["--widths", "1"], ("widths", "hidden")),
    ("widths-two", ["--widths", "1,1"], ("widths", "hidden")),
    ("widths-zero", ["--widths", "1,0,1"], ("widths", "positive")),
    ("widths-negative", ["--widths", "1,-2,1"], ("widths",)),
    ("widths-letter", ["--widths", "1,x,1"], ("widths",)),
    ("widths-fraction", ["--widths", "1,2.5,1"], ("widths",)),
    ("widths-empty-item", ["--widths", "1,,1"], ("widths",)),
    # (1,20000,1 on 20 samples is no longer refused: the ALM's output fit of a layer wider than
    # the data uses the N x N kernel, and the run honours --time-limit; tests/test_alm.py)
    # names
    ("loss-unknown", ["--loss", "huber"], ("loss", "huber")),
    ("loss-case", ["--loss", "MSE"], ("loss",)),
    ("encoding-unknown", ["--encodings", "split,magic"], ("--encodings", "magic")),
    ("encoding-duplicate", ["--encodings", "split,split"], ("--encodings", "split", "more than once")),
    ("encoding-empty-item", ["--encodings", "split,"], ("--encodings",)),
    ("encoding-empty", ["--encodings", ""], ("--encodings",)),
    ("backend-unknown", ["--backend", "cplex"], ("--backend", "cplex")),
    ("backend-duplicate", ["--backend", "auto,auto"], ("--backend", "more than once")),
    ("backend-empty", ["--backend", ""], ("--backend",)),
    ("symmetry-unknown", ["--symmetry-breaking", "mirror"], ("symmetry", "mirror")),
    ("symmetry-twice", ["--symmetry-breaking", "permutation,permutation"], ("symmetry", "permutation", "twice")),
    ("symmetry-all-mixed", ["--symmetry-breaking", "all,none"], ("symmetry", "'all'", "alone")),
    ("symmetry-empty", ["--symmetry-breaking="], ("--symmetry-breaking", "empty")),
    ("symmetry-scaling-multi-output", ["--symmetry-breaking", "scaling", "--widths", "1,2,2"],
     ("scaling", "single-output", "2 outputs")),
    ("option-unknown", ["--frobnicate"], ("unrecognized", "--frobnicate")),
    # options the mode would ignore
    ("restarts-exact-backend", ["--backend", "scip", "--restarts", "5"], ("--restarts", "alm")),
    ("restarts-small-auto", ["--restarts", "5"], ("--restarts", "alm")),
    ("alm-without-split", ["--backend", "alm", "--encodings", "sign"], ("--backend alm", "split")),
    ("seed-with-data", ["--data", "good.npz", "--seed", "3"], ("--seed", "--data")),
    ("data-and-samples", ["--data", "good.npz", "--samples", "3"], ("--samples", "--data")),
    ("scheduler-without-sweep", ["--scheduler", "tcp://localhost:1"], ("--scheduler", "--sweep")),
    ("workers-without-sweep", ["--workers", "2"], ("--workers", "--sweep")),
    ("results-without-sweep", ["--results", "r.jsonl"], ("--results", "--sweep")),
    ("sweep-with-samples", ["--sweep", "spec.toml", "--samples", "3"], ("--sweep", "--samples")),
    ("sweep-with-time-limit", ["--sweep", "spec.toml", "--time-limit", "3"], ("--sweep", "--time-limit")),
    ("sweep-with-restarts", ["--sweep", "spec.toml", "--restarts", "3"], ("--sweep", "--restarts")),
    ("sweep-with-json", ["--sweep", "spec.toml", "--json", "o.json"], ("--sweep", "--json")),
    ("sweep-with-encodings", ["--sweep", "spec.toml", "--encodings", "split"], ("--sweep", "--encodings")),
    ("sweep-missing", ["--sweep", "nope.toml"], ("--sweep", "not found")),
    ("sweep-workers-zero", ["--sweep", "spec.toml", "--workers", "0"], ("--workers",)),
    ("sweep-results-is-spec", ["--sweep", "spec.toml", "--results", "spec.toml"], ("--results", "input")),
    ("sweep-results-dir-missing", ["--sweep", "spec.toml", "--results", "no/where.jsonl"], ("--results",)),
    # outputs (checked before any work)
    ("json-dir-missing", ["--json", "nowhere/o.json"], ("--json", "does not exist")),
    ("json-is-dir", ["--json", "readonly"], ("--json", "directory")),
    ("json-unwritable", ["--json", f"{UNWRITABLE}/o.json"], ("--json", "not writable")),
    ("json-equals-data", ["--data", "good.npz", "--json", "good.npz"], ("--json", "input")),
    ("json-empty", ["--json", ""], ("--json",)),
    # input files
    ("data-missing", ["--data", "nope.npz"], ("--data", "not found")),
    ("data-folder", ["--data", "folder.npz"], ("--data", "directory")),
    ("data-text", ["--data", "text.npz"], ("cannot read",)),
    ("data-npy", ["--data", "plain.npy"], ("plain.npy", ".npy", "not a .npz")),
    ("data-truncated", ["--data", "trunc.npz"], ("cannot read",)),
    ("data-wrong-keys", ["--data", "keys.npz"], ("no array 'X'",)),
    ("data-missing-y", ["--data", "onlyx.npz"], ("no array 'Y'",)),
    ("data-pickled-objects", ["--data", "pickled.npz"], ("cannot read",)),
    ("data-strings", ["--data", "strings.npz"], ("'X'", "dtype")),
    ("data-bools", ["--data", "bools.npz"], ("'X'", "dtype")),
    ("data-complex", ["--data", "complex.npz"], ("'X'", "dtype")),
    ("data-nan", ["--data", "nan.npz"], ("X", "NaN")),
    ("data-inf", ["--data", "inf.npz"], ("Y", "infinite")),
    ("data-huge-values", ["--data", "huge.npz"], ("X", "rescale")),
    ("data-3d", ["--data", "cube.npz"], ("X", "shape")),
    ("data-empty", ["--data", "empty.npz"], ("empty",)),
    ("data-sample-mismatch", ["--data", "mismatch.npz"], ("samples",)),
    ("data-widths-mismatch", ["--data", "good.npz", "--widths", "2,2,1"], ("columns",)),
    ("data-output-mismatch", ["--data", "good.npz", "--widths", "1,2,3"], ("columns",)),
    ("data-columns-mismatch", ["--data", "twocols.npz", "--widths", "1,2,1"], ("columns",)),
]

if "highs" in INSTALLED:
    VERIFY_CASES.append(("backend-cannot-take-form", ["--backend", "highs", "--encodings", "split"],
                         ("split/binary", "'highs'", "MIQCQP")))
if "gurobi" in INSTALLED:
    VERIFY_CASES.append(("gurobi-licence", ["--samples", "60", "--backend", "gurobi"], ("licen",)))


@pytest.mark.parametrize("case_id,argv,words", VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_verify_refuses(work, case_id, argv, words):
    assert_refused(work, ["verify", "--no-progress", *argv], *words)
    _record("verify:" + case_id)


TOP_CASES = [
    ("no-command", [], ("command",)),
    ("unknown-command", ["train"], ("train",)),
    ("unknown-top-option", ["--colour", "verify"], ("--colour",)),
]


@pytest.mark.parametrize("case_id,argv,words", TOP_CASES, ids=[c[0] for c in TOP_CASES])
def test_top_level_refuses(work, case_id, argv, words):
    assert_refused(work, argv, *words)
    _record("top:" + case_id)


# --------------------------------------------------------------------------- cs corpus
CS_CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("dataset-unknown", ["--dataset", "cifar"], ("cifar",)),
    ("ratios-zero", ["--ratios", "0"], ("--ratios",)),
    ("ratios-above-100", ["--ratios", "150"], ("--ratios",)),
    ("ratios-text", ["--ratios", "a,b"], ("--ratios",)),
    ("ratios-nan", ["--ratios", "nan"], ("--ratios",)),
    ("ratios-duplicate", ["--ratios", "4,4"], ("--ratios", "more than once")),
    ("ratios-empty-item", ["--ratios", "4,,10"], ("--ratios",)),
    ("ratios-no-measurement", ["--ratios", "0.33"], ("--ratios", "no measurement", "percentages")),
    ("ratios-same-m", ["--ratios", "1,1.2"], ("--ratios", "same number of measurements")),
    ("methods-unknown", ["--methods", "pinv,magic"], ("--methods", "magic")),
    ("methods-duplicate", ["--methods", "pinv,pinv"], ("--methods", "more than once")),
    ("methods-empty", ["--methods", ""], ("--methods",)),
    ("option-unknown-key", ["--methods", "pinv", "--option", "pinv.foo=1"], ("pinv", "foo")),
    ("option-bad-format", ["--methods", "pinv", "--option", "pinv-foo"], ("--option", "METHOD.KEY=VALUE")),
    ("option-not-in-methods", ["--methods", "pinv", "--option", "linear.alpha=1"], ("--option", "linear")),
    ("option-repeated", ["--methods", "linear", "--option", "linear.alpha=1", "--option", "linear.alpha=2"],
     ("more than once",)),
    ("option-bad-value", ["--methods", "linear", "--option", "linear.alpha=-1"], ("linear",)),
    ("noise-negative", ["--noise", "-0.1"], ("--noise",)),
    ("noise-nan", ["--noise", "nan"], ("--noise",)),
    ("noise-inf", ["--noise", "inf"], ("--noise",)),
    ("noise-text", ["--noise", "loud"], ("--noise",)),
    ("noise-huge", ["--noise", "1e300"], ("--noise", "above")),
    ("snr-huge-negative", ["--snr=-1e308"], ("--snr", "between")),
    ("snr-with-zero-noise", ["--snr", "20", "--noise", "0"], ("--noise", "--snr", "not both")),
    ("budget-without-learned", ["--budget", "1"], ("--budget", "learned")),
    ("option-complex-value", ["--option", "pinv.rcond=1j"], ("pinv.rcond", "complex")),
    ("option-bool-not-bool", ["--methods", "tv", "--option", "tv.box=maybe"], ("tv", "box", "yes/no")),
    ("option-time-limit", ["--methods", "adam", "--option", "adam.time_limit=3"], ("time_limit", "--budget")),
    ("option-inner-time-limit", ["--methods", "tv+res-adam", "--option", "tv+res-adam.inner_options={'time_limit':3}"],
     ("time_limit", "--budget")),
    ("option-alm-dtype", ["--methods", "alm", "--option", "alm.dtype=abc"], ("alm", "dtype")),
    ("option-alm-options-unknown", ["--methods", "alm", "--option", "alm.alm_options={'nosuch':1}"], ("nosuch",)),
    ("option-res-alm-lr-nan", ["--methods", "res-alm", "--option", "res-alm.lr=nan"], ("res-alm", "lr")),
    ("option-res-alm-lr-empty-list", ["--methods", "res-alm", "--option", "res-alm.lr=[]"], ("lr", "empty")),
    ("option-res-alm-batch-list-bad", ["--methods", "res-alm", "--option", "res-alm.batch_size=[64,0.5]"],
     ("batch_size",)),
    ("option-res-alm-lr-list-no-held-out", ["--methods", "res-alm", "--option", "res-alm.lr=[1e-3,1e-4]",
                                            "--option", "res-alm.validation=0"], ("candidates", "validation")),
    ("train-samples-zero", ["--train-samples", "0"], ("--train-samples",)),
    ("test-samples-negative", ["--test-samples", "-5"], ("--test-samples",)),
    ("seed-negative", ["--seed", "-1"], ("--seed",)),
    ("out-is-file", ["--out", "afile"], ("--out", "not a directory")),
    ("out-unwritable", ["--out", f"{UNWRITABLE}/res"], ("--out", "not writable")),
    ("out-under-file", ["--out", "afile/res"], ("--out",)),
    ("out-name-blocked", ["--out", "blocked"], ("results.json", "not a file")),
    ("seed-too-large", ["--seed", "18446744073709551616"], ("--seed", "4294967295")),
    ("option-seed-negative", ["--methods", "alm", "--option", "alm.seed=-3"], ("alm", "seed")),
    ("option-other-trainer", ["--methods", "res-alm", "--option", "res-alm.epochs=3"], ("res-alm", "epochs", "trainer")),
    ("option-nan-value", ["--methods", "linear", "--option", "linear.alpha=nan"], ("linear", "nan")),
    ("option-wavelet-too-deep", ["--methods", "l1", "--option", "l1.basis=wavelet", "--option", "l1.level=99"],
     ("level 99", "too deep")),
    ("option-wavelet-level-other-basis", ["--methods", "l1", "--option", "l1.level=2"], ("level", "basis='wavelet'")),
    ("option-network-too-large", ["--methods", "alm", "--option", "alm.hidden=[100000,100000]"],
     ("alm", "100000", "available")),
    ("option-tol-negative", ["--methods", "l1", "--option", "l1.tol=-1"], ("l1", "tol")),
    ("option-tv-tol-nan", ["--methods", "tv", "--option", "tv.tol=nan"], ("tv", "tol")),
    ("option-omp-sparsity-negative", ["--methods", "omp", "--option", "omp.sparsity_ratio=-1"],
     ("omp", "sparsity_ratio")),
]
if "cvxpy" in INSTALLED:
    CS_CASES.append(("option-cvxpy-solver-missing",
                     ["--methods", "l1", "--option", "l1.solver=cvxpy", "--option", "l1.cvxpy_solver=FOO"],
                     ("cvxpy_solver", "FOO", "not installed")))


@pytest.mark.parametrize("case_id,argv,words", CS_CASES, ids=[c[0] for c in CS_CASES])
def test_cs_refuses(work, case_id, argv, words):
    assert_refused(work, ["cs", "--no-progress", "--methods", "pinv", *argv]
                   if "--methods" not in argv else ["cs", "--no-progress", *argv], *words)
    _record("cs:" + case_id)


# --------------------------------------------------------------------------- API corpus
X6 = np.linspace(-1, 1, 6)[:, None]
Y6 = np.sin(X6)
W121 = [(np.ones((2, 1)), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))]


def _tp(**kw):
    args = {"X": X6, "Y": Y6, "widths": (1, 2, 1)} | kw
    return lambda: TrainingProblem(**args)


def _solve(**kw):
    def f():
        import unrectify

        args = {"problem": random_instance(4, (1, 2, 1)), "encoding": "split", "domain": "interval"} | kw
        return unrectify.solve(**args)
    return f


def _verify(**kw):
    def f():
        import unrectify

        return unrectify.verify(random_instance(4, (1, 2, 1)), **kw)
    return f


def _alm(**kw):
    def f():
        from unrectify.backends.alm import solve_alm

        return solve_alm(random_instance(4, (1, 2, 1)), **kw)
    return f


def _net(weights=W121, lo=0.0, hi=1.0):
    return lambda: FixedNetwork(weights, lo, hi)


def _opt(**kw):
    def f():
        import unrectify

        args = {"net": FixedNetwork(W121), "output_index": 0} | kw
        return unrectify.optimize_output(**args)
    return f


def _invert(**kw):
    def f():
        import unrectify

        args = {"net": FixedNetwork(W121), "target": np.array([0.5])} | kw
        return unrectify.invert(**args)
    return f


def _sweep(spec):
    def f():
        from unrectify.sweep import spec_from_dict

        return spec_from_dict(spec)
    return f


def _cs(fn, *args, **kw):
    def f():
        import importlib

        mod, name = fn.rsplit(".", 1)
        return getattr(importlib.import_module(mod), name)(*args, **kw)
    return f


def _load(name):
    def f():
        from unrectify.io import load_problem

        return load_problem(name)
    return f


NAN_X = X6.copy()
NAN_X[2, 0] = np.nan

# (case id, callable, expected exception type, words)
API_CASES = [
    ("tp-x-nan", _tp(X=NAN_X), InputError, ("X", "NaN")),
    ("tp-y-inf", _tp(Y=np.full((6, 1), np.inf)), InputError, ("Y", "infinite")),
    ("tp-x-complex", _tp(X=X6 + 1j), InputError, ("X", "complex")),
    ("tp-x-strings", _tp(X=np.array([["a"]] * 6)), InputError, ("X", "numeric")),
    ("tp-x-3d", _tp(X=np.ones((6, 1, 1))), InputError, ("X", "shape")),
    ("tp-x-empty", _tp(X=np.ones((0, 1)), Y=np.ones((0, 1))), InputError, ("empty",)),
    ("tp-sample-mismatch", _tp(Y=np.ones((5, 1))), InputError, ("samples",)),
    ("tp-widths-string", _tp(widths="1,2"), InputError, ("widths",)),
    ("tp-widths-short", _tp(widths=(1, 1)), InputError, ("widths", "hidden")),
    ("tp-widths-zero", _tp(widths=(1, 0, 1)), InputError, ("widths", "positive")),
    ("tp-widths-fraction", _tp(widths=(1, 2.5, 1)), InputError, ("widths",)),
    ("tp-widths-bool", _tp(widths=(True, 2, 1)), InputError, ("widths",)),
    ("tp-widths-none", _tp(widths=None), InputError, ("widths",)),
    ("tp-widths-x-mismatch", _tp(widths=(2, 2, 1)), InputError, ("columns",)),
    ("tp-widths-y-mismatch", _tp(widths=(1, 2, 3)), InputError, ("columns",)),
    ("tp-loss-unknown", _tp(loss="huber"), UnknownNameError, ("loss", "huber")),
    ("tp-bound-zero", _tp(weight_bound=0), InputError, ("weight bound",)),
    ("tp-bound-nan", _tp(weight_bound=float("nan")), InputError, ("weight bound",)),
    ("tp-bound-inf", _tp(weight_bound=math.inf), InputError, ("weight bound",)),
    ("tp-bound-text", _tp(weight_bound="two"), InputError, ("weight bound",)),
    ("tp-frozen-layer-range", _tp(frozen={5: W121[0]}), InputError, ("frozen layer 5",)),
    ("tp-frozen-shape", _tp(frozen={1: (np.ones((3, 1)), np.zeros(3))}), InputError, ("frozen layer 1",)),
    ("tp-frozen-nan", _tp(frozen={1: (np.full((2, 1), np.nan), np.zeros(2))}), InputError, ("NaN",)),
    ("tp-all-frozen", _tp(frozen={1: W121[0], 2: W121[1]}), InputError, ("frozen",)),
    ("random-samples-zero", lambda: random_instance(0), InputError, ("samples",)),
    ("random-samples-float", lambda: random_instance(2.5), InputError, ("samples",)),
    ("random-too-large", lambda: random_instance(10**8, (1, 2, 1)), InputError, ("too large",)),
    ("random-widths-bad", lambda: random_instance(4, (1, -1, 1)), InputError, ("widths",)),
    ("check-weights-count", lambda: random_instance(4).check_weights(W121[:1]), InputError, ("layers",)),
    ("check-weights-shape", lambda: random_instance(4).check_weights([W121[1], W121[0]]), InputError, ("layer 1",)),
    ("solve-encoding-unknown", _solve(encoding="magic"), UnknownNameError, ("magic",)),
    ("solve-domain-unknown", _solve(domain="ternary"), InputError, ("ternary",)),
    ("solve-backend-unknown", _solve(backend="cplex"), UnknownNameError, ("cplex",)),
    ("solve-time-limit-negative", _solve(backend="highs", encoding="bigm", domain="interval", time_limit=-1),
     (InputError, ModelClassError), ("",)),
    ("solve-time-limit-nan", _solve(backend="cvxpy", encoding="bigm", domain="interval", time_limit=float("nan")),
     (InputError, ModelClassError), ("",)),
    ("solve-symmetry-unknown", _solve(symmetry_breaking="mirror"), UnknownNameError, ("mirror",)),
    ("verify-encoding-twice", _verify(encodings=["split", "split"]), InputError, ("encoding split", "more than once")),
    ("verify-backend-twice", _verify(encodings=["split"], backend="scip,scip"), InputError, ("backend scip", "more than once")),
    ("alm-restarts-zero", _alm(restarts=0), InputError, ("restarts",)),
    ("alm-restarts-huge", _alm(restarts=10**9), ResourceLimitError, ("memory",)),
    ("alm-time-limit-negative", _alm(time_limit=-1), InputError, ("time_limit",)),
    ("alm-time-limit-bool", _alm(time_limit=True), InputError, ("time_limit", "True")),
    ("alm-time-limit-nan", _alm(time_limit=float("nan")), InputError, ("time_limit", "nan")),
    ("alm-seed-negative", _alm(seed=-1), InputError, ("seed",)),
    ("alm-init-layers", _alm(init=W121[:1]), InputError, ("init", "layers")),
    ("alm-init-shape", _alm(init=[W121[1], W121[0]]), InputError, ("init layer 1",)),
    ("alm-init-nan", _alm(init=[(np.full((2, 1), np.nan), np.zeros(2)), W121[1]]), InputError, ("NaN",)),
    ("alm-option-unknown", _alm(flux=3), (InputError, TypeError), ("flux",)),
    ("net-empty", _net([]), InputError, ("empty",)),
    ("net-not-pairs", _net([np.ones((2, 1))]), InputError, ("layer 1",)),
    ("net-not-a-list", _net(3.0), InputError, ("pairs",)),
    ("net-w-1d", _net([(np.ones(2), np.zeros(2))]), InputError, ("2-D",)),
    ("net-b-mismatch", _net([(np.ones((2, 1)), np.zeros(3))]), InputError, ("b has shape",)),
    ("net-chain", _net([(np.ones((2, 1)), np.zeros(2)), (np.ones((1, 3)), np.zeros(1))]), InputError, ("inputs",)),
    ("net-nan", _net([(np.full((2, 1), np.nan), np.zeros(2)), W121[1]]), InputError, ("NaN",)),
    ("net-box-infeasible", _net(lo=1.0, hi=0.0), InputError, ("infeasible box",)),
    ("net-box-shape", _net(lo=np.zeros(3)), InputError, ("do not match",)),
    ("net-box-nan", _net(hi=float("nan")), InputError, ("NaN",)),
    ("net-bounds-unknown", lambda: FixedNetwork(W121).bounds("magic"), UnknownNameError, ("magic",)),
    ("net-truncate-range", lambda: FixedNetwork(W121).truncated(5), InputError, ("truncate",)),
    ("opt-sense-unknown", _opt(sense="up"), (UnknownNameError, InputError), ("up",)),
    ("opt-index-range", _opt(output_index=7), InputError, ("7",)),
    ("bab-gap-nan", _opt(backend="input-bab", gap=float("nan")), InputError, ("gap", "nan")),
    ("bab-absgap-negative", _opt(backend="input-bab", absgap=-1.0), InputError, ("absgap",)),
    ("bab-max-open-inf", _opt(backend="input-bab", max_open=float("inf")), InputError, ("max_open",)),
    ("bab-seed-fraction", _opt(backend="input-bab", seed=1.5), InputError, ("seed",)),
    ("bab-seed-negative", _opt(backend="input-bab", seed=-1), InputError, ("seed",)),
    ("bab-samples-negative", _opt(backend="input-bab", samples=-5), InputError, ("samples",)),
    ("bab-batch-fraction", _opt(backend="input-bab", batch=1.5), InputError, ("batch",)),
    ("bab-local-search-text", _opt(backend="input-bab", local_search="no"), InputError, ("local_search",)),
    ("bab-alpha-steps-negative", _opt(backend="input-bab", alpha_steps=-1), InputError, ("alpha_steps",)),
    ("bab-alpha-steps-text", _opt(backend="input-bab", alpha_steps="ten"), InputError, ("alpha_steps",)),
    ("invert-target-shape", _invert(target=np.ones(3)), InputError, ("target",)),
    ("invert-target-nan", _invert(target=np.array([np.nan])), InputError, ("NaN",)),
    ("invert-norm-unknown", _invert(norm="l3"), UnknownNameError, ("l3",)),
    ("sweep-unknown-key", _sweep({"encodings": ["split"], "colour": 1}), InputError, ("colour",)),
    ("sweep-missing-key", _sweep({"seeds": [0]}), InputError, ("encodings",)),
    ("sweep-widths-bad", _sweep({"encodings": ["split"], "widths": "1,x,1"}), InputError, ("widths",)),
    ("sweep-time-limit-negative", _sweep({"encodings": ["split"], "time_limit": -1}), InputError, ("time_limit",)),
    ("sweep-encoding-unknown", _sweep({"encodings": ["magic"]}), InputError, ("magic",)),
    ("sweep-samples-type", _sweep({"encodings": ["split"], "samples": ["8"]}), InputError, ("samples",)),
    ("load-pickled", _load("pickled.npz"), InputError, ("cannot read",)),
    ("load-strings", _load("strings.npz"), InputError, ("dtype",)),
    ("load-missing", _load("nope.npz"), InputError, ("not found",)),
    ("cs-ratio-zero", _cs("unrectify.cs.operators.gaussian_operator", 0.0, 64), ValueError, ("ratio",)),
    ("cs-decoder-unknown", _cs("unrectify.cs.decoders.get_decoder", "magic", np.ones((2, 4))), ValueError, ("magic",)),
    ("cs-weights-chain", _cs("unrectify.cs.decoders.check_weights",
                             [(np.ones((2, 3)), np.zeros(2)), (np.ones((1, 5)), np.zeros(1))]), ValueError, ("inputs",)),
    ("cs-weights-nan", _cs("unrectify.cs.decoders.check_weights", [(np.full((2, 3), np.nan), np.zeros(2))]),
     ValueError, ("NaN",)),
    ("cs-experiment-option", _cs("unrectify.cs.experiment.run_cs_experiment", "digits", [0.1], ["pinv"],
                                 out_dir="cs_out", progress=False, method_options={"pinv": {"foo": 1}}),
     ValueError, ("foo",)),
    ("cs-experiment-noise", _cs("unrectify.cs.experiment.run_cs_experiment", "digits", [0.1], ["pinv"],
                                noise=float("nan"), out_dir="cs_out", progress=False), ValueError, ("noise",)),
]


@pytest.mark.parametrize("case_id,fn,exc,words", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_refuses(work, case_id, fn, exc, words):
    before = snapshot(work)
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg.strip(), msg
    assert isinstance(info.value, (UnrectifyError, ValueError, KeyError, TypeError, ImportError))
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    assert snapshot(work) == before
    _record("api:" + case_id)


def test_error_types_derive_from_builtins():
    from unrectify.cli import CLIError
    from unrectify.cs.errors import CSInputError
    from unrectify.sweep import SweepError

    assert issubclass(InputError, ValueError) and issubclass(UnknownNameError, KeyError)
    for cls in (ResourceLimitError, CLIError, SweepError):
        assert issubclass(cls, InputError)
    for cls in (LicenseLimitError, ModelClassError, CSInputError):
        assert issubclass(cls, ValueError)


# --------------------------------------------------------------------------- hypothesis strategies
HSET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

bad_number = st.one_of(st.sampled_from(["0", "-1", "nan", "inf", "-inf", "", "1e", "x", "1,2", "0x10"]),
                       st.floats(max_value=0, allow_nan=False).map(repr))
bad_count = st.one_of(st.sampled_from(["0", "-1", "nan", "1.5", "", "ten", "1e20"]),
                      st.integers(max_value=0).map(str))
bad_widths = st.one_of(
    st.lists(st.integers(1, 4), min_size=0, max_size=2).map(lambda w: ",".join(map(str, w))),   # too short
    st.lists(st.integers(-3, 0), min_size=3, max_size=4).map(lambda w: ",".join(map(str, w))),  # non-positive
    st.lists(st.sampled_from(["a", "1.5", "", " ", "1e3x", "+-1"]), min_size=1, max_size=4)
      .map(lambda w: ",".join(["1", *w, "1"])),
)


@HSET
@given(option=st.sampled_from(["--time-limit", "--weight-bound"]), value=bad_number)
def test_hypothesis_cli_numbers(work, option, value):
    assert_refused(work, ["verify", "--no-progress", option, value], option)


@HSET
@given(option=st.sampled_from(["--samples", "--restarts"]), value=bad_count)
def test_hypothesis_cli_counts(work, option, value):
    assert_refused(work, ["verify", "--no-progress", "--backend", "alm", option, value], option)


@HSET
@given(value=bad_widths)
def test_hypothesis_cli_widths(work, value):
    assert_refused(work, ["verify", "--no-progress", "--widths", value], "widths")


@st.composite
def broken_instance(draw):
    """(X, Y) with exactly one defect: a non-finite value, a wrong rank, a sample mismatch or a bad dtype."""
    n = draw(st.integers(2, 6))
    X = np.linspace(-1, 1, n)[:, None]
    Y = np.sin(X)
    kind = draw(st.sampled_from(["nan", "inf", "rank", "mismatch", "dtype"]))
    target = draw(st.sampled_from(["X", "Y"]))
    arrs = {"X": X.copy(), "Y": Y.copy()}
    if kind in ("nan", "inf"):
        arrs[target][draw(st.integers(0, n - 1)), 0] = np.nan if kind == "nan" else -np.inf
    elif kind == "rank":
        arrs[target] = arrs[target][:, :, None]
    elif kind == "mismatch":
        arrs[target] = arrs[target][:-1]
    else:
        arrs[target] = arrs[target].astype(draw(st.sampled_from(["U8", "complex128", "bool"])))
    return arrs, kind


@HSET
@given(case=broken_instance())
def test_hypothesis_instance_files(work, case):
    arrs, kind = case
    np.savez(work / "h.npz", **arrs)
    assert_refused(work, ["verify", "--no-progress", "--data", "h.npz"], "")
    (work / "h.npz").unlink()


SPEC_KEYS = ["seeds", "samples", "widths", "encodings", "domains", "backends", "loss", "weight_bound",
             "symmetry_breaking", "time_limit"]
bad_spec_value = st.one_of(st.just([]), st.just(-1), st.just("??"), st.just([None]), st.just({"a": 1}),
                           st.just(float("nan")), st.just([0]))


@HSET
@given(key=st.sampled_from(SPEC_KEYS + ["unknown_key", "Widths"]), value=bad_spec_value)
def test_hypothesis_sweep_specs(key, value):
    from unrectify.sweep import spec_from_dict

    spec = {"encodings": ["split"], key: value}
    if key in ("seeds", "symmetry_breaking") and value == [0]:
        return   # [0]: a valid seed list; symmetry_breaking 0 is False ("none")
    with pytest.raises(InputError) as info:
        spec_from_dict(spec)
    assert "\n" not in str(info.value)


@HSET
@given(n=st.integers(1, 5), hidden=st.integers(1, 3),
       defect=st.sampled_from(["nan-x", "inf-y", "width", "bound", "loss"]))
def test_hypothesis_training_problem(n, hidden, defect):
    X = np.linspace(0, 1, n)[:, None]
    Y = X.copy()
    kw = {"widths": (1, hidden, 1), "weight_bound": 2.0, "loss": "mse"}
    if defect == "nan-x":
        X[n // 2, 0] = np.nan
    elif defect == "inf-y":
        Y[0, 0] = np.inf
    elif defect == "width":
        kw["widths"] = (1, -hidden, 1)
    elif defect == "bound":
        kw["weight_bound"] = -1.0
    else:
        kw["loss"] = "l3"
    with pytest.raises(InputError):
        TrainingProblem(X, Y, **kw)


# --------------------------------------------------------------------------- the real entry point
def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "unrectify", *args], capture_output=True, text=True, timeout=300,
                          **kw)


def test_version():
    import unrectify

    res = _cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"unrectify {unrectify.__version__}"


def test_broken_pipe_is_quiet():
    """``unrectify verify ... | head -1``: no traceback, no 'Exception ignored' noise."""
    if "scip" not in INSTALLED:
        pytest.skip("needs SCIP")
    cmd = (f"{sys.executable} -m unrectify verify --samples 3 --encodings split --no-progress "
           f"| head -1")
    res = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True, timeout=300)
    assert res.stdout.startswith("instance:")
    assert res.stderr == "", res.stderr
    assert res.returncode in (0, 141)


def test_existing_json_kept_on_refusal(work):
    """A refused run leaves an existing --json file byte for byte as it was."""
    before = (work / "existing.json").read_bytes()
    assert_refused(work, ["verify", "--no-progress", "--json", "existing.json", "--time-limit", "-1"], "--time-limit")
    assert (work / "existing.json").read_bytes() == before


def test_highs_banner_silent(capfd):
    """Fixed-weight solves through the Python API print nothing (HiGHS banner included)."""
    import unrectify

    if "highs" not in INSTALLED:
        pytest.skip("needs HiGHS")
    for backend in ("highs", "cvxpy"):
        if backend not in INSTALLED:
            continue
        sol = unrectify.optimize_output(FixedNetwork(W121), 0, backend=backend, domain="interval")
        assert sol.status == "optimal"
    out, _ = capfd.readouterr()
    assert "HiGHS" not in out and out == ""


def test_atomic_writer_keeps_old_file_on_failure(tmp_path):
    from unrectify.atomic import write_json_atomic

    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})   # not serialisable: fails before the rename
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]   # no temporary file left


def test_corpus_size():
    """Counts the table-driven corpus (its ids; hypothesis strategies come on top)."""
    n = len(VERIFY_CASES) + len(TOP_CASES) + len(CS_CASES) + len(API_CASES)
    print(f"\nbad-input corpus: {n} table-driven cases (+ 7 hypothesis strategies)")
    assert n >= 100


# --------------------------------------------------------------------------- interrupts
def _start(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "unrectify", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(pred, proc, timeout=240.0):
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


@pytest.mark.skipif("scip" not in INSTALLED, reason="needs SCIP")
def test_sigterm_verify_keeps_finished_runs(tmp_path):
    """SIGTERM during the second solve: exit 143, the finished ALM run printed and written
    (marked interrupted), the loss said on stderr."""
    import signal

    out = tmp_path / "o.json"
    # the ALM run (fast) comes first; SCIP on 40 samples of a 1-6-1 network does not finish in 120 s
    proc = _start(["verify", "--samples", "40", "--widths", "1,6,1", "--encodings", "split", "--backend", "alm,scip",
                   "--restarts", "1", "--time-limit", "120", "--no-progress", "--json", str(out)], tmp_path)
    psutil = pytest.importorskip("psutil")

    def scip_started():
        # the ALM run is done once the guard process of the SCIP solve exists
        try:
            return len(psutil.Process(proc.pid).children()) > 0
        except psutil.NoSuchProcess:
            return False

    assert _wait_for(scip_started, proc), proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "interrupted by SIGTERM: 1 of 4 solves finished" in stderr, stderr
    assert "alm" in stdout
    doc = json.loads(out.read_text())
    assert doc["problem"]["interrupted"] is True and len(doc["runs"]) == 1 and doc["runs"][0]["backend"] == "alm"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary file left


def test_sigint_cs_keeps_partial_results(tmp_path):
    """Ctrl-C while the third decoder trains (budget 300 s, so it is still training when the signal
    arrives; the 4 s digits default let a slow poll miss it): exit 130, the two finished records kept in
    results.partial.json, no results.json (never a half-written file), the loss said."""
    import signal

    pytest.importorskip("torch")
    outdir = tmp_path / "res"
    proc = _start(["cs", "--methods", "pinv,linear,adam", "--ratios", "10", "--train-samples", "300",
                   "--test-samples", "10", "--option", "adam.epochs=100000", "--budget", "300", "--no-progress",
                   "--out", str(outdir)],
                  tmp_path)
    partial = outdir / "results.partial.json"

    def two_done():
        try:
            return len(json.loads(partial.read_text())) == 2
        except (OSError, ValueError):
            return False

    assert _wait_for(two_done, proc), proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    # 130, or killed by SIGINT (-2) when torch has seen the KeyboardInterrupt: a shell shows 130 for both
    assert proc.returncode in (130, -signal.SIGINT), stderr
    assert "Traceback" not in stderr
    assert "2 of 3 (ratio, method) records finished" in stderr, stderr
    assert [r["method"] for r in json.loads(partial.read_text())] == ["pinv", "linear"]
    assert not (outdir / "results.json").exists()


def test_torch_state_dict_is_data_not_code(tmp_path):
    """``torch.load(weights_only=True)``: a pickled object is refused (one line), never run;
    a real state dict round-trips."""
    torch = pytest.importorskip("torch")
    from unrectify.torch_io import load_state_dict, to_torch

    seq = to_torch(W121)
    good = tmp_path / "good.pt"
    torch.save(seq.state_dict(), good)
    got = load_state_dict(str(good))
    assert all(np.array_equal(a, b) and np.array_equal(c, d) for (a, c), (b, d) in zip(got, W121))
    evil = tmp_path / "evil.pt"
    torch.save({"0.weight": torch.ones(2, 1), "payload": _Payload(tmp_path / "pwned")}, evil)
    with pytest.raises(InputError, match="cannot load"):
        load_state_dict(str(evil))
    assert not (tmp_path / "pwned").exists()
    torch.save({"0.weight": torch.full((2, 1), float("nan")), "0.bias": torch.zeros(2)}, tmp_path / "nan.pt")
    with pytest.raises(InputError, match="NaN"):
        load_state_dict(str(tmp_path / "nan.pt"))
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match="cannot load"):
        load_state_dict(str(tmp_path / "text.pt"))


class _Payload:
    """An object whose unpickling would create a file: weights_only must refuse to build it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _torch_nan_model():
    torch = pytest.importorskip("torch")
    from unrectify import torch_io

    m = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
    return torch_io.from_torch(m)


def _fit_with_inf_target():
    from unrectify.cs.decoders import get_decoder

    rng = np.random.default_rng(0)
    Phi = rng.normal(size=(4, 16))
    S = rng.uniform(size=(20, 16))
    Y = S @ Phi.T
    S[0, 0] = np.inf
    return get_decoder("linear", Phi).fit(Y, S)


def _certify_tiny(point):
    from unrectify import build_training_model, certify

    return certify(build_training_model(TrainingProblem(X6, Y6, (1, 2, 1), weight_bound=1.0)), point)


def _measure(value, phi_value=1.0):
    from unrectify.cs import measure

    S = np.full((3, 4), 0.5)
    S[1, 2] = value
    return measure(S, np.full((2, 4), phi_value))


def _obbt(net, **kw):
    from unrectify.fixed import FixedNetwork, tighten_bounds

    if net == "net":
        rng = np.random.default_rng(0)
        net = FixedNetwork([(rng.normal(size=(3, 2)), rng.normal(size=3)), (rng.normal(size=(1, 3)), np.zeros(1))],
                           np.zeros(2), np.ones(2))
    return tighten_bounds(net, **kw)


MORE_API_CASES = [
    ("solve-not-a-problem", lambda: __import__("unrectify").solve("x"), InputError, ("TrainingProblem", "str")),
    ("solve-symmetry-int", _solve(symmetry_breaking=3), InputError, ("symmetry breaking", "3")),
    ("instance-seed-fraction", lambda: random_instance(4, seed=1.5), InputError, ("seed",)),
    ("instance-noise-negative", lambda: random_instance(4, noise=-1), InputError, ("noise",)),
    ("problem-bound-bool", lambda: TrainingProblem(X6, Y6, (1, 2, 1), weight_bound=True), InputError, ("weight bound",)),
    ("problem-bound-huge", lambda: TrainingProblem(X6, Y6, (1, 2, 1), weight_bound=1e300), InputError, ("1e+100",)),
    ("torch-nan-weights", _torch_nan_model, InputError, ("NaN",)),
    ("cs-fit-inf-target", _fit_with_inf_target, ValueError, ("S_train", "NaN or infinite")),
    ("certify-none", lambda: __import__("unrectify").certify(None, None), InputError, ("TrainingModel", "NoneType")),
    ("certify-short-point", lambda: _certify_tiny(np.zeros(3)), InputError, ("variables", "(3,)")),
    ("certify-text-point", lambda: _certify_tiny("abc"), InputError, ("point",)),
    ("measure-nan-image", lambda: _measure(np.nan), ValueError, ("S", "NaN")),
    ("measure-inf-operator", lambda: _measure(0.5, phi_value=np.inf), ValueError, ("Phi", "NaN or inf")),
    ("obbt-not-a-network", lambda: _obbt(None), InputError, ("FixedNetwork", "NoneType")),
    ("obbt-max-nonzeros-zero", lambda: _obbt("net", max_nonzeros=0), InputError, ("max_nonzeros", "0")),
    ("obbt-max-nonzeros-fraction", lambda: _obbt("net", max_nonzeros=2.5), InputError, ("max_nonzeros", "2.5")),
    ("obbt-time-limit-negative", lambda: _obbt("net", time_limit=-1), InputError, ("time_limit", "-1")),
    ("obbt-time-limit-text", lambda: _obbt("net", time_limit="5"), InputError, ("time_limit", "'5'")),
]


@pytest.mark.parametrize("case_id,call,exc,words", MORE_API_CASES, ids=[c[0] for c in MORE_API_CASES])
def test_more_api_refusals(case_id, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and all(w in msg for w in words), msg
    _record("api:" + case_id)
