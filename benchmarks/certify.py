"""Time to certify split/binary vs split/interval (and bigm/binary, and the sign-enumerated route) with SCIP.

Grid: samples x widths x symmetry breaking x forms, one seeded instance per cell.  Prints a
table and, with --json, writes every run plus a summary (largest instance certified within the
time limit per form).  Example (the measured table in docs/benchmarks.md):

    python benchmarks/certify.py --samples 6,8,10,12,16 --widths 1,2,1 1,3,1 2,2,1 \
        --time-limit 60 --jobs 2 --json benchmarks/results/certify.json

``--forms sign-enumerated/cases --merge benchmarks/results/certify.json`` adds the exact route's
column to an earlier run (each route solve uses one process per sign case).
"""

from __future__ import annotations

from unrectify.formulations.validation import parse_widths

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from unrectify.formulations import random_instance  # noqa: E402
from unrectify import solve  # noqa: E402
from unrectify.backends import backend_names  # noqa: E402
from unrectify.atomic import write_json_atomic  # noqa: E402
from unrectify.validate import (input_file_arg, output_file_arg, positive_float, positive_int,  # noqa: E402
                                positive_int_list, seed_int, widths_arg)

FORMS = (("split", "binary"), ("split", "interval"), ("bigm", "binary"), ("sign-enumerated", "cases"))
#: the sign-enumerated route breaks both symmetries by construction (scaling: |v_j| = B per case;
#: permutation: bias order per sign class), so it runs only in the "sym" column
ROUTE_FORM = ("sign-enumerated", "cases")


def run_cell(n, widths, sb, enc, dom, time_limit, backend, seed):
    p = random_instance(n, widths, seed)
    if (enc, dom) == ROUTE_FORM:
        from unrectify.backends.cases import solve_sign_enumerated

        s = solve_sign_enumerated(p, time_limit=time_limit)
    else:
        s = solve(p, enc, dom, backend=backend, time_limit=time_limit, symmetry_breaking="all" if sb else "none")
    return {"samples": n, "widths": ",".join(map(str, widths)), "symmetry_breaking": sb, "encoding": enc,
            "domain": dom, "status": s.status, "objective": s.objective, "bound": s.bound,
            "gap": s.gap, "seconds": round(s.seconds, 3), "certified": bool(s.certified_optimal),
            "binaries": s.model_stats.get("integer_variables"), "variables": s.model_stats.get("variables")}


def summarise(rows, time_limit):
    out = {}
    for enc, dom in FORMS:
        for sb in (False, True):
            ok = [r for r in rows if r["encoding"] == enc and r["domain"] == dom and r["symmetry_breaking"] == sb
                  and r["certified"] and r["seconds"] <= time_limit]
            key = f"{enc}/{dom}/{'sb' if sb else 'plain'}"
            out[key] = {"certified": len(ok),
                        "largest": max(((r["samples"], r["widths"]) for r in ok), default=None),
                        "mean_seconds_certified": (sum(r["seconds"] for r in ok) / len(ok)) if ok else None}
    return out


def to_markdown(rows, time_limit) -> str:
    """Table: one line per (widths, N); cells = seconds to certify, or '>limit (gap)'."""
    cols = [(e, d, sb) for sb in (False, True) for e, d in FORMS if sb or (e, d) != ROUTE_FORM]
    head = "| widths | N | " + " | ".join(f"{e}/{d} {'sym' if sb else 'plain'}" for e, d, sb in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    keys = sorted({(r["widths"], r["samples"]) for r in rows})
    index = {(r["widths"], r["samples"], r["encoding"], r["domain"], r["symmetry_breaking"]): r for r in rows}
    for w, n in keys:
        cells = []
        for e, d, sb in cols:
            r = index.get((w, n, e, d, sb))
            if r is None:
                cells.append("")
            elif r["certified"]:
                cells.append(f"**{r['seconds']:.1f}**")
            else:
                cells.append(f">{time_limit:g} ({r['status']})")
        lines.append(f"| {w} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default="6,8,10,12,16", type=positive_int_list)
    ap.add_argument("--widths", nargs="+", default=["1,2,1", "1,3,1", "2,2,1"], type=widths_arg)
    ap.add_argument("--time-limit", type=positive_float, default=60.0)
    ap.add_argument("--backend", default="scip", choices=["auto", *backend_names()])
    ap.add_argument("--seed", type=seed_int, default=0)
    ap.add_argument("--symmetry", choices=["both", "on", "off"], default="both",
                    help="on = permutation + scaling symmetry breaking (identical in every form), off = none")
    ap.add_argument("--forms", default=",".join(f"{e}/{d}" for e, d in FORMS),
                    help="comma-separated forms to run (default all; sign-enumerated/cases is the exact route "
                         "of unrectify.backends.cases)")
    ap.add_argument("--merge", metavar="JSON", type=input_file_arg("--merge"), help="keep the runs of an earlier --json file for cells not run now")
    ap.add_argument("--jobs", type=positive_int, default=1, help="solves run in parallel (one core each)")
    ap.add_argument("--json", metavar="PATH", type=output_file_arg("--json"))
    ap.add_argument("--markdown-from", metavar="JSON", type=input_file_arg("--markdown-from"), help="only print the markdown table of an earlier --json run")
    args = ap.parse_args(argv)
    if args.markdown_from:
        given = [f"--{k.replace('_', '-')}" for k in ("samples", "widths", "time_limit", "backend", "symmetry", "forms",
                                                      "merge", "jobs", "json") if getattr(args, k) != ap.get_default(k)]
        if given:
            ap.error(f"--markdown-from only prints a table; {', '.join(given)} would be ignored")
        try:
            with open(args.markdown_from) as fh:
                doc = json.load(fh)
            table = to_markdown(doc["runs"], doc["time_limit"])
        except (ValueError, KeyError, TypeError) as exc:
            ap.error(f"--markdown-from {args.markdown_from} is not the JSON of a certify.py --json run ({exc!r:.80})")
        print(table)
        return 0
    samples = [int(s) for s in args.samples.split(",")]
    widths = [parse_widths(w, name="--widths") for w in args.widths]
    sbs = {"both": (False, True), "on": (True,), "off": (False,)}[args.symmetry]
    # True -> "all" kinds (permutation + scaling), False -> none
    forms = [tuple(f.split("/")) for f in args.forms.split(",") if f]
    if len(set(forms)) != len(forms):
        ap.error(f"--forms names a form more than once: {args.forms}")
    for f in forms:
        if f not in FORMS:
            ap.error(f"unknown form {'/'.join(f)}; choose from {', '.join(e + '/' + d for e, d in FORMS)}")
    cells = [(n, w, sb, e, d) for w in widths for n in samples for sb in sbs for e, d in forms
             if sb or (e, d) != ROUTE_FORM]
    rows = []
    if args.merge:
        try:
            with open(args.merge) as fh:
                old = json.load(fh)["runs"]
            old = [r for r in old if isinstance(r, dict) and {"samples", "widths", "symmetry_breaking", "encoding",
                                                                "domain"} <= set(r)]
        except (ValueError, KeyError, TypeError) as exc:
            ap.error(f"--merge {args.merge} is not the JSON of a certify.py --json run ({exc!r:.80})")
        fresh = {(n, ",".join(map(str, w)), sb, e, d) for n, w, sb, e, d in cells}
        rows = [r for r in old if (r["samples"], r["widths"], r["symmetry_breaking"], r["encoding"], r["domain"])
                not in fresh]
    t0 = time.perf_counter()
    hdr = f"{'N':>3} {'widths':7} {'sb':3} {'form':16} {'status':10} {'objective':>12} {'gap':>9} {'seconds':>8}"
    print(hdr)
    print("-" * len(hdr))
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futs = [ex.submit(run_cell, n, w, sb, e, d, args.time_limit, args.backend, args.seed) for n, w, sb, e, d in cells]
        for f in as_completed(futs):
            r = f.result()
            rows.append(r)
            obj = "-" if r["objective"] is None else f"{r['objective']:.6g}"
            gap = "-" if r["gap"] is None else f"{r['gap']:.1e}"
            print(f"{r['samples']:>3} {r['widths']:7} {'on' if r['symmetry_breaking'] else 'off':3} "
                  f"{r['encoding'] + '/' + r['domain']:16} {r['status']:10} {obj:>12} {gap:>9} {r['seconds']:>8.1f}",
                  flush=True)
    rows.sort(key=lambda r: (r["widths"], r["samples"], r["symmetry_breaking"], r["encoding"], r["domain"]))
    summary = summarise(rows, args.time_limit)
    print("\nlargest instance certified within the limit (samples, widths):")
    for k, v in summary.items():
        print(f"  {k:28s} {v['certified']:3d} certified, largest {v['largest']}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        write_json_atomic(args.json, {"time_limit": args.time_limit, "backend": args.backend, "seed": args.seed,
                                      "wall_seconds": time.perf_counter() - t0, "runs": rows, "summary": summary})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
