"""``unrectify cs``: the compressed-sensing application (parsing and printing only)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_RATIOS_PERCENT = "4,10,25"
DEFAULT_METHODS = "pinv,l1,tv,omp,linear,adam,alm,alm+lbfgs,res-adam,res-alm,res-alm+lbfgs"
ALL_METHODS = DEFAULT_METHODS + ",tv+res-adam,tv+res-alm+lbfgs,prior"
DEFAULT_BUDGET_S = {"digits": 4.0}  # keeps the default run (digits, 3 ratios) within 3 minutes on 2 cores
OTHER_BUDGET_S = 60.0


def add_parser(sub) -> argparse.ArgumentParser:
    c = sub.add_parser("cs", help="compressed-sensing recovery: learned ReLU decoders vs classic baselines")
    c.add_argument("--dataset", default="digits", help="digits (default), mnist, patches")
    c.add_argument("--ratios", default=DEFAULT_RATIOS_PERCENT, metavar="PERCENTS",
                   help=f"measurement ratios m/n in percent (default {DEFAULT_RATIOS_PERCENT}; paper: 1,4,10,25,40,50)")
    c.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma-separated decoders (default {DEFAULT_METHODS}; all: {ALL_METHODS})")
    c.add_argument("--train-samples", type=int, default=None, metavar="N",
                   help="training images (default: the whole training split)")
    c.add_argument("--test-samples", type=int, default=100, metavar="N", help="held-out test images (default 100)")
    c.add_argument("--noise", type=float, default=0.0, help="measurement noise standard deviation")
    c.add_argument("--snr", type=float, default=None, metavar="DB", help="measurement SNR in dB (instead of --noise)")
    c.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help=f"training time limit per learned decoder and ratio (default {DEFAULT_BUDGET_S['digits']:g} s "
                        f"on digits, {OTHER_BUDGET_S:g} s otherwise)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="cs_results", metavar="DIR", help="output folder (default cs_results)")
    c.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="decoder option, e.g. adam.epochs=30 (repeatable)")
    c.add_argument("--no-progress", action="store_true")
    return c


def cmd_cs(args) -> int:
    from unrectify.cs.errors import CSInputError
    from unrectify.cs.experiment import parse_option, results_markdown, run_cs_experiment

    try:
        ratios = [float(r) / 100.0 for r in args.ratios.split(",") if r.strip()]
    except ValueError:
        raise CSInputError(f"--ratios must be comma-separated percentages like 1,4,10, got {args.ratios!r}") from None
    bad = [r * 100 for r in ratios if not 0.0 < r <= 1.0]
    if bad or not ratios:
        raise CSInputError(f"--ratios are percentages in (0, 100], got {args.ratios!r}")
    if args.noise < 0 or args.noise != args.noise:
        raise CSInputError(f"--noise must be a non-negative number, got {args.noise}")
    options: dict[str, dict[str, Any]] = {}
    for text in args.option:
        method, key, value = parse_option(text)
        options.setdefault(method, {})[key] = value
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET_S.get(args.dataset, OTHER_BUDGET_S)
    records = run_cs_experiment(args.dataset, ratios, methods, args.train_samples, args.test_samples, args.noise,
                                args.seed, args.out, progress=not args.no_progress, method_options=options,
                                snr_db=args.snr, budget=budget)
    print(results_markdown(records))
    from pathlib import Path

    out = Path(args.out).resolve()
    figures = sorted(p.name for p in out.glob("*.png"))
    print(f"table: {out / 'results.md'}\nrecords: {out / 'results.json'}\nfigures ({out}): {', '.join(figures)}")
    return 0
