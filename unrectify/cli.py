"""Command line: ``unrectify verify`` (and ``unrectify cs``).  Parses, calls the API, prints."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from unrectify.formulations import BUILTIN, UnrectifyError, random_instance

#: the built-in default instance of `unrectify verify` (certifies in well under 2 minutes)
DEFAULT_SAMPLES = 8
DEFAULT_SEED = 0
DEFAULT_WIDTHS = "1,2,1"


class CLIError(UnrectifyError, ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")
        sys.stderr.write(f"{self.prog}: error: {one_line}\n")
        sys.exit(2)


def _widths(text: str) -> tuple[int, ...]:
    try:
        w = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers like 1,2,1, got {text!r}") from None
    return w


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unrectify", description="Train ReLU networks as constrained optimisation problems.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    v = sub.add_parser("verify", help="check optimality preservation of ReLU encodings on one instance")
    src = v.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="FILE.npz", help="arrays X (N x n0) and Y (N x nL)")
    src.add_argument("--samples", type=int, default=None, metavar="N",
                     help=f"generate an instance with N samples (default {DEFAULT_SAMPLES})")
    v.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the generated instance")
    v.add_argument("--widths", type=_widths, default=None, metavar="n0,n1,...,nL",
                   help=f"layer widths incl. input and output (default {DEFAULT_WIDTHS})")
    v.add_argument("--loss", default="mse", help="mse (default) or mae")
    v.add_argument("--weight-bound", type=float, default=2.0, metavar="B", help="box |W|,|b| <= B (default 2)")
    v.add_argument("--encodings", type=_names, default=list(BUILTIN),
                   help=f"comma-separated encodings (default {','.join(BUILTIN)})")
    v.add_argument("--backend", default="auto",
                   help="auto (default), scip, gurobi, highs, cvxpy, alm, or several: auto,alm")
    v.add_argument("--restarts", type=int, default=None, metavar="K",
                   help="ALM restarts (best certified forward loss kept; default 10)")
    v.add_argument("--time-limit", type=float, default=60.0, metavar="SEC", help="wall-clock seconds per solve")
    v.add_argument("--symmetry-breaking", nargs="?", const="all", default="all", metavar="KINDS",
                   help="added identically to every form: permutation (order hidden biases), scaling "
                        "(single-output read-out weights on the box), all (default), none")
    v.add_argument("--json", metavar="PATH", help="write runs and verdicts as JSON")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.add_argument("--sweep", metavar="SPEC.toml",
                   help="run the grid of a TOML sweep spec on Dask, resumable (docs/sweeps.md)")
    v.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --sweep: an existing Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    v.add_argument("--results", metavar="PATH",
                   help="with --sweep: JSON-lines results file, appended to and resumed from "
                        "(default: <spec name>.results.jsonl)")
    v.add_argument("--workers", type=int, metavar="N", help="with --sweep: local cluster size (default: CPU count)")
    from .cs_cli import add_parser as add_cs_parser
    add_cs_parser(sub)
    return p


def _fmt(x, spec=".6g") -> str:
    return "-" if x is None else format(x, spec)


def print_report(report, out=sys.stdout) -> None:
    rows = [("encoding", "domain", "backend", "status", "objective", "bound", "forward_loss", "max_viol", "seconds")]
    for s in report.runs:
        rows.append((s.encoding, s.domain, s.backend, s.status, _fmt(s.objective, ".8g"), _fmt(s.bound, ".8g"),
                     _fmt(s.forward_loss, ".8g"), _fmt(s.max_violation, ".1e"), f"{s.seconds:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)
    print(file=out)
    routes = [(s.encoding, s.domain, s.extra.get("route")) for s in report.runs if s.extra.get("route")]
    for enc, dom, route in routes:
        print(f"route {enc}/{dom}: {route}", file=out)
    if routes:
        print(file=out)
    print("verdicts:", file=out)
    for v in report.verdicts:
        if v.backend is not None:
            print(f"  {v.encoding + ' (' + v.backend + ')':16s} {'LOCAL':10s} {v.reason}", file=out)
            continue
        label = {True: "TIGHT", False: "NOT TIGHT", None: "UNDECIDED"}[v.tight]
        print(f"  {v.encoding:16s} {label:10s} {v.reason}", file=out)


def cmd_verify(args) -> int:
    from .io import load_problem
    from .verify import verify

    if args.sweep:
        if args.data or args.samples is not None or args.json:
            raise CLIError("--sweep takes its instances from the spec: drop --data, --samples and --json")
        from .sweep import cmd_sweep
        return cmd_sweep(args)
    if args.scheduler or args.results or args.workers is not None:
        raise CLIError("--scheduler, --results and --workers need --sweep")

    import math
    import os

    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise CLIError(f"--time-limit must be a positive number of seconds, got {args.time_limit:g}")
    if not args.encodings:
        raise CLIError("--encodings names no encoding")
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(d):
            raise CLIError(f"--json directory does not exist: {d}")
        if os.path.isdir(args.json):
            raise CLIError(f"--json names a directory, not a file: {args.json}")
    if args.data:
        problem = load_problem(args.data, args.widths, args.loss, args.weight_bound)
        source = args.data
    else:
        widths = args.widths or _widths(DEFAULT_WIDTHS)
        n = DEFAULT_SAMPLES if args.samples is None else args.samples
        problem = random_instance(n, widths, args.seed, args.loss, args.weight_bound)
        source = f"generated (samples={n}, seed={args.seed})"
    from unrectify.formulations import get_encoding
    from unrectify.backends import backend_names
    for e in args.encodings:
        get_encoding(e)
    from .verify import backend_list
    for b in backend_list(args.backend):
        if b not in ("auto", "alm") and b not in backend_names():
            from unrectify.backends import get_backend
            get_backend(b)  # raises the one-line unknown-backend error
    options = {}
    if "alm" in backend_list(args.backend) or args.restarts is not None:
        if args.restarts is not None and args.restarts < 1:
            raise CLIError(f"--restarts must be a positive integer, got {args.restarts}")
        options["restarts"] = 10 if args.restarts is None else args.restarts
    n_runs = sum(len(get_encoding(e).domains) for e in args.encodings) * len(backend_list(args.backend))
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=n_runs, desc="verify", unit="solve", file=sys.stderr, leave=False, delay=1.0)

    def on_run(sol):
        if bar is not None:
            bar.set_postfix_str(f"{sol.encoding}/{sol.domain}: {sol.status}")
            bar.update(1)

    print(f"instance: {source}; widths {','.join(map(str, problem.widths))}; loss {problem.loss}; "
          f"B = {problem.weight_bound:g}; symmetry breaking {args.symmetry_breaking}")
    try:
        report = verify(problem, args.encodings, args.backend, args.time_limit, args.symmetry_breaking, on_run=on_run,
                        **options)
    finally:
        if bar is not None:
            bar.close()
    report.problem["source"] = source
    print_report(report)
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            return cmd_verify(args)
        if args.command == "cs":
            from .cs_cli import cmd_cs
            return cmd_cs(args)
    except (UnrectifyError, ValueError, ImportError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"unrectify: error: {msg}\n")
        return 2
    except MemoryError:
        sys.stderr.write("unrectify: error: not enough memory for this instance\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("unrectify: interrupted\n")
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
