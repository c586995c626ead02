"""Command line: ``unrectify verify`` (and ``unrectify cs``).  Parses, validates, calls the API, prints.

Everything a command needs is checked before any work starts (unrepresentable arguments,
options the chosen mode would ignore, input files, output paths, memory); bad input ends with
exit code 2 and one line on stderr naming the argument.  Ctrl-C (SIGINT) and SIGTERM stop
cleanly: what finished is printed (and written), what was lost is said, and the exit code is
130 or 143.  A closed stdout (``unrectify verify | head -3``) ends quietly (exit 141).
See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Sequence

from unrectify.formulations import BUILTIN, UnrectifyError, random_instance
from unrectify.formulations.errors import CLIError

from .validate import (input_file, name_list, output_file, positive_float, seed_int,
                       positive_int, widths_arg)

#: the built-in default instance of `unrectify verify` (certifies in well under 2 minutes)
DEFAULT_SAMPLES = 8
DEFAULT_SEED = 0
DEFAULT_WIDTHS = (1, 2, 1)
DEFAULT_LOSS = "mse"
DEFAULT_WEIGHT_BOUND = 2.0
DEFAULT_BACKEND = "auto"
DEFAULT_TIME_LIMIT = 60.0
DEFAULT_SYMMETRY = "all"

EXIT_BAD_INPUT = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_BROKEN_PIPE = 141

#: options that define a single verify instance (refused with --sweep, whose spec defines them)
INSTANCE_OPTIONS = (("data", "--data"), ("samples", "--samples"), ("seed", "--seed"), ("widths", "--widths"),
                    ("loss", "--loss"), ("weight_bound", "--weight-bound"), ("encodings", "--encodings"),
                    ("backend", "--backend"), ("restarts", "--restarts"), ("time_limit", "--time-limit"),
                    ("symmetry_breaking", "--symmetry-breaking"), ("json", "--json"))
SWEEP_OPTIONS = (("scheduler", "--scheduler"), ("results", "--results"), ("workers", "--workers"))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so every clean-up path runs."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (no usage block)
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")
        sys.stderr.write(f"{self.prog}: error: {one_line}\n")
        sys.exit(EXIT_BAD_INPUT)


def _version() -> str:
    from . import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unrectify", description="Train ReLU networks as constrained optimisation problems.")
    p.add_argument("--version", action="version", version=f"unrectify {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    v = sub.add_parser("verify", help="check optimality preservation of ReLU encodings on one instance")
    src = v.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="FILE.npz", help="arrays X (N x n0) and Y (N x nL)")
    src.add_argument("--samples", type=positive_int, default=None, metavar="N",
                     help=f"generate an instance with N samples (default {DEFAULT_SAMPLES})")
    v.add_argument("--seed", type=seed_int, default=None, help=f"seed of the generated instance (default {DEFAULT_SEED})")
    v.add_argument("--widths", type=widths_arg, default=None, metavar="n0,n1,...,nL",
                   help=f"layer widths incl. input and output (default {','.join(map(str, DEFAULT_WIDTHS))})")
    v.add_argument("--loss", default=None, help="mse (default) or mae")
    v.add_argument("--weight-bound", type=positive_float, default=None, metavar="B",
                   help=f"box |W|,|b| <= B (default {DEFAULT_WEIGHT_BOUND:g})")
    v.add_argument("--encodings", default=None,
                   help=f"comma-separated encodings (default {','.join(BUILTIN)})")
    v.add_argument("--backend", default=None,
                   help="auto (default), scip, gurobi, highs, cvxpy, alm, or several: auto,alm")
    v.add_argument("--restarts", type=positive_int, default=None, metavar="K",
                   help="ALM restarts (best certified forward loss kept; default: the ALM backend's, 10); "
                        "refused when no run uses a backend that takes restarts")
    v.add_argument("--time-limit", type=positive_float, default=None, metavar="SEC",
                   help=f"wall-clock seconds per solve (default {DEFAULT_TIME_LIMIT:g})")
    v.add_argument("--symmetry-breaking", nargs="?", const="all", default=None, metavar="KINDS",
                   help="added identically to every form: permutation (order hidden biases), scaling "
                        "(single-output read-out weights on the box), all (default), none")
    v.add_argument("--json", metavar="PATH", help="write runs and verdicts as JSON (atomically)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.add_argument("--sweep", metavar="SPEC.toml",
                   help="run the grid of a TOML sweep spec on Dask, resumable (docs/sweeps.md)")
    v.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --sweep: an existing Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    v.add_argument("--results", metavar="PATH",
                   help="with --sweep: JSON-lines results file, appended to and resumed from "
                        "(default: <spec file name>.results.jsonl)")
    v.add_argument("--workers", type=positive_int, metavar="N",
                   help="with --sweep: local cluster size (default: CPU count)")
    from .cs_cli import add_parser as add_cs_parser
    add_cs_parser(sub)
    return p


def _fmt(x, spec=".6g") -> str:
    return "-" if x is None else format(x, spec)


def print_table(runs, out=None) -> None:
    out = out or sys.stdout
    rows = [("encoding", "domain", "backend", "status", "objective", "bound", "forward_loss", "max_viol", "seconds")]
    for s in runs:
        rows.append((s.encoding, s.domain, s.backend, s.status, _fmt(s.objective, ".8g"), _fmt(s.bound, ".8g"),
                     _fmt(s.forward_loss, ".8g"), _fmt(s.max_violation, ".1e"), f"{s.seconds:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)


def print_report(report, out=None) -> None:
    out = out or sys.stdout
    print_table(report.runs, out)
    routes = [(s, s.route) for s in report.runs if s.route and not s.global_solver]   # auto did not certify
    if routes:
        print(file=out)
        print("routed away from certification (backend auto):", file=out)
        for s, why in routes:
            print(f"  {s.encoding}/{s.domain} -> {s.backend}: {why}", file=out)
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


def _given(args, options) -> list[str]:
    return [flag for dest, flag in options if getattr(args, dest, None) not in (None, False)]


def known_backends() -> list[str]:
    from unrectify.backends import backend_names

    return [DEFAULT_BACKEND] + backend_names()


def _taking(option: str) -> list[str]:
    """Registered backends that declare keyword option ``option`` (e.g. ``restarts``)."""
    from unrectify.backends import backend_class, backend_names

    return [n for n in backend_names() if option in (backend_class(n).option_names or ())]


def _forms(encodings: Sequence[str]) -> list[tuple[str, str]]:
    from unrectify.formulations import get_encoding

    return [(e, d) for e in encodings for d in get_encoding(e).domains]


def _check_named_backends_run(encodings: Sequence[str], backends: Sequence[str]) -> None:
    """Refuse a named backend that takes none of the requested forms (it would run nothing)."""
    from unrectify.backends import backend_class

    forms = _forms(encodings)
    for name in backends:
        if name == DEFAULT_BACKEND:
            continue
        reasons = [backend_class(name).takes(None, e, d) for e, d in forms]
        if all(reasons):
            raise CLIError(f"--backend {name} would run nothing with --encodings {','.join(encodings)}: "
                           f"{reasons[0]}")


def _reached(problem, encodings: Sequence[str], backends: Sequence[str], symmetry, among: Sequence[str]) -> list[str]:
    """Those of the backends ``among`` that some run of this request reaches: named in ``backends``
    and taking one of the forms, or chosen for one of them by ``auto`` (capability flags and
    :func:`unrectify.routing.route` only; nothing is solved)."""
    from unrectify.backends import backend_class

    from .routing import route

    reached = []
    for name in among:
        cls = backend_class(name)
        forms = [(e, d) for e, d in _forms(encodings) if cls.takes(problem, e, d) is None]
        if not forms:
            continue
        if name in backends or (DEFAULT_BACKEND in backends
                                and any(route(problem, e, d, symmetry).backend == name for e, d in forms)):
            reached.append(name)
    return reached


def prepare_verify(args) -> dict:
    """Validate every verify argument and build the instance; nothing is solved or written."""
    given_sweep = _given(args, SWEEP_OPTIONS)
    if given_sweep:
        raise CLIError(f"{', '.join(given_sweep)} need --sweep")
    from unrectify.formulations import available_encodings

    from .io import load_problem

    encodings = name_list(args.encodings, "--encodings", available_encodings()) if args.encodings is not None \
        else list(BUILTIN)
    backends = name_list(args.backend, "--backend", known_backends()) if args.backend is not None \
        else [DEFAULT_BACKEND]
    _check_named_backends_run(encodings, backends)
    if args.json is not None:
        output_file(args.json, "--json", inputs=[args.data])
    loss = DEFAULT_LOSS if args.loss is None else args.loss
    bound = DEFAULT_WEIGHT_BOUND if args.weight_bound is None else args.weight_bound
    sym = DEFAULT_SYMMETRY if args.symmetry_breaking is None else args.symmetry_breaking
    from unrectify.formulations.builder import symmetry_kinds

    if not sym.strip():
        raise CLIError("--symmetry-breaking is empty; give permutation, scaling, all or none")
    kinds = symmetry_kinds(sym)  # unknown, repeated or mixed kinds fail here
    if args.data is not None:
        if args.seed is not None:
            raise CLIError("--seed applies to a generated instance (--samples), not to --data")
        input_file(args.data, "--data")
        problem = load_problem(args.data, args.widths, loss, bound)
        source = args.data
    else:
        widths = args.widths or DEFAULT_WIDTHS
        n = DEFAULT_SAMPLES if args.samples is None else args.samples
        seed = DEFAULT_SEED if args.seed is None else args.seed
        problem = random_instance(n, widths, seed, loss, bound)
        source = f"generated (samples={n}, seed={seed})"
    if "scaling" in kinds and sym != "all" and problem.widths[-1] != 1:
        raise CLIError(f"--symmetry-breaking scaling needs a single-output network; widths "
                       f"{','.join(map(str, problem.widths))} have {problem.widths[-1]} outputs")
    time_limit = DEFAULT_TIME_LIMIT if args.time_limit is None else args.time_limit
    from unrectify.backends import backend_class

    # backends that take restarts, and problem-level ones (no model is built, so only their own
    # estimate can refuse an impossible request before it fills the memory)
    takers = _taking("restarts")
    among = [n for n in known_backends()[1:] if n in takers or backend_class(n).capabilities.level == "problem"]
    reached = _reached(problem, encodings, backends, sym, among)
    options = {}
    if args.restarts is not None:   # the default is the backend's own (one place)
        if not any(n in takers for n in reached):
            raise CLIError(f"--restarts applies to the {', '.join(takers)} backend only; no run of --backend "
                           f"{','.join(backends)} with these encodings and this instance uses it")
        options["restarts"] = args.restarts
    for name in reached:   # memory and first-update time, before any work
        backend_class(name).check_resources(problem, time_limit, **options)
    return {"problem": problem, "source": source, "encodings": encodings, "backends": backends,
            "time_limit": time_limit, "symmetry": sym, "options": options}


def cmd_verify(args) -> int:
    if args.sweep:
        given = _given(args, INSTANCE_OPTIONS)
        if given:
            raise CLIError(f"--sweep takes its instances and solver settings from the spec; drop {', '.join(given)}")
        input_file(args.sweep, "--sweep")
        if args.results is not None:
            output_file(args.results, "--results", inputs=[args.sweep])
        from .sweep import cmd_sweep
        return cmd_sweep(args)

    job = prepare_verify(args)
    from unrectify.formulations import get_encoding

    from .verify import verify

    problem = job["problem"]
    n_runs = sum(len(get_encoding(e).domains) for e in job["encodings"]) * len(job["backends"])
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=n_runs, desc="verify", unit="solve", file=sys.stderr, leave=False, delay=1.0)
    finished = []

    def on_run(sol):
        finished.append(sol)
        if bar is not None:
            bar.set_postfix_str(f"{sol.encoding}/{sol.domain}: {sol.status}")
            bar.update(1)

    def on_start():
        print(f"instance: {job['source']}; widths {','.join(map(str, problem.widths))}; loss {problem.loss}; "
              f"B = {problem.weight_bound:g}; symmetry breaking {job['symmetry']}", flush=True)

    try:
        report = verify(problem, job["encodings"], ",".join(job["backends"]), job["time_limit"], job["symmetry"],
                        on_run=on_run, on_start=on_start, **job["options"])
    except KeyboardInterrupt as exc:
        if bar is not None:
            bar.close()
        return _verify_interrupted(args, job, finished, n_runs, exc)
    finally:
        if bar is not None:
            bar.close()
    report.problem["source"] = job["source"]
    print_report(report)
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _verify_interrupted(args, job, finished, n_runs: int, exc: BaseException) -> int:
    """Print (and write) the runs that finished; say what was lost."""
    what = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
    if finished:
        print_table(finished)
    lost = n_runs - len(finished)
    where = ""
    if args.json and finished:
        from .atomic import write_json_atomic
        from .verify import VerifyReport

        report = VerifyReport(problem=job["problem"].describe() | {"source": job["source"], "interrupted": True,
                                                                   "time_limit": job["time_limit"]},
                              runs=list(finished))
        write_json_atomic(args.json, report.to_dict())
        where = f" and written to {args.json} (marked interrupted)"
    kept = f" (shown above{where})" if finished else ""
    sys.stderr.write(f"unrectify: interrupted by {what}: {len(finished)} of {n_runs} solves finished{kept}; "
                     f"lost: the solve in progress and {max(lost - 1, 0)} not started; no verdicts\n")
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    global _TERMINATED
    _TERMINATED = False
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:   # not the main thread (e.g. called from a worker): leave signals alone
        previous = None
    try:
        if args.command == "verify":
            code = cmd_verify(args)
        elif args.command == "cs":
            from .cs_cli import cmd_cs
            code = cmd_cs(args)
        else:
            code = EXIT_BAD_INPUT
        if code in (EXIT_SIGINT,) and _terminated_flag():
            code = EXIT_SIGTERM
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except (UnrectifyError, ValueError, ImportError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"unrectify: error: {msg}\n")
        return EXIT_BAD_INPUT
    except MemoryError:
        sys.stderr.write("unrectify: error: not enough memory for this instance\n")
        return EXIT_BAD_INPUT
    except Terminated:
        sys.stderr.write("unrectify: terminated (SIGTERM)\n")
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        sys.stderr.write("unrectify: interrupted\n")
        return EXIT_SIGINT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_TERMINATED = False


def _terminated_flag() -> bool:
    return _TERMINATED


def _on_sigterm(signum, frame) -> None:
    """Record that SIGTERM (not Ctrl-C) stopped the run and unwind like Ctrl-C."""
    global _TERMINATED
    _TERMINATED = True
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
