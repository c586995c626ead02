"""Reduced-space ALM step throughput: serial against worker threads, with Adam as reference.

One process, random data ``X ~ N(0, 1)^(N x n0)``, small targets ``Y ~ 0.03 N(0, 1)`` (the
scale of CS residual targets), the Adam twin's start.  For every minibatch size it times
``--steps`` inner steps of the reduced ALM (:mod:`unrectify.backends.alm.reduced`: D prox
refresh, gradient through ``X = D * Z``, Adam on the weights, D prox-gradient step) and one
outer pass (D step, measures, multiplier update over all ``N`` rows), once serially and once
on the data-parallel worker threads (as many as BLAS threads, BLAS single-threaded meanwhile,
as :func:`~unrectify.backends.alm.reduced.reduced_alm` runs them).  References measured in the
same process, because the machine is noisy: one float32 GEMM's FLOP/s and, when torch is
installed, a torch Adam step on the same ReLU network and minibatch (``nn.Sequential``, MSE).

Reported per batch size: milliseconds per step and samples per second of each; the ratios
threads / serial and ALM (threads) / Adam in samples per second; the seconds of one outer pass
and the epoch time (``N / batch`` steps plus one outer pass) against Adam's epoch.

    python benchmarks/alm_reduced_speed.py --json benchmarks/results/alm_reduced_speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import gemm_rate, write_json_atomic  # noqa: E402
from unrectify.validate import output_file_arg, positive_int, positive_int_list, seed_int, widths_arg  # noqa: E402


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def alm_rates(problem, weights, batches: list[int], steps: int, workers: int, seed: int) -> dict[int, dict]:
    """ms per step and the outer pass's seconds of a fresh reduced-ALM run per batch size."""
    from unrectify.backends.alm.reduced import _Run
    from unrectify.backends.alm.threads import blas_threads

    rng = np.random.default_rng(seed)
    out = {}
    for bs in batches:
        run = _Run(problem, weights, np.float32, types.SimpleNamespace(rho0=1.0))
        run.d_damp, run.refresh, run.d_step = 1.0, True, True
        run.start_workers(workers)
        try:
            with blas_threads(1) if run.workers > 1 else contextlib.nullcontext():
                blocks = [np.sort(rng.choice(run.N, size=bs, replace=False)) for _ in range(steps + 2)]
                for rows in blocks[:2]:  # warm-up
                    run.step(rows, 1e-3)
                t = _timed(lambda: [run.step(rows, 1e-3) for rows in blocks[2:]])
                outer = _timed(lambda: run.outer_pass(1e8, refresh=True, update=True))
        finally:
            run.stop_workers()
        out[bs] = {"ms_per_step": 1e3 * t / steps, "samples_per_s": bs * steps / t, "outer_pass_s": outer}
    return out


def adam_rates(X: np.ndarray, Y: np.ndarray, widths: list[int], batches: list[int], steps: int,
               seed: int) -> dict[int, dict] | None:
    """ms per torch Adam step on the same ReLU network (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    layers: list = []
    for l in range(1, len(widths)):
        layers.append(torch.nn.Linear(widths[l - 1], widths[l]))
        if l < len(widths) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    rng = np.random.default_rng(seed)
    out = {}
    for bs in batches:
        idx = [torch.from_numpy(np.sort(rng.choice(len(X), size=bs, replace=False))) for _ in range(steps + 2)]

        def step(i):
            opt.zero_grad()
            loss = ((net(Xt[i]) - Yt[i]) ** 2).mean()
            loss.backward()
            opt.step()

        for i in idx[:2]:
            step(i)
        t = _timed(lambda: [step(i) for i in idx[2:]])
        out[bs] = {"ms_per_step": 1e3 * t / steps, "samples_per_s": bs * steps / t}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=positive_int, default=54000, help="N (default: MNIST's training pairs less 10 %%)")
    ap.add_argument("--widths", type=widths_arg, default="392,256,256,784",
                    help="network widths (default: the MNIST 50 %% residual decoder)")
    ap.add_argument("--batches", type=positive_int_list, default="128,256,512")
    ap.add_argument("--steps", type=positive_int, default=100, help="timed steps per batch size")
    ap.add_argument("--seed", type=seed_int, default=0)
    ap.add_argument("--json", default=None, type=output_file_arg("--json"))
    args = ap.parse_args(argv)
    widths = list(args.widths)
    batches = [int(b) for b in args.batches.split(",")]
    if len(widths) < 3:
        ap.error("--widths needs at least one hidden layer, e.g. 392,256,256,784")
    if len(set(batches)) < len(batches):
        ap.error(f"--batches names a size more than once: {args.batches}")
    if max(batches) > args.samples:
        ap.error(f"--batches must not exceed --samples ({args.samples})")

    from unrectify.backends.alm.threads import blas_thread_count
    from unrectify.cs.decoders.mlp import twin_start
    from unrectify.formulations.problem import TrainingProblem

    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.samples, widths[0])).astype(np.float32)
    Y = (0.03 * rng.standard_normal((args.samples, widths[-1]))).astype(np.float32)
    problem = TrainingProblem(X, Y, widths, loss="mse", weight_bound=None)
    weights = twin_start(widths, args.seed, None)
    workers = blas_thread_count()
    gemm = gemm_rate("float32", n=1024) / 1e9
    serial = alm_rates(problem, weights, batches, args.steps, 1, args.seed)
    threaded = alm_rates(problem, weights, batches, args.steps, workers, args.seed) if workers > 1 else serial
    adam = adam_rates(X, Y, widths, batches, args.steps, args.seed)
    rows = []
    print(f"reduced ALM, widths {'-'.join(map(str, widths))}, N = {args.samples}, float32, {workers} worker "
          f"thread(s); float32 GEMM {gemm:.0f} GFLOP/s")
    print("| batch | serial ms/step | threads ms/step | threads/serial | Adam ms/step | ALM/Adam samples/s "
          "| outer pass s (serial, threads) | epoch s ALM / Adam |")
    print("|---|---|---|---|---|---|---|---|")
    for bs in batches:
        s, t = serial[bs], threaded[bs]
        a = adam[bs] if adam else None
        steps_per_epoch = args.samples / bs
        epoch = steps_per_epoch * t["ms_per_step"] / 1e3 + t["outer_pass_s"]
        adam_epoch = steps_per_epoch * a["ms_per_step"] / 1e3 if a else None
        row = {"batch": bs, "serial": s, "threads": t, "adam": a,
               "threads_over_serial": t["samples_per_s"] / s["samples_per_s"],
               "alm_over_adam": t["samples_per_s"] / a["samples_per_s"] if a else None,
               "epoch_s": epoch, "adam_epoch_s": adam_epoch}
        rows.append(row)
        cells = [bs, _num(s["ms_per_step"]), _num(t["ms_per_step"]), _num(row["threads_over_serial"]),
                 _num(a["ms_per_step"] if a else None), _num(row["alm_over_adam"]),
                 f"{_num(s['outer_pass_s'])}, {_num(t['outer_pass_s'])}", f"{_num(epoch)} / {_num(adam_epoch)}"]
        print("| " + " | ".join(map(str, cells)) + " |")
    if args.json:
        write_json_atomic(args.json, {"widths": widths, "samples": args.samples, "workers": workers,
                                      "steps": args.steps, "gemm_gflops_float32": gemm, "rows": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
