"""Sweeps on Dask: spec validation, grid expansion, the results file, a local-cluster run, and
interrupt/crash-then-resume (issue 6, items 4 and 5)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from argparse import Namespace
from pathlib import Path

import pytest

from unrectify.formulations import InputError, UnknownNameError
from unrectify import sweep as S
from unrectify.sweep import SweepError
from unrectify.sweep import cluster as sweep_cluster
from unrectify.sweep import task as sweep_task

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="dask[distributed] not installed")

ROOT = Path(__file__).resolve().parents[1]


def write_spec(tmp_path, text: str, name: str = "spec.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# ---------------------------------------------------------------------------------------------
# spec parsing
# ---------------------------------------------------------------------------------------------
BAD_SPECS = [
    ('encodings = ["split"]\nseed = [1]\n', "unknown sweep key 'seed'"),
    ('seeds = [1]\n', "'encodings' is missing"),
    ('encodings = ["split", "magic"]\n', "'magic'"),
    ('encodings = ["split"]\nbackends = ["nope"]\n', "'nope'"),
    ('encodings = ["split"]\ndomains = ["continuous"]\n', "'continuous'"),
    ('encodings = ["split"]\nwidths = ["1,x,1"]\n', "'1,x,1'"),
    ('encodings = ["split"]\nwidths = ["1,2"]\n', "hidden layer"),
    ('encodings = ["split"]\nwidths = [[1, 0, 1]]\n', "positive"),
    ('encodings = ["split"]\nwidths = [3]\n', "widths"),
    ('encodings = ["split"]\nseeds = ["a"]\n', "'seeds'"),
    ('encodings = ["split"]\nseeds = [true]\n', "'seeds'"),
    ('encodings = ["split"]\nseeds = []\n', "empty"),
    ('encodings = ["split"]\nsamples = [0]\n', "'samples'"),
    ('encodings = ["split"]\nsamples = [2.5]\n', "'samples'"),
    ('encodings = ["split"]\nweight_bound = -1\n', "'weight_bound'"),
    ('encodings = ["split"]\nweight_bound = 0\n', "'weight_bound'"),
    ('encodings = ["split"]\nweight_bound = nan\n', "'weight_bound'"),
    ('encodings = ["split"]\ntime_limit = 0\n', "'time_limit'"),
    ('encodings = ["split"]\ntime_limit = inf\n', "'time_limit'"),
    ('encodings = ["split"]\ntime_limit = "fast"\n', "'time_limit'"),
    ('encodings = ["split"]\nloss = "l2"\n', "'l2'"),
    ('encodings = ["split"]\nsymmetry_breaking = "weird"\n', "'weird'"),
    ('encodings = ["complementarity"]\ndomains = ["binary"]\n', "grid is empty"),
    ('encodings = ["split"]\nname = 3\n', "'name'"),
    ('encodings = "split"\nseeds = [1, 2\n', "cannot parse"),
    ('encodings = ["split"]\n[sweep]\nseeds = [1]\n', "unknown sweep key 'sweep'"),
    ('encodings = ["split"]\nbackends = ["highs"]\n', "backend 'highs' handles only"),
    ('encodings = ["bigm"]\nbackends = ["alm"]\n', "grid is empty"),
    ('encodings = ["split"]\nseeds = [-1]\n', "'seeds'"),
    ('encodings = ["split"]\nseeds = {a = 1}\n', "'seeds'"),
    ('encodings = ["split"]\ntime_limit = 1e7\n', "'time_limit'"),
    ('encodings = ["split"]\ntotal_time_limit = 0\n', "'total_time_limit'"),
    ('encodings = ["split"]\ntotal_time_limit = "1h"\n', "'total_time_limit'"),
    ('encodings = ["split"]\nname = ""\n', "'name'"),
    ('encodings = ["split"]\nname = "a\\nb"\n', "'name'"),
    ('encodings = ["split"]\nwidths = ["1,20000000,1"]\n', "'widths'"),
    ('encodings = ["split"]\nseeds = [%s]\n' % ", ".join(map(str, range(400))) + 'samples = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128]\n', "more than"),
    ('encodings = ["split"]\nweight_bound = 1e6\nwidths = ["1,2,2,1"]\n', "'weight_bound'"),
]


@pytest.mark.parametrize("text,words", BAD_SPECS, ids=[w for _, w in BAD_SPECS])
def test_bad_spec_one_line_error(tmp_path, text, words):
    path = write_spec(tmp_path, text)
    with pytest.raises(InputError) as info:
        S.load_sweep_spec(path)
    msg = str(info.value)
    assert "\n" not in msg and words.lower() in msg.lower(), msg


def test_unknown_names_are_unknown_name_errors(tmp_path):
    for text in ('encodings = ["magic"]\n', 'encodings = ["split"]\nbackends = ["nope"]\n'):
        with pytest.raises(UnknownNameError):
            S.load_sweep_spec(write_spec(tmp_path, text))


def test_missing_and_binary_spec_files(tmp_path):
    with pytest.raises(SweepError, match="not found"):
        S.load_sweep_spec(tmp_path / "nope.toml")
    with pytest.raises(SweepError, match="directory"):
        S.load_sweep_spec(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SweepError, match="cannot"):
        S.load_sweep_spec(bad)


def test_scalars_become_one_value_grids(tmp_path):
    spec = S.load_sweep_spec(write_spec(tmp_path, """
        encodings = "split"
        seeds = 3
        widths = [1, 3, 1]
        loss = "mae"
        weight_bound = 2
        symmetry_breaking = "all"
        time_limit = 5
    """))
    assert spec.encodings == ["split"] and spec.seeds == [3] and spec.widths == [(1, 3, 1)]
    assert spec.loss == ["mae"] and spec.weight_bound == [2.0] and spec.time_limit == 5.0
    assert spec.symmetry_breaking == ["permutation,scaling"] and spec.name == "spec"


# ---------------------------------------------------------------------------------------------
# expansion and keys
# ---------------------------------------------------------------------------------------------
def test_expansion_count_and_unique_keys(tmp_path):
    spec = S.load_sweep_spec(write_spec(tmp_path, """
        seeds = [0, 1, 2]
        samples = [4, 6]
        widths = ["1,2,1", [2, 2, 1]]
        encodings = ["split", "complementarity"]
        domains = ["binary", "interval"]
        backends = ["auto", "scip"]
        symmetry_breaking = ["all", "none"]
    """))
    tasks = S.expand(spec)
    # forms: split x {binary, interval} + complementarity x {interval} = 3
    assert len(tasks) == 3 * 2 * 2 * 3 * 2 * 2
    assert len({t.key for t in tasks}) == len(tasks)
    assert spec.skipped_forms() == [("complementarity", "binary")]


def test_alm_takes_the_relaxed_split_form_only():
    pytest.importorskip("unrectify.backends.alm")
    spec = S.spec_from_dict({"encodings": ["split", "bigm"], "backends": ["auto", "alm"]})
    tasks = S.expand(spec)
    assert len(tasks) == 4 + 1
    assert {(t.encoding, t.domain) for t in tasks if t.backend == "alm"} == {("split", "interval")}
    assert any("alm for bigm/binary" in s for s in spec.skipped())


def test_duplicate_grid_values_collapse(tmp_path):
    spec = S.load_sweep_spec(write_spec(tmp_path, """
        seeds = [0, 0, 1]
        encodings = ["split", "split"]
        domains = ["interval"]
        symmetry_breaking = ["all", "permutation,scaling"]
    """))
    assert len(S.expand(spec)) == 2


def test_task_key_is_stable():
    t = S.Task(seed=0, samples=3, widths=(1, 2, 1), encoding="split", domain="interval", backend="auto",
               loss="mse", weight_bound=2.0, symmetry_breaking="permutation,scaling", time_limit=10.0)
    # a change of this value makes every existing results file look unfinished: bump TASK_KIND
    # deliberately instead
    assert t.key == "546598b0124115b9"
    assert S.Task(**{**t.params(), "widths": (1, 2, 1)}).key == t.key
    assert S.Task(**{**t.params(), "widths": (1, 2, 1), "seed": 1}).key != t.key


# ---------------------------------------------------------------------------------------------
# results file
# ---------------------------------------------------------------------------------------------
def record(key: str, status: str = "optimal", certified: bool = True, seconds: float = 1.0, task=None) -> dict:
    return {"format": S.RECORD_FORMAT, "key": key, "task": task or {},
            "result": {"status": status, "certified_optimal": certified, "seconds": seconds}}


def test_truncated_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / "r.jsonl"
    good = json.dumps(record("a")) + "\n" + json.dumps(record("b")) + "\n"
    path.write_text(good + '{"format": "unrectify-sweep/1", "key": "c", "res')
    assert set(S.load_results(path)) == {"a", "b"}
    with S.ResultsFile(path) as rf:
        assert set(rf.records) == {"a", "b"} and rf.repaired > 0
        assert path.read_text() == good          # the partial line is cut off before appending
        rf.append(record("c"))
    lines = path.read_text().splitlines()
    assert [json.loads(l)["key"] for l in lines] == ["a", "b", "c"]


def test_append_writes_a_key_once(tmp_path):
    path = tmp_path / "r.jsonl"
    with S.ResultsFile(path) as rf:
        assert rf.append(record("a", "optimal")) is True
        assert rf.append(record("a", "error")) is False     # a second result of a task is dropped
    assert [json.loads(l)["result"]["status"] for l in path.read_text().splitlines()] == ["optimal"]
    with S.ResultsFile(path) as rf:                          # also across runs
        assert rf.append(record("a", "error")) is False and rf.append(record("b")) is True
    assert [json.loads(l)["key"] for l in path.read_text().splitlines()] == ["a", "b"]


def test_total_time_limit_and_large_bound_accepted(tmp_path):
    spec = S.load_sweep_spec(write_spec(tmp_path, 'encodings = ["split"]\ntotal_time_limit = 30\n'
                                                  'weight_bound = 1e6\n'))
    assert spec.total_time_limit == 30.0 and spec.weight_bound == [1e6]
    assert S.load_sweep_spec(write_spec(tmp_path, 'encodings = ["split"]\n')).total_time_limit is None


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record("a")) + "\nnot json\n" + json.dumps(record("b")) + "\n")
    with pytest.raises(SweepError, match="line 2"):
        S.load_results(path)
    with pytest.raises(SweepError, match="line 2"):
        S.ResultsFile(path)


def test_first_record_of_a_key_wins_and_file_is_locked(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record("a", "optimal")) + "\n" + json.dumps(record("a", "error")) + "\n")
    assert S.load_results(path)["a"]["result"]["status"] == "optimal"
    with S.ResultsFile(path), pytest.raises(SweepError, match="in use"):
        S.ResultsFile(path)
    with S.ResultsFile(path):     # released on close
        pass


def test_results_path_errors(tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        S.ResultsFile(tmp_path / "no" / "r.jsonl")
    with pytest.raises(SweepError, match="directory"):
        S.ResultsFile(tmp_path)


def test_summary_table_counts():
    tasks = [S.Task(s, 4, (1, 2, 1), "split", d, "auto", "mse", 2.0, "none", 5.0)
             for s in range(3) for d in ("binary", "interval")]
    recs = {tasks[0].key: record(tasks[0].key, "optimal", True, 1.0),
            tasks[2].key: record(tasks[2].key, "time_limit", False, 5.0),
            tasks[4].key: record(tasks[4].key, "optimal", True, 3.0),
            tasks[1].key: record(tasks[1].key, "optimal", True, 2.0)}
    rows = {(r["encoding"], r["domain"]): r for r in S.summarize(tasks, recs)}
    b = rows[("split", "binary")]
    assert b["tasks"] == 3 and b["done"] == 3 and b["status"] == {"optimal": 2, "time_limit": 1}
    assert b["certified"] == 2 and b["median_seconds"] == 3.0
    i = rows[("split", "interval")]
    assert i["done"] == 1 and i["median_seconds"] == 2.0
    summary = S.SweepSummary("r.jsonl", 6, 4, 0, 4, 0, 1.0, S.summarize(tasks, recs))
    table = summary.table()
    assert "time_limit" in table and "2/3 (67%)" in table and "4/6 tasks done (incomplete)" in table


def test_cmd_sweep_with_everything_done_starts_no_cluster(tmp_path, capsys, monkeypatch):
    spec_path = write_spec(tmp_path, 'encodings = ["split"]\nseeds = [0, 1]\ndomains = ["interval"]\n')
    results = tmp_path / "r.jsonl"
    tasks = S.expand(S.load_sweep_spec(spec_path))
    results.write_text("".join(json.dumps(record(t.key, task=t.params())) + "\n" for t in tasks))
    monkeypatch.setattr(sweep_cluster, "connect", lambda *a, **k: pytest.fail("no cluster needed"))
    rc = S.cmd_sweep(Namespace(sweep=spec_path, scheduler=None, results=str(results), workers=None,
                               no_progress=True))
    out = capsys.readouterr().out
    assert rc == 0 and "2/2 tasks done (complete)" in out and "0 ran, 2 already" in out


def test_cmd_sweep_option_errors(tmp_path):
    spec_path = write_spec(tmp_path, 'encodings = ["split"]\n')
    with pytest.raises(SweepError, match="--workers"):
        S.cmd_sweep(Namespace(sweep=spec_path, scheduler=None, results=None, workers=0, no_progress=True))
    with pytest.raises(SweepError, match="--workers"):
        S.cmd_sweep(Namespace(sweep=spec_path, scheduler="tcp://127.0.0.1:1", results=None, workers=2,
                              no_progress=True))
    with pytest.raises(SweepError, match="number of workers"):
        S.run_sweep(S.load_sweep_spec(spec_path), tmp_path / "r.jsonl", n_workers=0)


@needs_dask
def test_unreachable_scheduler_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_cluster, "CONNECT_TIMEOUT", "1s")
    spec_path = write_spec(tmp_path, 'encodings = ["split"]\ndomains = ["interval"]\n')
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match="cannot connect") as info:
        S.run_sweep(spec_path, tmp_path / "r.jsonl", scheduler="tcp://127.0.0.1:9", progress=False)
    assert "\n" not in str(info.value) and time.perf_counter() - t0 < 30


def test_module_main_bad_input_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "unrectify", "verify", "--sweep", str(tmp_path / "nope.toml")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert [l for l in res.stderr.splitlines() if l.strip()] == [f"unrectify: error: --sweep: file not found: "
                                                                  f"{tmp_path / 'nope.toml'}"]


# ---------------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------------
def test_run_task_inline_and_error_record():
    t = S.Task(0, 4, (1, 2, 1), "split", "interval", "auto", "mse", 2.0, "permutation,scaling", 10.0)
    rec = S.run_task(t.params())
    assert rec["key"] == t.key and rec["task"] == t.params()
    assert rec["result"]["status"] == "optimal" and rec["result"]["certified_optimal"] is True
    json.dumps(rec, allow_nan=False)
    # a deterministic failure (nonconvex model on an LP/MILP backend) is a recorded error
    bad = S.Task(0, 3, (1, 2, 1), "split", "interval", "highs", "mse", 2.0, "none", 10.0)
    rec = S.run_task(bad.params())
    assert rec["result"]["status"] == "error" and rec["result"]["error_type"] == "ModelClassError"


# ---------------------------------------------------------------------------------------------
# local Dask cluster
# ---------------------------------------------------------------------------------------------
SMALL = """
    seeds = [0, 1, 2]
    samples = [3]
    widths = ["1,2,1"]
    encodings = ["split", "bigm"]
    domains = ["interval"]
    time_limit = 20
"""


@needs_dask
def test_local_cluster_small_sweep_and_rerun(tmp_path):
    """6 tiny solves on 2 worker processes; the solve guard (a forked child) works inside the
    workers; a rerun runs nothing."""
    spec = S.load_sweep_spec(write_spec(tmp_path, SMALL))
    results = tmp_path / "r.jsonl"
    summary = S.run_sweep(spec, results, n_workers=2, progress=False)
    assert summary.complete and summary.n_ran == 6 and summary.n_failed == 0 and summary.workers == 2
    recs = [json.loads(l) for l in results.read_text().splitlines()]
    assert sorted(r["key"] for r in recs) == sorted(t.key for t in S.expand(spec))
    # every solver finished at its optimum; "optimal" only where the certificate agrees (a bigm
    # relaxation whose point is no ReLU network reads "uncertified": issue 14's status gate)
    assert all(r["result"]["solver_status"] == "optimal" for r in recs), [r["result"]["message"] for r in recs]
    assert all(r["result"]["status"] == ("optimal" if r["result"]["certified"] else "uncertified")
               for r in recs), [r["result"]["message"] for r in recs]
    assert {r["worker"]["pid"] for r in recs} - {os.getpid()}            # ran in worker processes
    assert all(r["result"]["certified_optimal"] for r in recs if r["task"]["encoding"] == "split")
    again = S.run_sweep(spec, results, n_workers=2, progress=False)
    assert again.n_ran == 0 and again.n_skipped == 6 and again.complete
    assert len(results.read_text().splitlines()) == 6


@needs_dask
def test_guard_time_limit_inside_workers(tmp_path):
    """A solve that runs into its time limit inside a (non-daemonic) worker returns status
    time_limit within the guard's grace, not an error."""
    spec = S.load_sweep_spec(write_spec(tmp_path, """
        seeds = [0]
        samples = [10]
        widths = ["1,3,1"]
        encodings = ["split"]
        domains = ["binary"]
        symmetry_breaking = "none"
        time_limit = 1
    """))
    results = tmp_path / "r.jsonl"
    summary = S.run_sweep(spec, results, n_workers=1, progress=False)
    rec = json.loads(results.read_text())
    assert summary.complete and rec["result"]["status"] == "time_limit", rec["result"]
    assert rec["result"]["seconds"] < 1 + grace(1) + 2


@needs_dask
def test_failed_task_is_not_written_and_reruns(tmp_path, monkeypatch):
    """A task that raises on a worker (not a deterministic solver error) is reported as
    failed, not written, and runs on the next resume.  Uses an existing (in-process) cluster
    through ``scheduler=``, so the patched task function is the one the worker calls."""
    from dask.distributed import LocalCluster

    spec = S.load_sweep_spec(write_spec(tmp_path, """
        seeds = [0, 1, 2]
        samples = [3]
        encodings = ["bigm"]
        domains = ["interval"]
        time_limit = 20
    """))
    bad = S.expand(spec)[1].key
    real = S.run_task

    def flaky(params):
        if S.Task(**{**params, "widths": tuple(params["widths"])}).key == bad:
            raise RuntimeError("worker trouble")
        return real(params)

    results = tmp_path / "r.jsonl"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setattr(sweep_task, "run_task", flaky)
        first = S.run_sweep(spec, results, scheduler=cluster.scheduler_address, progress=False)
        assert first.n_failed == 1 and first.n_ran == 2 and not first.complete
        assert "RuntimeError: worker trouble" in first.failures[0] and "failed" in first.table()
        assert bad not in S.load_results(results)
        monkeypatch.setattr(sweep_task, "run_task", real)
        second = S.run_sweep(spec, results, scheduler=cluster.scheduler_address, progress=False)
    assert second.complete and second.n_ran == 1 and second.n_skipped == 2


def grace(limit):
    from unrectify.backends.base import grace_seconds
    return grace_seconds(limit)


# ---------------------------------------------------------------------------------------------
# interrupt / crash, then resume
# ---------------------------------------------------------------------------------------------
def start_sweep(spec_path: str, results: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "unrectify", "verify", "--sweep", spec_path, "--results", str(results), "--workers", str(workers),
         "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)   # its own process group: SIGINT to the group is a terminal Ctrl-C


def wait_for_lines(results: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if results.exists():
            k = results.read_bytes().count(b"\n")
            if k >= n:
                return k
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"sweep ended early (rc {proc.returncode}): {out[-2000:]} {err[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {n} result lines after {timeout} s")


def session_alive(sid: int) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getsid(int(p.name)) == sid and (p / "stat").read_text().split()[2] != "Z":
                    pids.append(int(p.name))
            except (OSError, IndexError):
                pass
    return pids


def kill_and_check(proc: subprocess.Popen, results: Path, how: str) -> list[dict]:
    """Interrupt (SIGINT to the process group, as Ctrl-C) or crash (SIGKILL of the client only)
    the sweep; the results file must hold whole, unique records."""
    sid = proc.pid
    if how == "SIGINT":
        os.killpg(sid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (out, err)
        assert "interrupted" in out and "Traceback" not in err, (out, err)
    else:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        # orphaned workers notice their nanny is gone and exit; solver children end at their
        # time limit at the latest
        t0 = time.time()
        while session_alive(sid) and time.time() - t0 < 60:
            time.sleep(0.2)
        left = session_alive(sid)
        if left:
            os.killpg(sid, signal.SIGKILL)
        assert not left, f"processes left after SIGKILL of the sweep: {left}"
    data = results.read_bytes()
    assert data.endswith(b"\n")
    recs = [json.loads(l) for l in data.splitlines()]
    keys = [r["key"] for r in recs]
    assert len(keys) == len(set(keys))
    return recs


def check_complete(spec, results: Path, before: list[dict]) -> None:
    lines = results.read_text().splitlines()
    recs = [json.loads(l) for l in lines]
    keys = [r["key"] for r in recs]
    assert len(keys) == len(set(keys)), "a task ran twice"
    assert sorted(keys) == sorted(t.key for t in S.expand(spec))
    assert recs[:len(before)] == before          # finished results are kept as they were
    assert all(r["result"]["status"] != "error" for r in recs), [r["result"] for r in recs]


KILL_SPEC = """
    seeds = [0, 1, 2, 3]
    samples = [3]
    widths = ["1,2,1"]
    encodings = ["split", "bigm"]
    domains = ["interval"]
    time_limit = 20
"""


@needs_dask
def test_interrupt_then_crash_then_rerun_completes(tmp_path):
    """Ctrl-C (SIGINT to the process group) midway, rerun, SIGKILL of the client midway, rerun:
    the grid is complete, no task ran twice, finished results are kept."""
    spec_path = write_spec(tmp_path, KILL_SPEC)
    spec = S.load_sweep_spec(spec_path)
    n = len(S.expand(spec))
    results = tmp_path / "r.jsonl"
    done: list[dict] = []
    for how in ("SIGINT", "SIGKILL"):
        proc = start_sweep(spec_path, results, workers=2)
        try:
            wait_for_lines(results, len(done) + 2, proc)
            now = kill_and_check(proc, results, how)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert now[:len(done)] == done and len(done) + 2 <= len(now) < n, f"{how}: {len(now)} of {n} done"
        done = now
    summary = S.run_sweep(spec, results, n_workers=2, progress=False)
    assert summary.complete and summary.n_skipped == len(done) and summary.n_ran == n - len(done)
    check_complete(spec, results, done)


FIFTY = """
    # 5 seeds x 2 sample sizes x 5 forms = 50 small tasks
    seeds = [0, 1, 2, 3, 4]
    samples = [3, 4]
    widths = ["1,2,1"]
    encodings = ["split", "bigm", "complementarity"]
    domains = ["binary", "interval"]
    time_limit = 10
"""


@needs_dask
@pytest.mark.slow
def test_fifty_tasks_interrupt_crash_resume(tmp_path):
    """The acceptance check: 50 small tasks on a local cluster; Ctrl-C midway, SIGKILL later,
    and a rerun completes the grid without repeating a finished task."""
    spec_path = write_spec(tmp_path, FIFTY)
    spec = S.load_sweep_spec(spec_path)
    assert len(S.expand(spec)) == 50
    results = tmp_path / "r.jsonl"
    t0 = time.time()
    proc = start_sweep(spec_path, results, workers=2)
    try:
        wait_for_lines(results, 10, proc)
        first = kill_and_check(proc, results, "SIGINT")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    t1 = time.time()
    proc = start_sweep(spec_path, results, workers=2)
    try:
        wait_for_lines(results, len(first) + 10, proc)
        second = kill_and_check(proc, results, "SIGKILL")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert second[:len(first)] == first and len(second) < 50
    t2 = time.time()
    summary = S.run_sweep(spec, results, n_workers=2, progress=False)
    t3 = time.time()
    check_complete(spec, results, second)
    assert summary.complete and summary.n_skipped == len(second)
    print(f"\n50-task sweep: run 1 {t1 - t0:.1f}s -> {len(first)} done (SIGINT); run 2 {t2 - t1:.1f}s -> "
          f"{len(second)} done (SIGKILL); run 3 {t3 - t2:.1f}s ran {summary.n_ran}\n{summary.table()}")
