"""``unrectify cs``: the compressed-sensing application (validation, parsing and printing only).

Every argument, every ``--option`` (by building each decoder once with its options) and the
output folder are checked before any data is loaded or any folder is created.  Results are
written atomically; on Ctrl-C or SIGTERM the records finished so far stay in
``OUT/results.partial.json`` and the command says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from .validate import (CLIError, finite_float, name_list, nonnegative_float, output_dir, positive_float, seed_int,
                       positive_int)

DEFAULT_RATIOS_PERCENT = "4,10,25"
DEFAULT_METHODS = "pinv,l1,tv,omp,linear,adam,alm,alm+lbfgs,res-adam,res-alm,res-alm+lbfgs"
ALL_METHODS = DEFAULT_METHODS + (",tv+res-adam,tv+res-alm,tv+res-alm+lbfgs,adaptive-tv+res-adam,adaptive-tv+res-alm,"
                                 "adaptive-tv+res-alm+lbfgs,prior")
#: --noise and --snr ranges: beyond them the measurements are noise only (and squares overflow)
MAX_NOISE = 1e6
MIN_SNR_DB, MAX_SNR_DB = -120.0, 300.0   # as unrectify.cs.experiment (not imported here: the CLI starts fast)
DEFAULT_BUDGET_S = {"digits": 4.0}  # keeps the default run (digits, 3 ratios) within 3 minutes on 2 cores
OTHER_BUDGET_S = 60.0


def add_parser(sub) -> argparse.ArgumentParser:
    c = sub.add_parser("cs", help="compressed-sensing recovery: learned ReLU decoders vs classic baselines")
    c.add_argument("--dataset", default="digits", help="digits (default), mnist, patches")
    c.add_argument("--ratios", default=DEFAULT_RATIOS_PERCENT, metavar="PERCENTS",
                   help=f"measurement ratios m/n in percent (default {DEFAULT_RATIOS_PERCENT}; paper: 1,4,10,25,40,50)")
    c.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma-separated decoders, or all (default {DEFAULT_METHODS}; all: {ALL_METHODS})")
    c.add_argument("--train-samples", type=positive_int, default=None, metavar="N",
                   help="training images (default: the whole training split)")
    c.add_argument("--test-samples", type=positive_int, default=100, metavar="N",
                   help="held-out test images (default 100)")
    c.add_argument("--noise", type=nonnegative_float, default=None,
                   help=f"measurement noise standard deviation (default 0, at most {MAX_NOISE:g})")
    c.add_argument("--snr", type=finite_float, default=None, metavar="DB",
                   help=f"measurement SNR in dB (instead of --noise), {MIN_SNR_DB:g} to {MAX_SNR_DB:g}")
    c.add_argument("--budget", type=positive_float, default=None, metavar="SECONDS",
                   help=f"training time limit per learned decoder and ratio (default {DEFAULT_BUDGET_S['digits']:g} s "
                        f"on digits, {OTHER_BUDGET_S:g} s otherwise)")
    c.add_argument("--seed", type=seed_int, default=0)
    c.add_argument("--out", default="cs_results", metavar="DIR", help="output folder (default cs_results)")
    c.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="decoder option, e.g. adam.epochs=30 (repeatable)")
    c.add_argument("--no-progress", action="store_true")
    return c


def _ratios(text: str) -> list[float]:
    parts = [r.strip() for r in text.split(",")]
    try:
        values = [float(r) for r in parts]
    except ValueError:
        raise CLIError(f"--ratios must be comma-separated percentages like 1,4,10, got {text!r}") from None
    if not values or any(not (0.0 < v <= 100.0) for v in values):   # NaN fails the comparison too
        raise CLIError(f"--ratios are percentages in (0, 100], got {text!r}")
    if len(set(values)) != len(values):
        raise CLIError(f"--ratios names a ratio more than once, got {text!r}")
    return [v / 100.0 for v in values]


def _check_measurements(text: str, ratios: list[float], n: int, dataset: str) -> None:
    """Every ratio must give at least one measurement of the ``n`` pixels, and distinct ratios
    distinct counts ``m = round(ratio n)`` (else two rows would be the same experiment)."""
    m = [int(round(r * n)) for r in ratios]
    hint = " (--ratios are percentages: 33 means m/n = 0.33)" if max(ratios) < 0.01 else ""
    if min(m) < 1:
        small = [f"{100 * r:g}" for r, k in zip(ratios, m) if k < 1]
        raise CLIError(f"--ratios {', '.join(small)} % give{'s' if len(small) == 1 else ''} no measurement of the {n} pixels of {dataset} "
                       f"(give at least {100 / n:.3g}){hint}")
    same = sorted({k for k in m if m.count(k) > 1})
    if same:
        raise CLIError(f"--ratios {text!r} give the same number of measurements m = {same[0]} of the {n} pixels "
                       f"of {dataset} twice")
    if hint:
        sys.stderr.write(f"unrectify: note: --ratios {text} read as percentages, m = {', '.join(map(str, m))} "
                         f"of {n} pixels{hint}\n")


def prepare_cs(args) -> dict[str, Any]:
    """Validate every ``cs`` argument; nothing is loaded, created or written."""
    from unrectify.cs.datasets import image_shape
    from unrectify.cs.decoders import available_decoders
    from unrectify.cs.experiment import _check_inputs, check_decoder_options, parse_option

    n = math.prod(image_shape(args.dataset))   # unknown data set -> one line naming the valid ones
    ratios = _ratios(args.ratios)
    _check_measurements(args.ratios, ratios, n, args.dataset)
    text = ALL_METHODS if args.methods.strip() == "all" else args.methods
    methods = name_list(text, "--methods", sorted(set(available_decoders()) | set(ALL_METHODS.split(","))))
    options: dict[str, dict[str, Any]] = {}
    for text in args.option:
        method, key, value = parse_option(text)
        if method not in methods:
            raise CLIError(f"--option {text!r} is for decoder {method!r}, which is not among --methods "
                           f"{','.join(methods)} (it would be ignored)")
        if key in options.get(method, {}):
            raise CLIError(f"--option {method}.{key} is given more than once")
        options.setdefault(method, {})[key] = value
    if args.snr is not None and args.noise is not None:
        raise CLIError("give either --noise (absolute sd) or --snr (dB), not both")
    if args.noise is not None and args.noise > MAX_NOISE:   # images lie in [0, 1]
        raise CLIError(f"--noise {args.noise:g} is above {MAX_NOISE:g} (images lie in [0, 1])")
    if args.snr is not None and not MIN_SNR_DB <= args.snr <= MAX_SNR_DB:
        raise CLIError(f"--snr must be between {MIN_SNR_DB:g} and {MAX_SNR_DB:g} dB, got {args.snr:g}")
    args.noise = 0.0 if args.noise is None else args.noise
    _check_inputs(args.dataset, ratios, methods, args.noise, options)
    from unrectify.cs.decoders import decoder_class

    learned = [m for m in methods if getattr(decoder_class(m), "learned", False)]
    if args.budget is not None and not learned:
        raise CLIError(f"--budget applies to learned decoders; none of {','.join(methods)} is learned")
    for method, given in options.items():
        inner = given.get("inner_options")
        if "time_limit" in given or (isinstance(inner, dict) and "time_limit" in inner):
            raise CLIError(f"--option {method}.time_limit: the training time limit is set by --budget")
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET_S.get(args.dataset, OTHER_BUDGET_S)
    check_decoder_options(args.dataset, ratios, methods, options, args.seed, progress=False, budget=budget)
    output_dir(args.out, "--out")
    return {"ratios": ratios, "methods": methods, "options": options, "budget": budget}


def cmd_cs(args) -> int:
    from unrectify.cs.experiment import BLOCK_SUFFIX, output_files, results_markdown, run_cs_experiment

    job = prepare_cs(args)
    try:
        records = run_cs_experiment(args.dataset, job["ratios"], job["methods"], args.train_samples,
                                    args.test_samples, args.noise, args.seed, args.out,
                                    progress=not args.no_progress, method_options=job["options"],
                                    snr_db=args.snr, budget=job["budget"])
    except KeyboardInterrupt as exc:
        return _interrupted(args, job, exc)
    print(results_markdown(records))
    from pathlib import Path

    out = Path(args.out).resolve()
    block = any(r["dataset"].endswith(BLOCK_SUFFIX) for r in records)
    # this run's figures only (an earlier run's in the same folder are not this run's results)
    figures = [n for n in output_files(job["ratios"], block) if n.endswith(".png") and (out / n).is_file()]
    print(f"table: {out / 'results.md'}\nrecords: {out / 'results.json'}\nfigures ({out}): {', '.join(figures)}")
    return 0


def _interrupted(args, job, exc: BaseException) -> int:
    from .cli import EXIT_SIGINT, EXIT_SIGTERM, Terminated

    partial = os.path.join(args.out, "results.partial.json")
    total = len(job["ratios"]) * len(job["methods"])
    done = 0
    try:
        with open(partial) as fh:
            done = len(json.load(fh))
    except (OSError, ValueError):
        pass
    what = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
    kept = f"kept in {partial}" if done else "nothing finished"
    sys.stderr.write(f"unrectify: interrupted by {what}: {done} of {total} (ratio, method) records finished, "
                     f"{kept}; lost: the decoder in progress and {max(total - done - 1, 0)} not started; "
                     f"results.json, results.md and psnr_vs_ratio.png not written (the grid figures of "
                     f"finished ratios are)\n")
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT
