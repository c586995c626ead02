"""The wall-clock guard of every backend solve (backends.base.GuardedSolve): what the solver
libraries print in the child stays out of the user's terminal, and a child that dies says why."""

from __future__ import annotations

import os

from unrectify.backends.base import GuardedSolve, RawResult


def _noisy_solve(model, time_limit):
    os.write(2, b"Cannot set feasibility tolerance to small value 1e-12 without GMP\n")
    os.write(1, b"a solver banner\n")
    return RawResult("optimal", None, 1.5, 1.5, "test solver", 0.0)


def _dying_solve(model, time_limit):
    os.write(2, b"munmap_chunk(): invalid pointer\n")
    os._exit(134)


def test_solver_prints_do_not_reach_the_terminal(capfd):
    res = GuardedSolve(_noisy_solve, None, 10.0, "test solver").result()
    assert res.status == "optimal" and res.objective == 1.5
    out, err = capfd.readouterr()
    assert "GMP" not in err and "banner" not in out


def test_a_dead_solver_process_is_an_error_quoting_its_last_words(capfd):
    res = GuardedSolve(_dying_solve, None, 10.0, "test solver").result()
    assert res.status == "error"
    assert res.message == "solver process died (exit code 134): munmap_chunk(): invalid pointer"
    assert "munmap" not in capfd.readouterr().err


def test_cancel_closes_the_log():
    g = GuardedSolve(_noisy_solve, None, 10.0, "test solver")
    g.cancel()
    assert g.log.closed and g.result().message == "cancelled"


def test_huge_time_limit_is_waited_out_in_chunks():
    """A time limit beyond what one poll can wait (1e30 s: 'no limit' to a user) once crashed
    the guard with an OverflowError; SCIP gets its own largest limit."""
    import pytest

    import unrectify

    pytest.importorskip("pyscipopt")
    p = unrectify.random_instance(3, (1, 2, 1), seed=0)
    for backend in ("scip", "scip-direct"):
        sol = unrectify.solve(p, "split", "binary", backend=backend, time_limit=1e30)
        assert sol.status == "optimal", (backend, sol.status, sol.message)
