"""Fixed-weight ReLU networks: "maximise output 0 over [0,1]^n0" against OMLT and gurobi-ml.

Same random He-init networks (weights N(0, 2/fan_in), biases N(0, 0.1^2), seeded, rounded to
float32 so that every tool sees the identical network) in every tool, in the same process:

* unrectify  ``bigm``/``binary`` with interval bounds and with CROWN bounds (``--bounds`` adds
  ``lp``: LP-based tightening, its HiGHS time counted as build time); HiGHS (highspy);
  ``complementarity`` build only;
* OMLT 1.2.2 ``ReluBigMFormulation`` (network built from the weights through
  ``NetworkDefinition``/``DenseLayer``, no ONNX), solved by HiGHS through Pyomo
  ``appsi_highs``; ``ReluComplementarityFormulation`` build only (it needs an NLP solver);
* gurobi-machinelearning 1.7.0 ``add_sequential_constr`` on a float32 ``torch.nn.Sequential``
  (ReLU as Gurobi max constraints), solved by Gurobi; solves larger than the pip licence
  (2000 variables / constraints) are skipped with a note.

``build`` = from the weight arrays to the tool's model object (unrectify: bounds + the
array model with its sparse matrix; OMLT: the Pyomo block; gurobi-ml: the gurobipy model
after ``update()``), best of ``--repeats``.  ``solve`` = from that object to the answer
(unrectify: hand-over to highspy + HiGHS; OMLT: appsi hand-over + HiGHS; gurobi-ml:
``optimize()``), one run, same time limit and relative gap for all.  Example (the table in
docs/fixed_weight.md):

    python benchmarks/fixed_weight.py --nets 2-16-16-1 5-32-32-1 10-50-50-1:build \
        784-256-256-10:build --time-limit 60 --repeats 3 --json benchmarks/results/fixed_weight.json

A ``:build`` suffix skips the solves for that network.  Peers that are not installed are
skipped with the install command (``pip install omlt==1.2.2 gurobi-machinelearning==1.7.0``).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from unrectify.backends import get_backend
from unrectify.formulations.fixed_weight import FixedNetwork, build_output_bound_model
from unrectify.fixed import tighten_bounds
from unrectify.atomic import write_json_atomic
from unrectify.formulations.errors import InputError
from unrectify.formulations.validation import parse_widths
from unrectify.validate import output_file_arg, nonnegative_float, positive_float, positive_int, seed_int

INSTALL = {"omlt": "pip install omlt==1.2.2", "pyscipopt_ml": "pip install pyscipopt-ml==1.4.1", "gurobi_ml": "pip install gurobi-machinelearning==1.7.0",
           "torch": "pip install torch==2.13.0", "gurobipy": "pip install gurobipy"}
GRB_LIMIT = 2000


def he_weights(widths, seed=0):
    """He-init weights rounded to float32 values (held as float64)."""
    r = np.random.default_rng(seed)
    out = []
    for a, b in zip(widths[:-1], widths[1:]):
        W = r.normal(0.0, np.sqrt(2.0 / a), (b, a)).astype(np.float32).astype(np.float64)
        bb = r.normal(0.0, 0.1, b).astype(np.float32).astype(np.float64)
        out.append((W, bb))
    return out


def best_of(fn, repeats):
    best, result = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def have(mod):
    return importlib.util.find_spec(mod) is not None


# ---------------------------------------------------------------------- unrectify
def ours(weights, encoding, bounds, solve, time_limit, gap, repeats):
    def build():
        net = FixedNetwork(weights, 0.0, 1.0)
        b = tighten_bounds(net, time_limit=time_limit) if bounds == "lp" else bounds
        fm = build_output_bound_model(net, 0, "max", encoding, "binary" if encoding != "complementarity" else "interval",
                                      bounds=b)
        m = fm.model
        m.A, m.lb, m.ub, m.rhs, m.sense, m.integer, m.c  # noqa: B018  (materialise the arrays)
        return fm

    build_s, fm = best_of(build, repeats)
    m = fm.model
    rec = {"tool": "unrectify", "formulation": f"{encoding}/{bounds}", "vars": m.n_vars,
           "cons": m.n_constraints, "binaries": m.n_integer, "build_s": build_s}
    if solve and encoding == "bigm":
        be = get_backend("highs", gap=gap)
        t0 = time.perf_counter()
        h = be.compile(m, time_limit)
        t1 = time.perf_counter()
        outcome = be.run(h, time_limit)
        raw = be.extract(h, outcome, m)
        t2 = time.perf_counter()
        rec.update(handover_s=t1 - t0, solve_s=t2 - t0, status=raw.status,
                   objective=None if raw.objective is None else -raw.objective,
                   bound=None if raw.bound is None else -raw.bound)
        if raw.x is not None:
            x = fm.input_value(raw.x)
            rec["forward_check"] = float(abs(fm.net.forward(x)[0, 0] - rec["objective"]))
    return rec


# ---------------------------------------------------------------------- OMLT
def omlt_model(weights, form_name):
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import (
        NetworkDefinition,
        ReluBigMFormulation,
        ReluComplementarityFormulation,
    )
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    form = {"bigm": ReluBigMFormulation, "complementarity": ReluComplementarityFormulation}[form_name]
    n0 = weights[0][0].shape[1]
    net = NetworkDefinition(scaled_input_bounds={i: (0.0, 1.0) for i in range(n0)})
    prev = InputLayer([n0])
    net.add_layer(prev)
    for l, (W, b) in enumerate(weights):
        layer = DenseLayer([W.shape[1]], [W.shape[0]], W.T, b,
                           activation="relu" if l < len(weights) - 1 else "linear")
        net.add_layer(layer)
        net.add_edge(prev, layer)
        prev = layer
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(form(net))
    m.obj = pyo.Objective(expr=m.nn.outputs[0], sense=pyo.maximize)
    return m


def omlt(weights, form_name, solve, time_limit, gap, repeats):
    import pyomo.environ as pyo

    build_s, m = best_of(lambda: omlt_model(weights, form_name), repeats)
    nv = sum(1 for _ in m.component_data_objects(pyo.Var))
    nc = sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True))
    nb = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())
    rec = {"tool": "omlt", "formulation": form_name, "vars": nv, "cons": nc, "binaries": nb, "build_s": build_s}
    if solve and form_name == "bigm":
        from pyomo.contrib.appsi.solvers import Highs

        logging.getLogger("pyomo").setLevel(logging.ERROR)
        opt = Highs()
        opt.config.time_limit = float(time_limit)
        opt.config.mip_gap = float(gap)
        opt.config.load_solution = False   # a time limit without incumbent would raise otherwise
        t0 = time.perf_counter()
        res = opt.solve(m)
        rec["solve_s"] = time.perf_counter() - t0
        tc = str(res.termination_condition).split(".")[-1]
        rec["status"] = {"optimal": "optimal", "maxTimeLimit": "time_limit"}.get(tc, tc)
        obj, bnd = res.best_feasible_objective, res.best_objective_bound
        rec["objective"] = None if obj is None or not np.isfinite(obj) else float(obj)
        rec["bound"] = None if bnd is None or not np.isfinite(bnd) else float(bnd)
    return rec


# ---------------------------------------------------------------------- gurobi-ml
def gurobi_ml(weights, solve, time_limit, gap, repeats):
    import gurobipy as gp
    from gurobi_ml.torch import add_sequential_constr

    from unrectify.torch_io import to_torch

    seq = to_torch(weights, dtype="float32")   # get_error() fails for float64 models in 1.7.0
    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    env.start()

    def build():
        g = gp.Model(env=env)
        x = g.addMVar((1, weights[0][0].shape[1]), lb=0.0, ub=1.0)
        pc = add_sequential_constr(g, seq, x)
        g.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
        g.update()
        return g, pc

    build_s, (g, pc) = best_of(build, repeats)
    rec = {"tool": "gurobi-ml", "formulation": "relu max-constr", "vars": g.NumVars,
           "cons": g.NumConstrs + g.NumGenConstrs, "binaries": g.NumBinVars, "build_s": build_s}
    if solve:
        if g.NumVars > GRB_LIMIT or g.NumConstrs > GRB_LIMIT:
            rec["status"] = "skipped"
            rec["note"] = f"{g.NumVars} vars / {g.NumConstrs} cons exceed the pip licence ({GRB_LIMIT})"
        else:
            g.Params.TimeLimit = float(time_limit)
            g.Params.MIPGap = float(gap)
            t0 = time.perf_counter()
            try:
                g.optimize()
            except gp.GurobiError as exc:
                rec["status"], rec["note"] = "skipped", f"Gurobi error: {exc}"
            else:
                rec["solve_s"] = time.perf_counter() - t0
                rec["status"] = {2: "optimal", 9: "time_limit"}.get(g.Status, f"status {g.Status}")
                rec["objective"] = float(g.ObjVal) if g.SolCount else None
                rec["bound"] = float(g.ObjBound)
                rec["forward_check"] = float(np.abs(pc.get_error()).max()) if g.SolCount else None
    g.dispose()
    env.dispose()
    return rec


# ---------------------------------------------------------------------- pyscipopt-ml
def pyscipopt_ml(weights, solve, time_limit, gap, repeats, formulation="bigm"):
    """pyscipopt-ml ``add_sequential_constr`` on a float32 torch.nn.Sequential, solved by SCIP."""
    import pyscipopt as ps
    from pyscipopt_ml.torch import add_sequential_constr

    from unrectify.torch_io import to_torch

    seq = to_torch(weights, dtype="float32")

    def build():
        m = ps.Model()
        m.hideOutput()
        n0 = weights[0][0].shape[1]
        x = np.array([[m.addVar(lb=0.0, ub=1.0) for _ in range(n0)]], dtype=object)
        y = np.array([[m.addVar(lb=None, ub=None) for _ in range(weights[-1][0].shape[0])]], dtype=object)
        pc = add_sequential_constr(m, seq, x, y, formulation=formulation)
        m.setObjective(y[0, 0], "maximize")
        return m, pc, x, y

    build_s, (m, pc, x, y) = best_of(build, repeats)
    rec = {"tool": "pyscipopt-ml", "formulation": f"relu {formulation}", "vars": m.getNVars(),
           "cons": m.getNConss(), "binaries": m.getNBinVars(), "build_s": build_s}
    if solve:
        m.setParam("limits/time", float(time_limit))
        m.setParam("limits/gap", float(gap))
        t0 = time.perf_counter()
        m.optimize()
        rec["solve_s"] = time.perf_counter() - t0
        st = m.getStatus()
        rec["status"] = {"optimal": "optimal", "gaplimit": "optimal", "timelimit": "time_limit"}.get(st, st)
        if m.getNSols():
            rec["objective"] = float(m.getObjVal())
            xv = np.array([[m.getVal(v) for v in x[0]]])
            rec["forward_check"] = float(abs(FixedNetwork(weights, 0.0, 1.0).forward(xv)[0, 0] - rec["objective"]))
        else:
            rec["objective"] = None
        b = m.getDualbound()
        rec["bound"] = float(b) if np.isfinite(b) and abs(b) < 1e19 else None
    return rec


# ---------------------------------------------------------------------- unrectify, OBBT + SCIP
def ours_obbt_scip(weights, solve, time_limit, gap, repeats, samples=20000, seed=0):
    """bigm/binary with bounds from LP-OBBT over the whole network under the output cut-off
    ``y >= best sampled output`` (backends/obbt.py), solved by SCIP (scip-direct) from that
    sample.  Sampling and OBBT are counted as build time."""
    from unrectify.backends.obbt import fixed_network_bounds

    net = FixedNetwork(weights, 0.0, 1.0)
    xs = np.random.default_rng(seed).uniform(0.0, 1.0, (samples, net.n_inputs))

    def build():
        ys = net.forward(xs)[:, 0]
        best = int(np.argmax(ys))
        b = fixed_network_bounds(net, passes=1, cutoff=float(ys[best]), time_limit=time_limit)
        fm = build_output_bound_model(net, 0, "max", "bigm", "binary", bounds=b)
        return fm, xs[best]

    build_s, (fm, x0) = best_of(build, repeats)
    m = fm.model
    rec = {"tool": "unrectify", "formulation": "bigm/obbt+cutoff (SCIP)", "vars": m.n_vars,
           "cons": m.n_constraints, "binaries": m.n_integer, "build_s": build_s}
    if solve:
        be = get_backend("scip-direct", gap=gap, start=fm.point_from_input(x0[None, :]))
        raw = be.solve(m, time_limit=time_limit, guard=False)
        rec.update(solve_s=raw.seconds, status=raw.status,
                   objective=None if raw.objective is None else -raw.objective,
                   bound=None if raw.bound is None else -raw.bound)
        if raw.x is not None:
            rec["forward_check"] = float(abs(fm.net.forward(fm.input_value(raw.x))[0, 0] - rec["objective"]))
    return rec


def ours_input_bab(weights, solve, time_limit, gap):
    """No model: input-space branch and bound with CROWN bounds per box (backends/input_bab.py),
    numpy only; ``build`` is zero, ``solve`` the whole search."""
    from unrectify.fixed import optimize_output

    rec = {"tool": "unrectify", "formulation": "input-bab (CROWN)", "vars": weights[0][0].shape[1], "cons": 0,
           "binaries": 0, "build_s": 0.0}
    if solve:
        sol = optimize_output(FixedNetwork(weights, 0.0, 1.0), 0, "max", backend="input-bab",
                              time_limit=time_limit, gap=gap)
        rec.update(solve_s=sol.seconds, status=sol.solver_status, objective=sol.objective, bound=sol.bound,
                   forward_check=0.0, boxes=sol.extra["bab"]["boxes"], open_boxes=sol.extra["bab"]["open"])
    return rec


# ---------------------------------------------------------------------- driver
def agree(a, b, rtol):
    return a is not None and b is not None and abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def net_spec(text: str) -> tuple[tuple[int, ...], bool]:
    """``--nets`` item ``"10-50-50-1"`` or ``"10-50-50-1:build"`` -> ``(widths, solve)``."""
    body, sep, suffix = text.partition(":")
    if sep and suffix != "build":
        raise argparse.ArgumentTypeError(f"--nets item {text!r}: the only suffix is ':build'")
    try:
        return parse_widths(body.replace("-", ","), name=f"--nets item {text!r}"), not sep
    except InputError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (widths joined by '-', e.g. 10-50-50-1)") from None


def run_net(spec, args, log):
    widths, solve = spec
    weights = he_weights(widths, args.seed)
    name = "-".join(map(str, widths))
    recs = []
    for bounds in args.bounds:
        if bounds in ("obbt-scip", "input-bab"):
            continue   # their own rows below (SCIP; no MIP)
        if bounds == "lp" and not solve:
            continue   # LP tightening is solver work: only for networks that are solved
        recs.append(ours(weights, "bigm", bounds, solve, args.time_limit, args.gap, args.repeats))
    if have("pyscipopt") and "obbt-scip" in args.bounds:
        recs.append(ours_obbt_scip(weights, solve, args.time_limit, args.gap, args.repeats))
    if "input-bab" in args.bounds and solve:
        recs.append(ours_input_bab(weights, solve, args.time_limit, args.gap))
    recs.append(ours(weights, "complementarity", "interval", False, args.time_limit, args.gap, args.repeats))
    if have("omlt"):
        recs.append(omlt(weights, "bigm", solve, args.time_limit, args.gap, args.repeats))
        recs.append(omlt(weights, "complementarity", False, args.time_limit, args.gap, args.repeats))
    else:
        log(f"omlt not installed: {INSTALL['omlt']} (skipped)")
    if have("pyscipopt_ml") and have("torch"):
        recs.append(pyscipopt_ml(weights, solve, args.time_limit, args.gap, args.repeats))
    else:
        log(f"pyscipopt-ml not installed: {INSTALL['pyscipopt_ml']} (skipped)")
    if have("gurobi_ml") and have("torch") and have("gurobipy"):
        recs.append(gurobi_ml(weights, solve, args.time_limit, args.gap, args.repeats))
    else:
        log(f"gurobi-ml not installed: {INSTALL['gurobi_ml']} (needs torch: {INSTALL['torch']}) (skipped)")
    ref = next((r for r in recs if r["tool"] == "unrectify" and r.get("status") == "optimal"), None)
    for r in recs:
        r["net"] = name
        if ref is not None and r.get("status") == "optimal":
            r["agrees"] = agree(r["objective"], ref["objective"], 10 * args.gap)
    return recs


def ratios(recs):
    """Peer seconds / unrectify seconds on the same network (> 1: unrectify faster)."""
    out = []
    for net in dict.fromkeys(r["net"] for r in recs):
        rs = {(r["tool"], r["formulation"]): r for r in recs if r["net"] == net}
        base = rs.get(("unrectify", "bigm/interval"))
        comp = rs.get(("unrectify", "complementarity/interval"))
        for key, mine in ((("omlt", "bigm"), base), (("gurobi-ml", "relu max-constr"), base),
                          (("omlt", "complementarity"), comp)):
            peer = rs.get(key)
            if peer is None or mine is None:
                continue
            row = {"net": net, "peer": f"{key[0]} {key[1]}", "build_ratio": peer["build_s"] / mine["build_s"]}
            if peer.get("solve_s") and mine.get("solve_s"):
                row["solve_ratio"] = peer["solve_s"] / mine["solve_s"]
            out.append(row)
    return out


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", type=net_spec,
                    default=[net_spec(s) for s in ("2-16-16-1", "5-32-32-1", "10-50-50-1:build", "784-256-256-10:build")],
                    help="widths joined by '-', suffix ':build' to skip solving")
    ap.add_argument("--time-limit", type=positive_float, default=60.0)
    ap.add_argument("--gap", type=nonnegative_float, default=1e-6, help="relative MIP gap for every solver")
    ap.add_argument("--repeats", type=positive_int, default=3, help="builds timed (best of)")
    ap.add_argument("--seed", type=seed_int, default=0)
    ap.add_argument("--bounds", nargs="+", default=["interval", "crown"], choices=["interval", "crown", "lp", "obbt-scip", "input-bab"],
                    help="unrectify bound methods (lp: LP-based tightening by HiGHS, counted in build seconds; "
                         "obbt-scip: OBBT over the whole network under a sampled output cut-off, solved by SCIP; "
                         "input-bab: no model, input-space branch and bound with CROWN bounds)")
    ap.add_argument("--json", metavar="PATH", type=output_file_arg("--json"))
    args = ap.parse_args(argv)
    for opt, items in (("--nets", args.nets), ("--bounds", args.bounds)):
        if len(set(map(str, items))) != len(items):
            ap.error(f"{opt} names an item more than once (it would run twice)")
    t0 = time.perf_counter()
    hdr = (f"{'net':15} {'tool':10} {'formulation':20} {'vars':>6} {'cons':>6} {'bin':>5} {'build s':>9} "
           f"{'solve s':>8} {'status':10} {'max output 0':>14} {'bound':>12} agrees")
    print(hdr)
    print("-" * len(hdr))
    recs = []
    for spec in args.nets:
        for r in run_net(spec, args, lambda s: print(s, file=sys.stderr)):
            recs.append(r)
            print(f"{r['net']:15} {r['tool']:10} {r['formulation']:20} {r['vars']:>6} {r['cons']:>6} {r['binaries']:>5} "
                  f"{r['build_s']:>9.4f} {fmt(r.get('solve_s'), '>8.2f'):>8} {r.get('status', '-'):10} "
                  f"{fmt(r.get('objective'), '.10g'):>14} {fmt(r.get('bound'), '.6g'):>12} "
                  f"{'' if 'agrees' not in r else ('yes' if r['agrees'] else 'NO')} {r.get('note', '')}", flush=True)
    rat = ratios(recs)
    print("\npeer seconds / unrectify seconds (same process; > 1 means unrectify is faster):")
    for r in rat:
        print(f"  {r['net']:15} {r['peer']:28} build x{r['build_ratio']:.2f}"
              + (f"   solve x{r['solve_ratio']:.2f}" if "solve_ratio" in r else ""))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        from importlib.metadata import PackageNotFoundError, version

        versions = {}
        for mod in ("omlt", "gurobi_ml", "gurobipy", "highspy", "pyomo", "torch", "numpy", "scipy", "pyscipopt",
                    "pyscipopt_ml"):
            try:
                versions[mod] = version({"gurobi_ml": "gurobi-machinelearning", "pyscipopt_ml": "pyscipopt-ml"}.get(mod, mod))
            except PackageNotFoundError:
                versions[mod] = None
        write_json_atomic(args.json, {"args": vars(args), "versions": versions, "cpus": os.cpu_count(),
                                      "python": platform.python_version(), "runs": recs, "ratios": rat,
                                      "wall_seconds": time.perf_counter() - t0})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
