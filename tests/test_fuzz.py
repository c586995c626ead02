"""Fuzzing of the problem constructor and the command line (hypothesis).

Contract: every input ends either in a clean error (an ``InputError``/``ValueError``-derived
exception with a one-line message; on the command line exit code 2, exactly one stderr line,
no traceback) or in a valid answer.  The CLI cases that pass validation run with
the ``solve`` called by ``unrectify.verify.verify`` replaced by a stub (verify still builds
every model and checks it against its backend, ``preflight``, but nothing is solved); a few tiny real solves are fuzzed separately.

Bugs found by this fuzzing were fixed; their reproducers stay at the end as regression tests
(the fuzzers still skip exactly those inputs, each exclusion naming its regression test).

Examples per test: ``UNRECTIFY_FUZZ_EXAMPLES`` (default: a fixed, derandomised set for CI;
set it, e.g. to 2000, for a longer random search).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unrectify.formulations import LOSSES, InputError, TrainingProblem
from unrectify import cli

_N = os.environ.get("UNRECTIFY_FUZZ_EXAMPLES")


def fuzz_settings(default: int):
    return settings(max_examples=int(_N) if _N else default, derandomize=not _N, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------
nasty_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, 1e-300, 5e-324, 1e20, 1e6, 2.0, -2.0, math.nan, math.inf, -math.inf]),
)


@st.composite
def float_arrays(draw, n: int | None = None):
    """Mostly (n,) or (n, k) arrays of ordinary numbers with the odd NaN/inf/huge value;
    sometimes any shape (0-3 dims, empty sides) of any floats."""
    if n is None or draw(st.integers(0, 5)) == 0:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        return draw(hnp.arrays(np.float64, shape, elements=nasty_floats))
    shape = (n,) if draw(st.booleans()) else (n, draw(st.integers(0, 3)))
    ordinary = st.floats(-1e3, 1e3, allow_nan=False)
    elements = st.one_of(ordinary, nasty_floats) if draw(st.integers(0, 3)) == 0 else ordinary
    return draw(hnp.arrays(np.float64, shape, elements=elements))


odd_values = st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 5), st.lists(st.text(max_size=2), max_size=3),
                       st.just(object()), st.just({"a": 1}))

widths_values = st.one_of(
    st.lists(st.integers(-2, 4), max_size=5),
    st.lists(st.integers(-2, 4), max_size=5).map(tuple),
    # floats and text; never inf (pinned: test_bug_infinite_width_is_input_error)
    st.lists(st.one_of(st.integers(0, 3), st.floats(allow_nan=True, allow_infinity=False), st.text(max_size=2)),
             max_size=4),
    st.text(max_size=6),
    st.none(),
)

weight_bounds = st.one_of(st.none(), nasty_floats, st.text(max_size=4), st.integers(-3, 10), st.just([1.0]))


def _kind(message: str) -> str:
    """The fixed part of an error message (for hypothesis statistics)."""
    import re
    return re.split(r"['\"(\d]", message.strip())[0][:40]


def one_line(exc: BaseException) -> bool:
    s = str(exc)
    return bool(s) and "\n" not in s


def check_problem(p: TrainingProblem) -> None:
    """Invariants of a constructed problem."""
    assert p.X.ndim == 2 and p.Y.ndim == 2 and p.X.dtype == float and p.Y.dtype == float
    assert p.X.size and p.Y.size and np.all(np.isfinite(p.X)) and np.all(np.isfinite(p.Y))
    assert p.X.shape[0] == p.Y.shape[0]
    assert isinstance(p.widths, tuple) and len(p.widths) >= 3
    assert all(isinstance(w, int) and w >= 1 for w in p.widths)
    assert p.widths[0] == p.X.shape[1] and p.widths[-1] == p.Y.shape[1]
    assert p.loss in LOSSES
    assert p.weight_bound is None or (isinstance(p.weight_bound, float) and math.isfinite(p.weight_bound)
                                      and p.weight_bound > 0)


# ---------------------------------------------------------------------------------------------
# the problem constructor
# ---------------------------------------------------------------------------------------------
@fuzz_settings(300)
@given(data=st.data())
def test_fuzz_training_problem(data):
    n = data.draw(st.integers(1, 4) if data.draw(st.integers(0, 5)) else st.just(0))
    X = data.draw(float_arrays(n) if data.draw(st.integers(0, 7)) else odd_values, label="X")
    Y = data.draw(float_arrays(n) if data.draw(st.integers(0, 7)) else odd_values, label="Y")
    if data.draw(st.booleans()) and isinstance(X, np.ndarray) and isinstance(Y, np.ndarray) and X.ndim and Y.ndim:
        # often give consistent widths, so the later checks (loss, bound) are reached
        n0 = X.shape[1] if X.ndim == 2 else 1
        nL = Y.shape[1] if Y.ndim == 2 else 1
        widths = (n0, data.draw(st.integers(-1, 3)), nL)
    else:
        widths = data.draw(widths_values, label="widths")
    loss = data.draw(st.sampled_from(["mse", "mae"]) if data.draw(st.integers(0, 5)) else
                     st.one_of(st.sampled_from(["MSE", "", "l2"]), st.text(max_size=3)), label="loss")
    B = data.draw(st.sampled_from([2.0, 1, None]) if data.draw(st.integers(0, 3)) else weight_bounds,
                  label="weight_bound")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = TrainingProblem(X, Y, widths, loss=loss, weight_bound=B)
    except InputError as exc:          # UnknownNameError is an InputError too
        assert isinstance(exc, ValueError) and one_line(exc), repr(exc)
        event(f"InputError: {_kind(str(exc))}")
        return
    event("constructed")
    check_problem(p)
    # a constructed problem has a finite forward pass at zero weights (huge targets overflow the
    # loss: pinned, test_bug_huge_data_accepted)
    zeros = [(np.zeros((p.widths[l], p.widths[l - 1])), np.zeros(p.widths[l])) for l in range(1, len(p.widths))]
    if np.abs(p.Y).max() < 1e150:
        assert math.isfinite(p.forward_loss(zeros))


# ---------------------------------------------------------------------------------------------
# the command line (verify stubbed: models are built and preflighted, nothing is solved)
# ---------------------------------------------------------------------------------------------
def stub_solve(calls: list):
    """Stands in for ``solve`` inside ``unrectify.verify``: records the call, solves nothing
    (``verify`` still validates names, builds every model and preflights it)."""
    from unrectify.solution import Solution

    def fake(problem, encoding="split", domain="interval", backend="auto", time_limit=60.0, symmetry_breaking=False,
             **kw):
        calls.append((problem, encoding, domain, backend, time_limit, symmetry_breaking))
        return Solution(status="time_limit", objective=None, bound=None, weights=None, activations=None, seconds=0.0,
                        backend=backend, solver="stub", encoding=encoding, domain=domain, certificate=None)

    return fake


@contextlib.contextmanager
def patched_verify(calls: list):
    mod = sys.modules["unrectify.verify"]
    old = mod.solve
    mod.solve = stub_solve(calls)
    try:
        yield
    finally:
        mod.solve = old


def run_cli(argv: list[str]) -> tuple[int, str, str, list]:
    calls: list = []
    out, err = io.StringIO(), io.StringIO()
    with patched_verify(calls), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rc = cli.main(argv)
        except SystemExit as exc:      # argparse errors
            rc = exc.code
    return rc, out.getvalue(), err.getvalue(), calls


def assert_cli_contract(argv, rc, out, err, calls):
    event(f"exit {rc}" + (f": {_kind(err.split(':', 2)[2])}" if rc == 2 and err.count(":") >= 2 else ""))
    if rc == 0:
        assert calls, (argv, out, err)
        assert "instance:" in out
        return
    assert rc == 2, (argv, rc, err)
    lines = [l for l in err.split("\n") if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, (argv, err)
    assert not calls


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@st.composite
def data_files(draw):
    """Contents of a --data file: garbage bytes, or .npz archives of odd arrays."""
    kind = draw(st.sampled_from(["bytes", "npz", "npz", "npz", "names", "strings", "objects", "zip"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    n = draw(st.integers(0, 5))
    if kind == "npz":
        return npz_bytes(X=draw(float_arrays(n)), Y=draw(float_arrays(n)))
    if kind == "names":
        return npz_bytes(A=np.ones((3, 1)), Y=np.ones(3))
    if kind == "strings":
        return npz_bytes(X=np.array(draw(st.lists(st.text(max_size=3), min_size=1, max_size=3))), Y=np.ones(1))
    if kind == "objects":
        buf = io.BytesIO()
        np.savez(buf, X=np.array([{"a": 1}, None], dtype=object), Y=np.ones(2))
        return buf.getvalue()
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("X.npy", draw(st.binary(max_size=40)))
        z.writestr("Y.npy", b"\x93NUMPY garbage")
    return buf.getvalue()


def mostly(valid: list[str], other):
    """Valid values 3 times in 4, else anything from ``other``."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid), other)


number_text = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "1e300", "1e400", "-0", "nan", "1e-300", "3.5", "0x10", "", " 2", "1_000",
                     "10000"]),
    st.text(max_size=5),
)
widths_text = st.one_of(
    st.sampled_from(["1,2,1", "1,2", "1", "", ",", "1,,1", "1,2,1,", "0,2,1", "-1,2,1", "1,2.5,1", "1, 2 ,1",
                     "2,3,1", "1,3,3,1", "1e3,2,1", "a,b"]),
    st.lists(st.integers(-1, 4), min_size=0, max_size=5).map(lambda w: ",".join(map(str, w))),
    st.text(max_size=6),
)
names_text = st.one_of(st.sampled_from(["split", "split,bigm", "sign", "complementarity", "magic", "split,magic",
                                        "SPLIT", " split "]), st.text(max_size=6))
backend_text = st.one_of(st.sampled_from(["auto", "scip", "gurobi", "highs", "cvxpy", "alm", "nope", ""]),
                         st.text(max_size=5))
sym_text = st.one_of(st.sampled_from(["all", "none", "permutation", "scaling", "permutation,scaling", "weird", ""]),
                     st.text(max_size=5))


def has_encoding_name(text: str) -> bool:
    return any(t.strip() for t in text.split(","))


@fuzz_settings(200)
@given(data=st.data())
def test_fuzz_cli_verify(data):
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["verify"]
        if data.draw(st.booleans(), label="use --data"):
            path = os.path.join(tmp, data.draw(st.sampled_from(["d.npz", "d.txt", "dir"])))
            if path.endswith("dir"):
                os.mkdir(path)
            else:
                contents = data.draw(data_files(), label="file")
                assume(contents != b"")   # an empty file is pinned: test_bug_empty_data_file
                with open(path, "wb") as fh:
                    fh.write(contents)
            argv += ["--data", path if data.draw(st.integers(0, 9)) else path + ".missing"]
        elif data.draw(st.booleans()):
            samples = data.draw(mostly(["2", "3", "5"], number_text), label="samples")
            # a huge sample count is pinned: test_bug_huge_samples_is_one_line_error
            assume(not _big_int(samples))
            argv += ["--samples", samples]
        if data.draw(st.booleans()):
            argv += ["--seed", data.draw(mostly(["0", "1", "12345", str(10 ** 30)],
                                                st.one_of(number_text, st.integers(-5, 10 ** 30).map(str))), label="seed")]
        if data.draw(st.booleans()):
            argv += ["--widths", data.draw(mostly(["1,2,1", "1,3,1", "1,2,2,1"], widths_text), label="widths")]
        if data.draw(st.booleans()):
            argv += ["--loss", data.draw(mostly(["mse", "mae"], st.one_of(st.just("l1"), st.text(max_size=3))))]
        if data.draw(st.booleans()):
            argv += ["--weight-bound", data.draw(mostly(["1", "2", "0.5", "1e300"], number_text), label="B")]
        if data.draw(st.booleans()):
            enc = data.draw(mostly(["split", "split,bigm", "sign,complementarity"], names_text), label="encodings")
            assume(has_encoding_name(enc))  # no names at all is pinned: test_bug_empty_encodings_is_error
            argv += ["--encodings", enc]
        if data.draw(st.booleans()):
            argv += ["--backend", data.draw(mostly(["auto", "scip", "auto,alm"], backend_text), label="backend")]
        if data.draw(st.booleans()):
            tl = data.draw(mostly(["1", "30", "0.5"], number_text), label="time limit")
            assume(tl.strip().lower() not in ("nan", "1e400"))  # pinned: test_bug_nonfinite_time_limit_rejected
            argv += ["--time-limit", tl]
        if data.draw(st.booleans()):
            argv += ["--symmetry-breaking", data.draw(mostly(["all", "none", "permutation"], sym_text), label="symmetry")]
        if data.draw(st.booleans()):
            argv += ["--json", os.path.join(tmp, data.draw(st.sampled_from(["o.json", "no/o.json"])))]
        argv.append("--no-progress")
        # widths must stay small: the model has N x (sum of widths) variables
        assume(all(not _big_int(t) for t in argv if "," in t))
        rc, out, err, calls = run_cli(argv)
        assert_cli_contract(argv, rc, out, err, calls)


def _big_int(text: str) -> bool:
    for t in text.replace("_", "").split(","):
        try:
            if abs(float(t)) > 1e5:
                return True
        except ValueError:
            pass
    return False


@fuzz_settings(60)
@given(args=st.lists(st.one_of(st.text(max_size=8), st.sampled_from(
    ["verify", "cs", "--samples", "--widths", "--data", "--json", "--seed", "-h", "--encodings", "--weight-bound",
     "--time-limit", "--backend", "--symmetry-breaking", "--", "-"])), max_size=6))
def test_fuzz_cli_raw_argv(args):
    """Arbitrary argument vectors: exit 0/2 only, never a traceback (help output is exit 0)."""
    assume("-h" not in args and not any(a.startswith("--h") for a in args))
    assume(not args or args[0] != "cs")   # "cs" runs experiments; it has its own tests
    assume(not any("\n" in a for a in args))   # pinned: test_bug_newline_in_argument_two_stderr_lines
    assume(not any(_big_int(a) for a in args))
    if args and args[0] == "verify":
        assume(not any(a.strip().lower() in ("nan", "1e400", "inf") for a in args))
        i = args.index("--encodings") if "--encodings" in args else -1
        assume(i < 0 or i + 1 >= len(args) or has_encoding_name(args[i + 1]))
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):   # --json X writes X
        rc, out, err, calls = run_cli(list(args))
    if rc == 0:
        assert args and args[0] == "verify" and calls
    else:
        assert rc == 2, (args, rc, err)
        lines = [l for l in err.split("\n") if l.strip()]
        assert "Traceback" not in err and len(lines) <= 2, (args, err)   # argparse: usage line + error line
        assert lines and "error" in lines[-1]


# ---------------------------------------------------------------------------------------------
# sweep specs (unrectify.sweep)
# ---------------------------------------------------------------------------------------------
toml_scalars = st.one_of(st.integers(-3, 12), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                         st.text(max_size=6), st.sampled_from(["split", "bigm", "complementarity", "sign", "binary",
                                                               "interval", "auto", "scip", "alm", "highs", "mse",
                                                               "mae", "all", "none", "1,2,1", "2,2,1", "1,3,3,1"]))
toml_values = st.recursive(toml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=3), inner, max_size=2)),
                           max_leaves=6)
VALID_SPEC_VALUES = {
    "seeds": [[0], [0, 1, 2], 3, [5, 5]], "samples": [[3], [2, 4], 6], "widths": [["1,2,1"], "1,3,1", [1, 2, 1],
                                                                              [[2, 2, 1], "1,2,2,1"]],
    "encodings": [["split"], ["split", "bigm"], "complementarity", ["sign", "complementarity"]],
    "domains": [["binary", "interval"], "interval", ["binary"]], "backends": [["auto"], "scip", ["auto", "alm"],
                                                                              ["gurobi"], ["highs"]],
    "loss": ["mse", ["mse", "mae"]], "weight_bound": [2, 0.5, [1, 2.5], 1e300], "time_limit": [10, 0.5, 600],
    "symmetry_breaking": ["all", ["none", "permutation"], "permutation,scaling", True], "name": ["x"],
    "description": ["a sweep"],
}


@st.composite
def sweep_specs(draw):
    spec = {}
    for key, valid in VALID_SPEC_VALUES.items():
        if draw(st.booleans()):
            spec[key] = draw(st.sampled_from(valid)) if draw(st.integers(0, 9)) else draw(toml_values)
    if draw(st.integers(0, 9)) == 0:
        spec[draw(st.sampled_from(["seed", "width", "sweep", ""]))] = draw(toml_values)
    return spec


@fuzz_settings(300)
@given(spec=sweep_specs())
def test_fuzz_sweep_spec(spec):
    """A spec either loads (a non-empty grid of unique tasks within the size limit) or fails
    with a one-line InputError."""
    from unrectify import sweep as S

    try:
        loaded = S.spec_from_dict(spec)
    except InputError as exc:
        assert one_line(exc), repr(exc)
        event(f"InputError: {_kind(str(exc))}")
        return
    event("loaded")
    tasks = S.expand(loaded)
    assert tasks and len({t.key for t in tasks}) == len(tasks)
    assert all(t.samples * sum(t.widths) <= S.MAX_TASK_SIZE and t.time_limit > 0 for t in tasks)


# ---------------------------------------------------------------------------------------------
# tiny real solves
# ---------------------------------------------------------------------------------------------
@fuzz_settings(3)
@given(n=st.integers(3, 5), seed=st.integers(0, 10 ** 6), B=st.sampled_from([0.5, 1.0, 2.0, 10.0]),
       loss=st.sampled_from(["mse", "mae"]), form=st.sampled_from([("split", "interval"), ("split", "binary"),
                                                                   ("bigm", "binary")]))
def test_fuzz_tiny_solves_are_certified_or_say_why(n, seed, B, loss, form):
    """A tiny real solve: status from the fixed list; an "optimal" answer is feasible, its
    ReLU forward-pass loss equals its objective, and (exact encodings) it is a ReLU network."""
    import unrectify
    from unrectify.backends import STATUSES
    from unrectify.formulations import random_instance

    p = random_instance(n, (1, 2, 1), seed, loss, B)
    sol = unrectify.solve(p, form[0], form[1], time_limit=5, symmetry_breaking="all")
    assert sol.status in STATUSES
    if sol.status == "optimal":
        c = sol.certificate
        assert c is not None and c.max_violation <= 1e-6
        # loose absolute tolerance: see test_bug_zero_optimum_not_certified
        assert abs(c.forward_loss - sol.objective) <= 1e-6 * max(1.0, abs(sol.objective))
        assert c.relu_gap <= 1e-5


# ---------------------------------------------------------------------------------------------
# bugs found by the fuzzers, fixed; kept as regression tests
# ---------------------------------------------------------------------------------------------
def _ok_xy():
    return np.array([[0.0], [0.5], [1.0]]), np.array([0.0, 1.0, 0.0])


def test_bug_infinite_width_is_input_error():
    X, Y = _ok_xy()
    with pytest.raises(InputError):
        TrainingProblem(X, Y, (1, math.inf, 1))


@pytest.mark.parametrize("widths", [(1, 2.5, 1), (1, True, 1), "121"])
def test_bug_non_integer_widths_rejected(widths):
    X, Y = _ok_xy()
    with pytest.raises(InputError):
        TrainingProblem(X, Y, widths)


def test_bug_complex_data_rejected():
    X, Y = _ok_xy()
    with pytest.raises(InputError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TrainingProblem(X + 1j, Y, (1, 2, 1))


def test_bug_huge_data_accepted():
    X, Y = _ok_xy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = TrainingProblem(X, Y * 1e200, (1, 2, 1))
        except InputError:
            return
        zeros = [(np.zeros((2, 1)), np.zeros(2)), (np.zeros((1, 2)), np.zeros(1))]
        assert math.isfinite(p.forward_loss(zeros))


@pytest.mark.parametrize("B", [1e300, 1e10])
def test_bug_huge_weight_bound_rejected(B):
    from unrectify.formulations import random_instance
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = random_instance(3, (1, 2, 1), 0, "mse", B)
            bounds = p.bounds()
    except InputError:
        return
    assert all(np.all(np.abs(hi) < 1e9) for _, hi in bounds)


@pytest.mark.parametrize("tl", ["inf", "nan"])
def test_bug_nonfinite_time_limit_rejected(tl):
    rc, out, err, calls = run_cli(["verify", "--samples", "3", "--time-limit", tl, "--no-progress"])
    assert rc == 2 and "time-limit" in err and not calls


def test_bug_huge_samples_is_one_line_error():
    rc, out, err, calls = run_cli(["verify", "--samples", str(10 ** 12), "--no-progress"])
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_bug_empty_data_file(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    rc, out, err, calls = run_cli(["verify", "--data", str(tmp_path / "e.npz"), "--no-progress"])
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_bug_newline_in_argument_two_stderr_lines():
    rc, out, err, calls = run_cli(["verify", "x\ny"])
    assert rc == 2 and len([l for l in err.split("\n") if l.strip()]) == 1


def test_bug_empty_encodings_is_error():
    rc, out, err, calls = run_cli(["verify", "--samples", "3", "--encodings", ",", "--no-progress"])
    assert rc == 2


def test_bug_json_directory_checked_up_front(tmp_path):
    rc, out, err, calls = run_cli(["verify", "--samples", "3", "--encodings", "split", "--json", str(tmp_path),
                                   "--no-progress"])
    assert rc == 2 and not calls


@pytest.mark.slow
def test_bug_zero_optimum_not_certified():
    import unrectify
    from unrectify.formulations import random_instance
    sol = unrectify.solve(random_instance(3, (1, 2, 1), 0, "mae", 2.0), "bigm", "binary", time_limit=20,
                          symmetry_breaking="none")
    assert sol.status == "optimal" and sol.certified_optimal


@pytest.mark.slow
def test_bug_split_not_tight_verdict_at_large_bound():
    from unrectify.formulations import random_instance
    from unrectify import verify
    report = verify(random_instance(3, (1, 2, 1), 0, "mse", 1e6), ["split"], time_limit=30,
                    symmetry_breaking="all")
    assert report.verdicts[0].tight is not False
