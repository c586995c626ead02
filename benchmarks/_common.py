"""Helpers shared by the ALM benchmarks: instance keys, a JSON cache of certified optima
(written atomically, so an interrupted run keeps what it had), and small timing utilities."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from unrectify.formulations.problem import TrainingProblem, random_instance


def instance_key(n_samples: int, widths: tuple[int, ...], seed: int, loss: str, bound: float | None) -> str:
    """Stable cache key of a :func:`random_instance` call."""
    w = "-".join(str(int(x)) for x in widths)
    return f"N{int(n_samples)}_w{w}_B{bound:g}_{loss}_s{int(seed)}" if bound is not None else \
        f"N{int(n_samples)}_w{w}_Bnone_{loss}_s{int(seed)}"


def make_instance(n_samples: int, widths: tuple[int, ...], seed: int, loss: str, bound: float) -> TrainingProblem:
    return random_instance(n_samples, widths, seed=seed, loss=loss, weight_bound=bound)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON through a temp file and ``os.replace`` (never a half-written file;
    numpy scalars and arrays converted, non-finite floats written as null): the writer of
    ``unrectify verify --json``, creating the folder first."""
    from unrectify.atomic import write_json_atomic as write

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write(str(path), obj)


def load_cache(path: str | os.PathLike[str] | None) -> dict[str, dict]:
    """Exact optima by instance key from a cache file or a previous ``--json`` output."""
    if path is None or not Path(path).exists():
        return {}
    with open(path) as f:
        data = json.load(f)
    return dict(data.get("exact", data) if isinstance(data, dict) else {})


def exact_optimum(problem: TrainingProblem, time_limit: float) -> dict:
    """Certified optimum of the relaxed split form by SCIP (``unrectify.solve``); the record
    keeps status, objective, bound, forward-pass loss and seconds.

    The limit is SCIP *CPU* seconds (``timing/clocktype = 1``; no wall-clock guard), so that
    whether an instance certifies does not depend on how loaded the shared machine is.
    Symmetry breaking ``"all"`` (ordered hidden biases, scaling cut; optimum-preserving, see
    docs/theory.md) makes N = 10 instances certify in seconds instead of not at all."""
    import unrectify

    t0 = time.perf_counter()
    sol = unrectify.solve(problem, encoding="split", domain="interval", backend="scip", time_limit=time_limit,
                          symmetry_breaking="all", guard=False, scip_options={"timing/clocktype": 1})
    return {
        "status": sol.status, "objective": sol.objective, "bound": sol.bound, "forward_loss": sol.forward_loss,
        "seconds": time.perf_counter() - t0, "time_limit": time_limit, "clock": "cpu",
        "symmetry_breaking": "all",
    }


def ensure_exact(cache: dict[str, dict], cache_path: str | None, specs: list[tuple], time_limit: float,
                 log=print) -> dict[str, dict]:
    """Fill ``cache`` with SCIP optima for every ``(N, widths, seed, loss, B)`` in ``specs`` that is
    not cached as optimal or as a CPU-time-limited run with at least this limit (saving after
    each instance)."""
    for spec in specs:
        key = instance_key(*spec)
        old = cache.get(key)
        if old is not None and (old["status"] == "optimal" or
                                (old.get("clock") == "cpu" and old.get("time_limit", 0) >= time_limit)):
            continue
        rec = exact_optimum(make_instance(*spec), time_limit)
        cache[key] = rec
        log(f"exact {key}: {rec['status']} obj={rec['objective']} bound={rec['bound']} ({rec['seconds']:.1f}s)")
        if cache_path is not None:
            write_json_atomic(cache_path, {"exact": cache})
    return cache


def gemm_rate(dtype: str, n: int = 2048, reps: int = 3) -> float:
    """Best FLOP/s of an n x n x n numpy matmul (the same-process reference of the benchmarks)."""
    rng = np.random.default_rng(0)
    A = rng.random((n, n)).astype(dtype)
    B = rng.random((n, n)).astype(dtype)
    A @ B
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best
