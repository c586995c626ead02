"""ALM throughput: seconds per outer iteration, GEMM FLOP/s achieved, peak memory.

Each size runs in a fresh child process (so peak memory is its own): random data
``X ~ U[0, 1]^(N x n0)``, ``Y ~ U[0, 1]^(N x nL)``, no weight box, kink-in-data start, then
``solve_alm(max_outer=--outer, max_inner=--inner, polish=False, method="blocks")`` (the
block-coordinate ALM, whose GEMMs the FLOP count describes).  The FLOP count is analytic
(the GEMMs of a sweep and of an evaluation of L, violation and stationarity, the small dense
factorisations of the weight and X blocks, and the once-per-solve Gram and forward passes;
elementwise work is not counted, so FLOP/s measures how much of the time is spent in dense linear
algebra), and ``gemm_fraction`` =
achieved FLOP/s / FLOP/s of one large numpy GEMM of the same dtype measured in the same child.
Peak memory: tracemalloc peak (numpy reports its allocations to it) during the solve, and the
growth of the process's peak RSS, both compared with the iterate's own arrays (variables and
multipliers) plus the data.

    python benchmarks/alm_throughput.py --json out/alm_throughput.json
    python benchmarks/alm_throughput.py --samples 60000 --widths 784,256,256,784 --inner 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from unrectify.validate import output_file_arg, positive_int, positive_int_list, seed_int, widths_arg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import gemm_rate  # noqa: E402


def sweep_flops(N: int, widths: list[int]) -> float:
    """GEMM flops of one block sweep (2 m n k per product)."""
    L = len(widths) - 1
    f = 0.0
    for l in range(1, L + 1):
        a, n = widths[l - 1] + 1, widths[l]
        if l > 1:
            f += 2.0 * N * a * a  # Gram of [X_{l-1}, 1] (layer 1's is constant and cached)
        f += 2.0 * N * a * n  # [X, 1]^T (Z + U1)
        f += 2.0 * N * (a - 1) * n  # A = X W^T
        if l < L:
            nxt = widths[l + 1]
            f += 2.0 * N * nxt * n + 2.0 * N * n * n  # (Z+ + U1+ - b) W+ and rhs M^{-1}
    return f


def factor_flops(widths: list[int]) -> float:
    """Dense LAPACK/BLAS flops of one sweep that do not grow with N: per layer the Cholesky
    factorisation and solve of the ``(n_{l-1}+1)``-sized Gram system for all ``n_l`` columns, and
    per hidden layer ``W^T W`` and the inverse of ``I + W^T W`` (LU-based, ~2 n^3)."""
    L = len(widths) - 1
    f = 0.0
    for l in range(1, L + 1):
        a, n = widths[l - 1] + 1, widths[l]
        f += a ** 3 / 3.0 + 2.0 * a * a * n
        if l < L:
            f += 2.0 * widths[l + 1] * n * n + 2.0 * n ** 3
    return f


def setup_flops(N: int, widths: list[int]) -> float:
    """GEMM flops done once per solve inside the timed call: the cached Gram of the data, the
    forward pass that builds the feasible start state and the final float64 forward loss."""
    forward = sum(2.0 * N * widths[l - 1] * widths[l] for l in range(1, len(widths)))
    return 2.0 * N * (widths[0] + 1) ** 2 + 2.0 * forward


def eval_flops(N: int, widths: list[int]) -> float:
    """GEMM flops of one evaluation (residual affines, weight gradients, X gradients) plus the
    float64 forward pass whose loss goes into the history record."""
    L = len(widths) - 1
    f = sum(2.0 * N * widths[l - 1] * widths[l] for l in range(1, L + 1))
    for l in range(1, L + 1):
        a, n = widths[l - 1], widths[l]
        f += 2.0 * N * a * n * 2  # residual C1 (affine) and G1^T X_{l-1}
        if l < L:
            f += 2.0 * N * widths[l + 1] * n  # G1_{l+1} W_{l+1}
    return f


def child(N: int, widths: list[int], outer: int, inner: int, dtype: str, threads: int | None, seed: int) -> dict:
    from unrectify.backends.alm import solve_alm
    from unrectify.backends.alm.init import kink_start
    from unrectify.backends.alm.threads import blas_threads
    from unrectify.formulations.problem import TrainingProblem

    with blas_threads(threads):
        rate = gemm_rate(dtype)
    rng = np.random.default_rng(seed)
    X = rng.random((N, widths[0]))
    Y = rng.random((N, widths[-1]))
    p = TrainingProblem(X, Y, tuple(widths), loss="mse", weight_bound=None)
    t = time.perf_counter()
    w0 = kink_start(p, np.random.default_rng(seed))
    init_s = time.perf_counter() - t
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t = time.perf_counter()
    res = solve_alm(p, init=w0, max_outer=outer, max_inner=inner, polish=False, method="blocks", dtype=dtype,
                    threads=threads, check_every=inner)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    itemsize = np.dtype(dtype).itemsize
    hidden = sum(widths[1:-1])
    state_bytes = itemsize * N * (9 * hidden + 2 * widths[-1])
    data_bytes = itemsize * N * (widths[0] + widths[-1])
    outer_done = len(res.history)
    sweeps = sum(h["sweeps"] for h in res.history)
    # one evaluation per outer iteration (check_every = inner: at the end of the inner loop)
    flops = (sweeps * (sweep_flops(N, widths) + factor_flops(widths)) + outer_done * eval_flops(N, widths)
             + setup_flops(N, widths))
    achieved = flops / seconds
    return {
        "samples": N, "widths": widths, "dtype": dtype, "threads": threads, "outer": outer_done,
        "sweeps": sweeps, "seconds": seconds, "seconds_per_outer": seconds / max(outer_done, 1),
        "seconds_per_sweep": seconds / max(sweeps, 1), "init_seconds": init_s, "gflop": flops / 1e9,
        "gflops_achieved": achieved / 1e9, "gflops_gemm": rate / 1e9, "gemm_fraction": achieved / rate,
        "state_bytes": state_bytes, "data_bytes": data_bytes, "tracemalloc_peak_bytes": peak,
        "rss_growth_bytes": max(rss1 - rss0, 0), "peak_over_state_and_data": peak / (state_bytes + data_bytes),
        "peak_over_state": peak / state_bytes, "forward_loss": res.forward_loss, "max_violation": res.max_violation,
        "stop_reason": res.stop_reason,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default="1000,10000", type=positive_int_list, help="comma list of N (the full study adds 60000)")
    ap.add_argument("--widths", default="784,512,512,784", type=widths_arg)
    ap.add_argument("--outer", type=positive_int, default=1)
    ap.add_argument("--inner", type=positive_int, default=3, help="sweeps per outer iteration")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--threads", type=positive_int, default=None, help="BLAS threads (default: process setting)")
    ap.add_argument("--seed", type=seed_int, default=0)
    ap.add_argument("--json", default=None, type=output_file_arg("--json"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    widths = list(args.widths)
    widths_text = ",".join(map(str, widths))
    if args.child is not None:
        out = child(int(args.child), widths, args.outer, args.inner, args.dtype, args.threads, args.seed)
        print("RESULT " + json.dumps(out))
        return 0
    rows = []
    for N in [int(float(x)) for x in args.samples.split(",")]:
        cmd = [sys.executable, __file__, "--child", str(N), "--widths", widths_text, "--outer", str(args.outer),
               "--inner", str(args.inner), "--dtype", args.dtype, "--seed", str(args.seed)]
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), check=False)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(f"N={N}: child failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            rows.append({"samples": N, "widths": widths, "error": proc.stderr.strip()[-500:]})
            continue
        r = json.loads(line[0][7:])
        rows.append(r)
        print(f"N={N:>6} {widths_text} {args.dtype}: {r['seconds_per_outer']:.2f} s/outer ({r['sweeps']} sweeps), "
              f"{r['gflops_achieved']:.1f} GFLOP/s = {r['gemm_fraction']:.2f} of GEMM {r['gflops_gemm']:.1f}, "
              f"peak {r['tracemalloc_peak_bytes'] / 2**30:.2f} GiB = {r['peak_over_state_and_data']:.2f} x "
              f"(state+data {(r['state_bytes'] + r['data_bytes']) / 2**30:.2f} GiB)", flush=True)
    ok = [r for r in rows if "error" not in r]
    summary = {
        "gemm_fraction": min((r["gemm_fraction"] for r in ok), default=None),
        "gemm_fraction_by_samples": {str(r["samples"]): r["gemm_fraction"] for r in ok},
        "seconds_per_outer_by_samples": {str(r["samples"]): r["seconds_per_outer"] for r in ok},
        "peak_over_state_and_data_max": max((r["peak_over_state_and_data"] for r in ok), default=None),
        "peak_over_state_max": max((r["peak_over_state"] for r in ok), default=None),
        "widths": widths, "dtype": args.dtype, "inner": args.inner, "outer": args.outer,
        "failed": [r["samples"] for r in rows if "error" in r],
    }
    report = {"summary": summary, "runs": rows, "config": vars(args)}
    print(json.dumps(summary, indent=1))
    if args.json:
        from benchmarks._common import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
