"""ALM best-of-K against certified optima, Adam at equal wall-clock, and Ipopt/SLSQP on the
same relaxed NLP.

For ``--instances`` seeds, ``random_instance(N, widths, seed, B)`` is solved exactly by SCIP
(``unrectify.solve(..., backend="scip")``; only status ``optimal`` counts, the optima are
cached in ``--cache``), then by

* ``alm``: ``solve_alm(problem, restarts=K, seed=0)`` (its defaults); ablations
  ``alm_hop`` (``strategy="hop"``, the earlier default), ``alm_nopattern``
  (``pattern_moves=0``) and ``alm_random`` (also ``strategy="random"``:
  independent kink-in-data starts, the prototype's setting) when listed in ``--methods``;
* ``adam``: torch Adam (float64, full batch, weights clamped into the box after every step,
  learning rate decayed from ``--adam-lr`` to 1e-4 over the budget), K restarts from
  independent kink-in-data starts run together (batched) for the ALM's wall-clock time on that
  instance; ``adam_div``: the same from the ALM's stratified starts (kink quantiles and
  orientation classes, see ``unrectify.backends.alm.init``), to separate the start design from the solver;
* ``ipopt`` (cyipopt, if importable) and ``slsqp`` (scipy): the relaxed split NLP
  ``min loss(Z_L)`` s.t. ``Z_l = X_{l-1} W_l^T + b_l``, ``X = D Z``, ``D Z >= 0``,
  ``(1 - D) Z <= 0``, ``0 <= D <= 1``, ``|W|, |b| <= B``, from the forward pass of the same K
  kink-in-data starts.

Every method is scored by the ReLU forward-pass loss of its weights; the relative gap is
``(loss - opt) / opt``; "within" means gap <= ``--rtol`` (1e-3).  Instances whose certified
optimum is below ``--min-optimum`` (1e-6: the network interpolates the data and a relative gap
is meaningless) are skipped and listed.

    python benchmarks/alm_vs_exact.py --cache out/alm_exact_cache.json --json out/alm_vs_exact.json
    python benchmarks/alm_vs_exact.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from unrectify.backends.alm import solve_alm
from unrectify.backends.alm.init import kink_start, orientation_signs, stratified_quantiles
from benchmarks._common import (
    ensure_exact,
    instance_key,
    load_cache,
    make_instance,
    write_json_atomic,
)
from unrectify.formulations.network import forward
from unrectify.formulations.problem import TrainingProblem
from unrectify.validate import (nonnegative_float, output_file_arg, positive_float, positive_int, seed_int,
                                widths_arg)

METHODS = ("alm", "alm_hop", "alm_nopattern", "alm_random", "adam", "adam_div", "ipopt", "slsqp")

#: ablations of the ALM (extra solve_alm options), each scored like "alm"
ALM_VARIANTS = {"alm_hop": {"strategy": "hop"},
                "alm_nopattern": {"pattern_moves": 0},
                "alm_random": {"pattern_moves": 0, "strategy": "random"}}


# ---------------------------------------------------------------------- baselines
def baseline_starts(problem: TrainingProblem, K: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """K independent kink-in-data starts (the ALM's "random" strategy), reproducible by seed."""
    return [kink_start(problem, np.random.default_rng([seed, 10_000 + r])) for r in range(K)]


def diverse_starts(problem: TrainingProblem, K: int, seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """K starts with the ALM's stratified kink quantiles and orientation classes (no feedback
    from earlier runs): isolates how much of the ALM's success comes from its start design."""
    rng = np.random.default_rng([seed, 20_000])
    perms = [np.array([rng.permutation(K) for _ in range(n)]) for n in problem.widths[1:-1]]
    offset = int(rng.integers(problem.widths[1] + 1))
    out = []
    for r in range(K):
        rr = np.random.default_rng([seed, 20_000 + r])
        signs = orientation_signs(problem.widths[1], r, K, offset, rr)
        out.append(kink_start(problem, rr, stratified_quantiles(problem.widths, r, K, rr, perms), signs))
    return out


def run_adam(problem: TrainingProblem, starts, budget: float, lr: float) -> dict:
    """Adam from all K starts at once (batched matmuls, so the K restarts share the Python and
    torch overhead) for ``budget`` seconds of wall-clock; weights clamped into the box."""
    import torch

    B = problem.weight_bound
    X = torch.from_numpy(problem.X)
    Y = torch.from_numpy(problem.Y)
    Ws = [torch.tensor(np.stack([w[l][0] for w in starts]), requires_grad=True) for l in range(len(starts[0]))]
    bs = [torch.tensor(np.stack([w[l][1] for w in starts])[:, None, :], requires_grad=True) for l in range(len(starts[0]))]
    opt = torch.optim.Adam(Ws + bs, lr=lr)
    t0 = time.perf_counter()
    n = 0
    while True:
        frac = (time.perf_counter() - t0) / budget
        if frac >= 1.0:
            break
        for g in opt.param_groups:  # exponential decay from lr to 1e-4 over the budget
            g["lr"] = lr * (1e-4 / lr) ** frac
        for _ in range(10):
            opt.zero_grad()
            H = X.expand(len(starts), *X.shape)
            for l, (W, b) in enumerate(zip(Ws, bs)):
                H = torch.baddbmm(b, H, W.transpose(1, 2))
                if l < len(Ws) - 1:
                    H = torch.relu(H)
            R = H - Y
            per = (R * R).mean(dim=1).sum(dim=1) if problem.loss == "mse" else R.abs().mean(dim=1).sum(dim=1)
            per.sum().backward()  # restarts are independent: the sum's gradient is each one's
            opt.step()
            if B is not None:
                with torch.no_grad():
                    for P in Ws + bs:
                        P.clamp_(-B, B)
            n += 1
    losses = []
    for k in range(len(starts)):
        weights = [(W[k].detach().numpy().copy(), b[k, 0].detach().numpy().copy()) for W, b in zip(Ws, bs)]
        losses.append(problem.forward_loss(weights))
    return {"loss": min(losses), "restart_losses": losses, "steps": n, "seconds": time.perf_counter() - t0}


class SplitNLP:
    """The relaxed split form as a dense NLP in ``v = [theta, (Z_l, X_l, D_l) per hidden layer, Z_L]``
    (for small instances: dense Jacobians)."""

    def __init__(self, problem: TrainingProblem):
        from unrectify.backends.alm.polish import unpack

        self.p = problem
        self.unpack = unpack
        self.N = problem.n_samples
        w = problem.widths
        self.n_theta = sum(w[l] * w[l - 1] + w[l] for l in range(1, len(w)))
        self.hidden = list(w[1:-1])
        self.nL = w[-1]
        self.n = self.n_theta + sum(3 * self.N * h for h in self.hidden) + self.N * self.nL

    def split(self, v):
        k = self.n_theta
        weights = self.unpack(v[:k], self.p.widths)
        layers = []
        for h in self.hidden:
            s = self.N * h
            layers.append(tuple(v[k + i * s:k + (i + 1) * s].reshape(self.N, h) for i in range(3)))
            k += 3 * s
        ZL = v[k:].reshape(self.N, self.nL)
        return weights, layers, ZL

    def start(self, weights):
        parts = [np.concatenate([np.concatenate([W.ravel(), b]) for W, b in weights])]
        zs, xs = forward(weights, self.p.X)
        for Z, X in zip(zs[:-1], xs[:-1]):
            parts += [Z.ravel(), X.ravel(), (Z > 0).astype(float).ravel()]
        parts.append(zs[-1].ravel())
        return np.concatenate(parts)

    def objective(self, v):
        _, _, ZL = self.split(v)
        R = ZL - self.p.Y
        return float((R * R).sum()) / self.N

    def gradient(self, v):
        g = np.zeros(self.n)
        _, _, ZL = self.split(v)
        g[self.n - ZL.size:] = (2.0 / self.N) * (ZL - self.p.Y).ravel()
        return g

    def _index(self):
        """Offsets of every variable block in v."""
        offs, k = [], self.n_theta
        for h in self.hidden:
            s = self.N * h
            offs.append((k, k + s, k + 2 * s))
            k += 3 * s
        return offs, k

    def eq(self, v):
        weights, layers, ZL = self.split(v)
        out, H = [], self.p.X
        for (W, b), (Z, X, D) in zip(weights[:-1], layers):
            out += [(Z - (H @ W.T + b)).ravel(), (X - D * Z).ravel()]
            H = X
        W, b = weights[-1]
        out.append((ZL - (H @ W.T + b)).ravel())
        return np.concatenate(out)

    def ineq(self, v):  # >= 0
        _, layers, _ = self.split(v)
        out = []
        for Z, X, D in layers:
            out += [(D * Z).ravel(), (D * Z - Z).ravel()]
        return np.concatenate(out) if out else np.zeros(0)

    def eq_jac(self, v):
        weights, layers, _ = self.split(v)
        offs, oL = self._index()
        N, w = self.N, self.p.widths
        rows = []
        H = self.p.X
        k_theta = 0
        for l, (W, b) in enumerate(weights):
            n_in, n_out = w[l], w[l + 1]
            Z_off = offs[l][0] if l < len(layers) else oL
            J = np.zeros((N * n_out, self.n))
            r = np.arange(N * n_out)
            i, j = np.divmod(r, n_out)
            J[r, Z_off + r] = 1.0
            for m in range(n_in):  # d/dW[j, m] of -(H W^T)[i, j]
                J[r, k_theta + j * n_in + m] = -H[i, m]
            J[r, k_theta + n_out * n_in + j] = -1.0
            if l > 0:  # d/dH[i, m] of -(H W^T)[i, j] where H = X_{l-1}
                X_off = offs[l - 1][1]
                for m in range(n_in):
                    J[r, X_off + i * n_in + m] = -W[j, m]
            rows.append(J)
            if l < len(layers):
                Z, X, D = layers[l]
                J2 = np.zeros((N * n_out, self.n))
                zo, xo, do = offs[l]
                J2[r, xo + r] = 1.0
                J2[r, zo + r] = -D.ravel()
                J2[r, do + r] = -Z.ravel()
                rows.append(J2)
                H = X
            k_theta += n_out * n_in + n_out
        # order must match eq(): per hidden layer [C1, C2], then output C1
        order = []
        for l in range(len(layers)):
            order += [rows[2 * l], rows[2 * l + 1]]
        order.append(rows[-1])
        return np.vstack(order)

    def ineq_jac(self, v):
        _, layers, _ = self.split(v)
        offs, _ = self._index()
        out = []
        for (Z, X, D), (zo, xo, do) in zip(layers, offs):
            s = Z.size
            r = np.arange(s)
            J3 = np.zeros((s, self.n))
            J3[r, zo + r] = D.ravel()
            J3[r, do + r] = Z.ravel()
            J4 = np.zeros((s, self.n))
            J4[r, zo + r] = D.ravel() - 1.0
            J4[r, do + r] = Z.ravel()
            out += [J3, J4]
        return np.vstack(out) if out else np.zeros((0, self.n))

    def bounds(self):
        B = self.p.weight_bound
        lo = np.full(self.n, -np.inf)
        hi = np.full(self.n, np.inf)
        if B is not None:
            lo[:self.n_theta], hi[:self.n_theta] = -B, B
        offs, _ = self._index()
        for (zo, xo, do), h in zip(offs, self.hidden):
            lo[do:do + self.N * h], hi[do:do + self.N * h] = 0.0, 1.0
        return lo, hi


def run_nlp(problem: TrainingProblem, starts, method: str, max_iter: int = 3000) -> dict:
    """Ipopt or SLSQP on the relaxed split NLP from each start; scored by forward-pass loss."""
    nlp = SplitNLP(problem)
    lo, hi = nlp.bounds()
    cons = [{"type": "eq", "fun": nlp.eq, "jac": nlp.eq_jac}, {"type": "ineq", "fun": nlp.ineq, "jac": nlp.ineq_jac}]
    losses = []
    t0 = time.perf_counter()
    for w0 in starts:
        v0 = nlp.start(w0)
        if method == "ipopt":
            from cyipopt import minimize_ipopt

            res = minimize_ipopt(nlp.objective, v0, jac=nlp.gradient, constraints=cons,
                                 bounds=list(zip(np.where(np.isfinite(lo), lo, -1e20), np.where(np.isfinite(hi), hi, 1e20))),
                                 options={"print_level": 0, "tol": 1e-10, "max_iter": max_iter, "sb": "yes"})
        else:
            from scipy.optimize import minimize

            res = minimize(nlp.objective, v0, jac=nlp.gradient, method="SLSQP", constraints=cons,
                           bounds=list(zip(np.where(np.isfinite(lo), lo, None), np.where(np.isfinite(hi), hi, None))),
                           options={"maxiter": max_iter, "ftol": 1e-14})
        weights, _, _ = nlp.split(np.asarray(res.x, dtype=float))
        B = problem.weight_bound
        if B is not None:
            weights = [(np.clip(W, -B, B), np.clip(b, -B, B)) for W, b in weights]
        losses.append(problem.forward_loss(weights))
    return {"loss": min(losses), "restart_losses": losses, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--instances", type=positive_int, default=95, help="number of seeds tried (only certified ones count)")
    ap.add_argument("--first-seed", type=seed_int, default=0)
    ap.add_argument("--samples", type=positive_int, default=6)
    ap.add_argument("--widths", default="1,2,1", type=widths_arg)
    ap.add_argument("--bound", type=positive_float, default=2.0)
    ap.add_argument("--restarts", type=positive_int, default=10, help="K of best-of-K")
    ap.add_argument("--methods", default="alm,adam,adam_div,ipopt,slsqp")
    ap.add_argument("--exact-time-limit", type=positive_float, default=150.0)
    ap.add_argument("--cache", default=None, help="JSON cache of exact optima (default: --json path)")
    ap.add_argument("--json", default=None, help="write results here", type=output_file_arg("--json"))
    ap.add_argument("--rtol", type=positive_float, default=1e-3)
    ap.add_argument("--min-optimum", type=nonnegative_float, default=1e-6,
                    help="skip instances whose certified optimum is below this (a relative gap to ~0 is meaningless)")
    ap.add_argument("--cached-only", action="store_true", help="use only optima already in the cache (no SCIP runs)")
    ap.add_argument("--adam-lr", type=positive_float, default=0.02)
    ap.add_argument("--alm-options", default="{}", help="JSON dict of extra solve_alm options")
    ap.add_argument("--seed", type=seed_int, default=0, help="seed of the ALM and of the baseline starts")
    ap.add_argument("--quick", action="store_true", help="3 instances, K=3: a smoke run")
    args = ap.parse_args(argv)

    if args.quick:
        args.instances, args.restarts, args.exact_time_limit = 3, 3, min(args.exact_time_limit, 60.0)
    widths = args.widths
    methods = [m for m in args.methods.split(",") if m]
    bad = sorted(set(methods) - set(METHODS))
    if bad:
        ap.error(f"unknown method(s) {bad}; choose from {METHODS}")
    if "ipopt" in methods:
        try:
            import cyipopt  # noqa: F401
        except ImportError:
            print("cyipopt not importable (pip install --pre cyipopt-wheels): skipping ipopt", file=sys.stderr)
            methods.remove("ipopt")
    try:
        alm_opts = json.loads(args.alm_options)
    except ValueError as exc:
        ap.error(f"--alm-options must be a JSON object like '{{\"restarts\": 3}}': {exc}")
    if not isinstance(alm_opts, dict):
        ap.error(f"--alm-options must be a JSON object like '{{\"restarts\": 3}}', got {args.alm_options!r}")
    cache_path = args.cache or args.json
    try:
        cache = load_cache(cache_path)
    except (OSError, ValueError, TypeError) as exc:
        ap.error(f"cannot read the cache {cache_path}: {exc}")
    specs = [(args.samples, widths, s, "mse", args.bound) for s in range(args.first_seed, args.first_seed + args.instances)]
    if not args.cached_only:
        ensure_exact(cache, cache_path, specs, args.exact_time_limit,
                     log=lambda m: print(m, file=sys.stderr, flush=True))

    if "adam" in methods or "adam_div" in methods:
        import torch

        torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
        # warm up torch (first autograd calls are slow) outside any timed budget
        p0 = make_instance(*specs[0])
        run_adam(p0, baseline_starts(p0, 2, 0), 0.2, args.adam_lr)
    rows = []
    skipped_small = []
    for spec in specs:
        key = instance_key(*spec)
        ex = cache.get(key)
        if ex is None or ex["status"] != "optimal":
            continue
        if float(ex["objective"]) < args.min_optimum:
            skipped_small.append(key)
            continue
        p = make_instance(*spec)
        opt = float(ex["objective"])
        row = {"key": key, "seed": spec[2], "optimum": opt, "bound": ex.get("bound")}
        res = solve_alm(p, restarts=args.restarts, seed=args.seed, **alm_opts)
        ok = [(x - opt) / opt <= args.rtol for x in res.restart_losses]
        row["alm"] = {"loss": res.forward_loss, "seconds": res.seconds, "status": res.status,
                      "restart_losses": res.restart_losses, "per_restart_within": float(np.mean(ok)),
                      "max_violation": res.max_violation, "stationarity": res.stationarity}
        for name, extra in ALM_VARIANTS.items():
            if name in methods:
                rv = solve_alm(p, restarts=args.restarts, seed=args.seed, **{**alm_opts, **extra})
                row[name] = {"loss": rv.forward_loss, "seconds": rv.seconds, "status": rv.status,
                             "restart_losses": rv.restart_losses,
                             "per_restart_within": float(np.mean([(x - opt) / opt <= args.rtol for x in rv.restart_losses]))}
        starts = baseline_starts(p, args.restarts, args.seed)
        if "adam" in methods:
            row["adam"] = run_adam(p, starts, res.seconds, args.adam_lr)
        if "adam_div" in methods:
            row["adam_div"] = run_adam(p, diverse_starts(p, args.restarts, args.seed), res.seconds, args.adam_lr)
        for m in ("ipopt", "slsqp"):
            if m in methods:
                row[m] = run_nlp(p, starts, m)
        for m in methods:
            row[m]["gap"] = (row[m]["loss"] - opt) / opt
            row[m]["within"] = bool(row[m]["gap"] <= args.rtol)
        rows.append(row)
        print(f"{key}: opt {opt:.6g} " + " ".join(
            f"{m} {row[m]['gap']:+.1e} ({row[m]['seconds']:.1f}s)" for m in methods), flush=True)
        if args.json:
            write_json_atomic(args.json, _report(args, methods, rows, cache, skipped_small))
    report = _report(args, methods, rows, cache, skipped_small)
    print(_table(report))
    if args.json:
        write_json_atomic(args.json, report)
    return 0


def _report(args, methods, rows, cache, skipped_small=()) -> dict:
    summary = {"instances": len(rows), "rtol": args.rtol, "restarts": args.restarts,
               "skipped_optimum_below_min": list(skipped_small)}
    for m in methods:
        gaps = [r[m]["gap"] for r in rows]
        summary[m] = {
            "within": float(np.mean([r[m]["within"] for r in rows])) if rows else math.nan,
            "median_gap": float(np.median(gaps)) if rows else math.nan,
            "mean_seconds": float(np.mean([r[m]["seconds"] for r in rows])) if rows else math.nan,
        }
    for m in ("alm", *ALM_VARIANTS):
        if rows and m in methods:
            summary[m]["per_restart_within"] = float(np.mean([r[m]["per_restart_within"] for r in rows]))
            summary[m]["status_local"] = float(np.mean([r[m]["status"] == "local" for r in rows]))
    return {"config": {k: v for k, v in vars(args).items()}, "summary": summary, "instances": rows,
            "exact": cache}


def _table(report: dict) -> str:
    s = report["summary"]
    head = (f"{s['instances']} certified instances, best of K={s['restarts']}, within rtol={s['rtol']:g}"
            f" ({len(s['skipped_optimum_below_min'])} with optimum < min-optimum skipped)")
    lines = [head, "",
             "| method | within | median rel. gap | mean seconds |", "|---|---|---|---|"]
    for m in METHODS:
        if m in s:
            lines.append(f"| {m} | {100 * s[m]['within']:.0f} % | {s[m]['median_gap']:.1e} | {s[m]['mean_seconds']:.2f} |")
    for m in ("alm", *ALM_VARIANTS):
        if m in s and "per_restart_within" in s[m]:
            lines.append("")
            lines.append(f"{m}: single restarts within rtol {100 * s[m]['per_restart_within']:.0f} %, "
                         f"returned restart converged (status local) {100 * s[m]['status_local']:.0f} %")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
