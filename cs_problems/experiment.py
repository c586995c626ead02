"""Compressed-sensing experiment: decoders x measurement ratios on one data set.

For each ratio ``r``: ``Phi = gaussian_operator(r, n, seed)``; train and test images are
measured (``Y = S Phi^T + noise``); every decoder is fitted on the TRAIN pairs and
evaluated on the held-out TEST images only. One record per (ratio, method) holds the
means over test images of PSNR (dB, capped at 100), SSIM and per-pixel MSE, plus the
reconstruction seconds per test image, the fit seconds, the training-set size ``n_train`` and
the training budget ``budget_s`` (the decoder's training time limit, its ``budget_option``; None
for closed-form and model-based decoders and for ``prior``, which trains for a number of epochs).

Noise: ``noise`` is an absolute standard deviation; ``snr_db`` instead sets it from the
measurement SNR, ``sigma = rms(Phi s over the training images) * 10^(-snr_db / 20)`` (the same
sigma for train and test measurements at a ratio). ``budget`` (seconds) is passed as the
training time limit (``time_limit``) to every decoder that has one (a per-decoder, per-ratio cap
on training); ``prior``'s ``time_limit`` is per image solve and is not set by it.

Block CS (``block_cs``, default on for ``patches``): every decoder fitted on 33 x 33 patches
also reconstructs the whole test images block by block (:mod:`unrectify.cs.blocks`, same
``Phi``); those records have ``dataset = "patches-block"`` and PSNR/SSIM on whole images.

Outputs in ``out_dir`` (each written atomically: temp file, then ``os.replace``):
``results.json`` (list of records), ``results.md`` (markdown tables), ``psnr_vs_ratio.png``
(one line per method; ``psnr_vs_ratio_block.png`` for block CS) and ``grid_ratio{r:g}.png``
(test originals vs reconstructions).
While the run is going, ``results.partial.json`` holds the records finished so far (a
complete JSON file after every decoder, removed when ``results.json`` is written), so a
long run that is stopped keeps its measured numbers.

Command line: ``unrectify cs [--dataset digits] [--ratios 4,10,25] ...`` (ratios in percent).
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unrectify.formulations.validation import MAX_SEED, integer_at_least

from .blocks import block_cs as block_cs_image, image_metrics
from .datasets import image_shape, load_dataset, load_groups, test_images
from .decoders import decoder_class, get_decoder, missing_requirements
from .errors import CSDependencyError, CSInputError
from .metrics import mean_metrics
from .operators import check_ratio, gaussian_operator, measure

DEFAULT_DATASET = "digits"
DEFAULT_RATIOS: tuple[float, ...] = (0.04, 0.10, 0.25)
DEFAULT_METHODS: tuple[str, ...] = ("pinv", "linear", "l1", "tv", "omp", "adam")
DEFAULT_TRAIN_SAMPLES = 1500
DEFAULT_TEST_SAMPLES = 100
GRID_IMAGES = 8

RECORD_KEYS: tuple[str, ...] = (
    "dataset", "ratio", "method", "psnr", "ssim", "mse", "seconds_per_image", "train_seconds",
    "fit_seconds", "n_train", "budget_s", "snr_db",
)
BLOCK_SUFFIX = "-block"
#: SNR range in dB: beyond it the measurements are noise only, and 10^(-SNR/20) overflows
MIN_SNR_DB, MAX_SNR_DB = -120.0, 300.0


# ---------------------------------------------------------------------- validation
def _check_count(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise CSInputError(f"{what} must be a positive integer or None, got {value!r}")
    return int(value)


def _check_inputs(
    dataset: str, ratios: Sequence[float], methods: Sequence[str], noise: float,
    method_options: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[list[float], list[str], dict[str, dict[str, Any]]]:
    image_shape(dataset)  # raises CSInputError naming the valid data sets
    if isinstance(ratios, (str, bytes)) or not isinstance(ratios, Sequence) or len(ratios) == 0:
        raise CSInputError(f"ratios must be a non-empty sequence of numbers in (0, 1], got {ratios!r}")
    rs = [check_ratio(r) for r in ratios]
    if len(set(rs)) != len(rs):
        raise CSInputError(f"ratios contain duplicates: {rs}")
    if isinstance(methods, str) or not isinstance(methods, Sequence) or len(methods) == 0:
        raise CSInputError(f"methods must be a non-empty sequence of decoder names, got {methods!r}")
    ms = [str(m) for m in methods]
    if len(set(ms)) != len(ms):
        raise CSInputError(f"methods contain duplicates: {ms}")
    for m in ms:
        missing = missing_requirements(decoder_class(m))  # unknown name -> CSInputError
        if missing:
            raise CSDependencyError(f"decoder {m!r} needs {', '.join(missing)}, which is not installed")
    try:
        noise_ok = math.isfinite(float(noise)) and float(noise) >= 0
    except (TypeError, ValueError):
        noise_ok = False
    if not noise_ok:
        raise CSInputError(f"noise must be a finite number >= 0, got {noise!r}")
    opts: dict[str, dict[str, Any]] = {}
    if method_options is not None and not isinstance(method_options, Mapping):
        raise CSInputError(f"method_options must map method names to dicts of options, got {method_options!r}")
    for key, value in (method_options or {}).items():
        if key not in ms:
            raise CSInputError(f"method_options given for {key!r}, which is not among methods {ms}")
        if not isinstance(value, Mapping):
            raise CSInputError(f"method_options[{key!r}] must be a dict of decoder options")
        opts[key] = dict(value)
    return rs, ms, opts


# ---------------------------------------------------------------------- output helpers
def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the package's one writer, :mod:`unrectify.atomic`)."""
    from unrectify.atomic import write_bytes_atomic

    write_bytes_atomic(path, data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _figure_png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def results_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    """Markdown tables (ratio x method): PSNR / SSIM, then seconds per image / fit seconds."""
    if not records:
        return "(no results)\n"
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    if len(datasets) > 1:
        return "\n".join(results_markdown([r for r in records if r["dataset"] == d]) for d in datasets)
    ratios = sorted({r["ratio"] for r in records})
    methods = list(dict.fromkeys(r["method"] for r in records))
    by = {(r["ratio"], r["method"]): r for r in records}
    dataset = records[0]["dataset"]

    def table(title: str, cell: Any) -> list[str]:
        lines = [f"### {title}", "", "| ratio | " + " | ".join(methods) + " |",
                 "|---|" + "---|" * len(methods)]
        for ratio in ratios:
            cells = [cell(by[(ratio, m)]) if (ratio, m) in by else "" for m in methods]
            lines.append(f"| {ratio:g} | " + " | ".join(cells) + " |")
        return lines + [""]

    what = "whole test images, block CS" if dataset.endswith(BLOCK_SUFFIX) else "test images"
    first = records[0]
    budgets = sorted({r.get("budget_s") for r in records if r.get("budget_s") is not None})
    snr = first.get("snr_db")
    noise = "noiseless" if not first.get("noise") else (
        f"SNR {snr:g} dB" if snr is not None else f"noise sd {first['noise']:g}")
    out = [f"## Compressed sensing on `{dataset}` ({what})", "",
           f"{first.get('n_train', '?')} training / {first.get('n_test', '?')} test images, {noise}, "
           f"training budget per learned decoder and ratio: "
           f"{', '.join(f'{b:g} s' for b in budgets) if budgets else 'none (epochs or closed form)'}.", ""]
    given = {r["method"]: r["options"] for r in records if r.get("options")}
    if given:
        out += ["Decoder options given: " + "; ".join(
            f"`{m}.{k}={v!r}`" for m, o in given.items() for k, v in o.items()) + ".", ""]
    out += table("PSNR (dB) / SSIM", lambda r: f"{r['psnr']:.2f} / {r['ssim']:.3f}")
    out += table(
        "reconstruction seconds per image / fit seconds",
        lambda r: f"{r['seconds_per_image']:.2e} / {r['train_seconds']:.2f}",
    )
    out += _comparison_lines(ratios, methods, by)
    return "\n".join(out)


TWINS: tuple[tuple[str, str], ...] = (
    ("alm", "adam"), ("alm+lbfgs", "adam"), ("res-alm", "res-adam"), ("res-alm+lbfgs", "res-adam"),
    ("tv+res-alm", "tv+res-adam"), ("tv+res-alm+lbfgs", "tv+res-adam"),
    ("adaptive-tv+res-alm", "adaptive-tv+res-adam"), ("adaptive-tv+res-alm+lbfgs", "adaptive-tv+res-adam"),
)
"""(ALM-trained, Adam-trained) decoders with the same architecture, compared in results.md."""


def _is_learned(method: str) -> bool:
    try:
        return bool(decoder_class(method).learned)
    except CSInputError:
        return False


def _comparison_lines(ratios: Sequence[float], methods: Sequence[str], by: Mapping[Any, Any]) -> list[str]:
    """Best learned decoder vs every classic one and the learned linear decoder; ALM vs Adam twins."""
    learned = [m for m in methods if _is_learned(m) and m != "linear"]  # nonlinear learned and hybrids
    classic = [m for m in methods if not _is_learned(m)]
    twins = [(a, b) for a, b in TWINS if a in methods and b in methods]
    if not learned or not (classic or "linear" in methods):
        return []
    head = "| ratio | best learned | best classic | linear | best learned >= classic and linear |"
    lines = ["### Best nonlinear learned decoder against the classic and linear decoders (PSNR dB)", "", head,
             "|---|---|---|---|---|"]
    for ratio in ratios:
        got = {m: by[(ratio, m)]["psnr"] for m in methods if (ratio, m) in by}
        bl = max((m for m in learned if m in got), key=got.get, default=None)
        bc = max((m for m in classic if m in got), key=got.get, default=None)
        if bl is None:
            continue
        lin = got.get("linear")
        ok = all(got[bl] >= got[m] for m in classic if m in got) and (lin is None or got[bl] >= lin)
        lines.append(f"| {ratio:g} | {bl} {got[bl]:.2f} | "
                     f"{'' if bc is None else f'{bc} {got[bc]:.2f}'} | {'' if lin is None else f'{lin:.2f}'} | "
                     f"{'yes' if ok else 'no'} |")
    lines.append("")
    if twins:
        lines += ["### ALM-trained minus Adam-trained twin (same architecture, PSNR dB)", "",
                  "| ratio | " + " | ".join(f"{a} - {b}" for a, b in twins) + " |", "|---|" + "---|" * len(twins)]
        for ratio in ratios:
            cells = [f"{by[(ratio, a)]['psnr'] - by[(ratio, b)]['psnr']:+.2f}"
                     if (ratio, a) in by and (ratio, b) in by else "" for a, b in twins]
            lines.append(f"| {ratio:g} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def psnr_plot_png(records: Sequence[Mapping[str, Any]]) -> bytes:  # one data set per plot
    """PNG of mean test PSNR against measurement ratio, one line per method."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    for method in dict.fromkeys(r["method"] for r in records):
        pts = sorted((r["ratio"], r["psnr"]) for r in records if r["method"] == method)
        ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    ax.set_xlabel("measurement ratio m/n (%)")
    ax.set_ylabel("mean test PSNR (dB)")
    if records:
        ax.set_title(f"{records[0]['dataset']}: PSNR vs ratio")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _figure_png(fig)


def image_grid_png(
    originals: np.ndarray, recons: Mapping[str, np.ndarray], shape: Sequence[int], title: str = ""
) -> bytes:
    """PNG grid: first row the original test images, then one row per method."""
    from matplotlib.figure import Figure

    rows = [("original", originals)] + list(recons.items())
    k = originals.shape[0]
    fig = Figure(figsize=(1.2 * k + 1.0, 1.2 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), k, squeeze=False)
    for i, (label, imgs) in enumerate(rows):
        for j in range(k):
            ax = axes[i][j]
            ax.imshow(imgs[j].reshape(shape), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return _figure_png(fig)


def _accepts(cls: type, option: str) -> bool:
    try:
        return option in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _decoder_kwargs(cls: type, options: Mapping[str, Any], shape: Sequence[int], progress: bool,
                    seed: int, budget: float | None = None) -> dict[str, Any]:
    """The keyword arguments a decoder is built with: the user's options, then the run's shape,
    progress, seed and (for decoders with a time limit) the training budget."""
    kw = dict(options)
    if _accepts(cls, "shape"):
        kw.setdefault("shape", shape)
    if _accepts(cls, "progress"):
        kw.setdefault("progress", progress)
    if _accepts(cls, "seed"):
        kw.setdefault("seed", seed)
    option = getattr(cls, "budget_option", None)
    if budget is not None and option and _accepts(cls, option):
        kw.setdefault(option, float(budget))
    return kw


def build_decoder(method: str, Phi: np.ndarray, options: Mapping[str, Any], shape: Sequence[int], progress: bool,
                  seed: int, budget: float | None = None):
    """The decoder ``method`` with the user's ``options``; a bad option or value is one
    :class:`CSInputError` naming the decoder and the options given (never a TypeError listing
    keys the user did not give)."""
    cls = decoder_class(method)
    given = ", ".join(f"{k}={v!r}" for k, v in options.items())
    unknown = sorted(k for k in options if not _accepts(cls, k))
    if unknown:
        valid = [p for p in inspect.signature(cls).parameters if p not in ("self", "Phi", "shape", "progress")]
        raise CSInputError(f"decoder {method!r} has no option {', '.join(unknown)}; valid: {', '.join(valid)}")
    if "seed" in options and integer_at_least(f"decoder {method!r} option seed", options["seed"], 0,
                                              CSInputError) > MAX_SEED:
        raise CSInputError(f"decoder {method!r} option seed must be at most {MAX_SEED}, got {options['seed']!r}")
    params = inspect.signature(cls).parameters
    for k, v in options.items():   # a yes/no option takes a bool (bool("maybe") would be True)
        if isinstance(params[k].default, bool) and not isinstance(v, bool):
            raise CSInputError(f"decoder {method!r} option {k} is yes/no (true/false), got {v!r}")
    ignored = getattr(cls, "options_ignored", lambda _: [])(dict(options))
    if ignored:
        raise CSInputError(f"decoder {method!r} does not use {', '.join(ignored)} (an option of the other "
                           f"trainer; it would be ignored)")
    try:
        return get_decoder(method, Phi, **_decoder_kwargs(cls, options, shape, progress, seed, budget))
    except CSInputError as exc:
        if not given:
            raise
        raise CSInputError(f"bad option for decoder {method!r} ({given}): {exc}") from None
    except (TypeError, ValueError) as exc:  # e.g. --option adam.lr=abc
        raise CSInputError(f"bad option for decoder {method!r} ({given}): {exc}") from None


def check_decoder_options(dataset: str, ratios: Sequence[float], methods: Sequence[str],
                          opts: Mapping[str, Mapping[str, Any]], seed: int = 0, progress: bool = False,
                          budget: float | None = None) -> None:
    """Build every decoder once with its options and the training budget (no fitting), at the
    smallest and the largest ratio, so an unknown option or a bad value (or a budget too short
    for a decoder's first step) fails before any data is loaded or any file or folder is created."""
    shape = image_shape(dataset)
    n = int(np.prod(shape))
    for ratio in sorted({min(ratios), max(ratios)}):
        Phi = gaussian_operator(ratio, n, seed=seed)
        for method in methods:
            build_decoder(method, Phi, opts.get(method, {}), shape, progress, seed, budget)


# ---------------------------------------------------------------------- experiment
def run_cs_experiment(
    dataset: str = DEFAULT_DATASET,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    methods: Sequence[str] = DEFAULT_METHODS,
    train_samples: int | None = DEFAULT_TRAIN_SAMPLES,
    test_samples: int | None = DEFAULT_TEST_SAMPLES,
    noise: float = 0.0,
    seed: int = 0,
    out_dir: str | os.PathLike[str] = "cs_results",
    progress: bool = True,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    snr_db: float | None = None,
    budget: float | None = None,
    block_cs: bool | None = None,
) -> list[dict[str, Any]]:
    """Fit every decoder on train data and evaluate it on test data at every ratio.

    ``train_samples``/``test_samples`` = None uses the whole split; ``seed`` fixes the
    subsets, ``Phi`` and the noise; ``method_options`` maps a method name to options for
    its decoder (e.g. ``{"adam": {"epochs": 30}}``). Returns the records (see
    :data:`RECORD_KEYS`; each also has ``m``, ``noise``, ``n_test`` and, for residual
    decoders, ``details``) and writes the files listed in the module docstring to ``out_dir``.
    ``snr_db``, ``budget`` and ``block_cs`` are described in the module docstring.
    """
    rs, ms, opts = _check_inputs(dataset, ratios, methods, noise, method_options)
    if snr_db is not None:
        if not isinstance(snr_db, (int, float)) or isinstance(snr_db, bool) or not math.isfinite(snr_db):
            raise CSInputError(f"snr_db must be a finite number of decibels or None, got {snr_db!r}")
        if noise:
            raise CSInputError("give either noise (absolute sd) or snr_db, not both")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not (math.isfinite(budget) and budget > 0)):
        raise CSInputError(f"budget must be a positive number of seconds or None, got {budget!r}")
    do_blocks = (dataset == "patches") if block_cs is None else bool(block_cs)
    if do_blocks and dataset != "patches":
        raise CSInputError(f"block_cs needs the patches data set (33 x 33 blocks), got {dataset!r}")
    n_train = _check_count(train_samples, "train_samples")
    n_test = _check_count(test_samples, "test_samples")
    if integer_at_least("seed", seed, 0, CSInputError) > MAX_SEED:
        raise CSInputError(f"seed must be at most {MAX_SEED}, got {seed!r}")
    if snr_db is not None and not MIN_SNR_DB <= snr_db <= MAX_SNR_DB:
        raise CSInputError(f"snr_db must be between {MIN_SNR_DB:g} and {MAX_SNR_DB:g}, got {snr_db!r}")
    if not isinstance(out_dir, (str, os.PathLike)) or (os.path.exists(out_dir) and not os.path.isdir(out_dir)):
        raise CSInputError(f"out_dir must be a folder path (existing or to be created), got {out_dir!r}")
    check_decoder_options(dataset, rs, ms, opts, seed, progress, budget)   # before any folder is created
    check_output_names(out_dir, rs, do_blocks)
    shape = image_shape(dataset)
    S_train = load_dataset(dataset, "train", n_train, seed=seed)
    G_train = load_groups(dataset, "train", n_train, seed=seed)   # held-out choices see unseen images
    S_test = load_dataset(dataset, "test", n_test, seed=seed)
    n = S_train.shape[1]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_grid = min(GRID_IMAGES, S_test.shape[0])

    from tqdm.auto import tqdm

    records: list[dict[str, Any]] = []
    block_records: list[dict[str, Any]] = []
    whole = test_images() if do_blocks else {}
    partial = out / "results.partial.json"
    bar = tqdm(total=len(rs) * len(ms), desc=f"cs {dataset}", disable=not progress)
    try:
        for ratio in rs:
            Phi = gaussian_operator(ratio, n, seed=seed)
            sigma = float(noise)
            if snr_db is not None:
                clean_rms = float(np.sqrt(np.mean(measure(S_train, Phi) ** 2)))
                sigma = clean_rms * 10.0 ** (-float(snr_db) / 20.0)
            Y_train = measure(S_train, Phi, sigma, seed=seed + 1)
            Y_test = measure(S_test, Phi, sigma, seed=seed + 2)
            grid: dict[str, np.ndarray] = {}
            for method in ms:
                bar.set_postfix(ratio=f"{ratio:g}", method=method)
                decoder = build_decoder(method, Phi, opts.get(method, {}), shape, progress, seed, budget)
                t0 = time.perf_counter()
                decoder.fit(Y_train, S_train, groups=G_train)
                t1 = time.perf_counter()
                S_hat = decoder.reconstruct(Y_test)
                t2 = time.perf_counter()
                rec: dict[str, Any] = {"dataset": dataset, "ratio": ratio, "method": method}
                rec.update(mean_metrics(S_test, S_hat, shape))
                rec["seconds_per_image"] = (t2 - t1) / S_test.shape[0]
                rec["train_seconds"] = rec["fit_seconds"] = t1 - t0
                option = type(decoder).budget_option
                budget_s = getattr(decoder, option, None) if decoder.learned and option else None
                rec.update({"n_train": int(S_train.shape[0]), "budget_s": budget_s,
                            "snr_db": None if snr_db is None else float(snr_db),
                            "m": int(Phi.shape[0]), "noise": sigma, "n_test": int(S_test.shape[0])})
                if opts.get(method):   # the user's options, so that a table says how it was made
                    rec["options"] = dict(opts[method])
                details = _details(decoder)
                if details:
                    rec["details"] = details
                records.append(rec)
                if do_blocks:
                    block_records.append(_block_record(decoder, whole, Phi, sigma, seed, rec))
                # a complete file of the records so far, so a long run that is stopped keeps them
                atomic_write_text(partial, json.dumps(records + block_records, indent=2) + "\n")
                grid[method] = S_hat[:n_grid]
                bar.update(1)
            atomic_write_bytes(
                out / f"grid_ratio{ratio:g}.png",
                image_grid_png(S_test[:n_grid], grid, shape,
                               f"{dataset}, ratio {ratio:g} (m = {Phi.shape[0]}), test images"),
            )
    finally:
        bar.close()
    records = records + block_records
    atomic_write_text(out / "results.json", json.dumps(records, indent=2) + "\n")
    atomic_write_text(out / "results.md", results_markdown(records))
    atomic_write_bytes(out / "psnr_vs_ratio.png", psnr_plot_png([r for r in records if r["dataset"] == dataset]))
    if block_records:
        atomic_write_bytes(out / "psnr_vs_ratio_block.png", psnr_plot_png(block_records))
    partial.unlink(missing_ok=True)
    return records


def output_files(ratios: Sequence[float], block_cs: bool) -> list[str]:
    """The names a run writes into its output folder (the figures last)."""
    return (["results.json", "results.md", "results.partial.json", "psnr_vs_ratio.png"]
            + (["psnr_vs_ratio_block.png"] if block_cs else []) + [f"grid_ratio{r:g}.png" for r in ratios])


def check_output_names(out_dir: str | os.PathLike[str], ratios: Sequence[float], block_cs: bool) -> None:
    """Refuse a run whose output names are taken by something that is not a file (a folder
    named ``results.json``), before anything is computed or written."""
    for name in output_files(ratios, block_cs):
        path = Path(out_dir) / name
        if path.exists() and not path.is_file():
            raise CSInputError(f"{path} exists and is not a file: the run could not write its {name} there")


def _details(decoder: Any) -> dict[str, Any]:
    """What a residual or hybrid decoder chose on its held-out pairs (for the record; a hybrid's
    inner decoder under ``inner``)."""
    out: dict[str, Any] = {}
    for key in ("residual_used_", "consistency_", "beta_", "validation_psnr_", "validation_mse_"):
        if hasattr(decoder, key):
            out[key.rstrip("_")] = getattr(decoder, key)
    info = getattr(decoder, "train_info_", None)
    if isinstance(info, dict):
        out.update({k: info[k] for k in ("epochs", "steps", "seconds", "best_epoch", "best_validation",
                                                 "step_choices", "step_chosen")
                    if k in info})
    inner = getattr(decoder, "inner_", None)   # a hybrid: what its learned estimate chose
    inner_details = {} if inner is None else _details(inner)
    if inner_details:
        out["inner"] = inner_details
    return out


def _block_record(decoder: Any, images: Mapping[str, np.ndarray], Phi: np.ndarray, sigma: float, seed: int,
                  rec: Mapping[str, Any]) -> dict[str, Any]:
    """Whole-image block-CS record of a fitted patch decoder (means over the test images)."""
    t0 = time.perf_counter()
    per: dict[str, dict[str, float]] = {}
    n_blocks = 0
    for i, (name, img) in enumerate(images.items()):
        def meas(B: np.ndarray, i: int = i) -> np.ndarray:
            return measure(B, Phi, sigma, seed=seed + 100 + i)

        n_blocks += -(-img.shape[0] // 33) * -(-img.shape[1] // 33)
        per[name] = image_metrics(img, block_cs_image(img, meas, decoder.reconstruct, 33))
    t1 = time.perf_counter()
    out = {k: rec[k] for k in ("ratio", "method", "train_seconds", "fit_seconds", "n_train", "budget_s",
                               "snr_db", "m", "noise", "options") if k in rec}
    out["dataset"] = rec["dataset"] + BLOCK_SUFFIX
    for key in ("psnr", "ssim", "mse"):
        out[key] = float(np.mean([v[key] for v in per.values()]))
    out.update({"seconds_per_image": (t1 - t0) / len(images), "n_test": len(images), "n_blocks": n_blocks,
                "per_image": per})
    return out


# ---------------------------------------------------------------------- command line
#: option values read as booleans (any case), so that ``clip=no`` is not the true string ``"no"``
BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
#: option values read as the special floats (``ast.literal_eval`` reads none of them)
FLOAT_WORDS = ("nan", "inf", "+inf", "-inf", "infinity", "-infinity")


def parse_option(text: str) -> tuple[str, str, Any]:
    """``METHOD.KEY=VALUE`` -> ``(method, key, value)``; names stripped of spaces, the value a
    Python literal (number, list, dict, ...), a yes/no word as a bool, ``nan``/``inf`` as floats,
    otherwise the text itself (e.g. a solver name)."""
    try:
        lhs, value = text.split("=", 1)
        method, key = lhs.split(".", 1)
    except ValueError:
        raise CSInputError(f"--option must look like METHOD.KEY=VALUE, got {text!r}") from None
    method, key, value = method.strip(), key.strip(), value.strip()
    if not method or not key:
        raise CSInputError(f"--option must look like METHOD.KEY=VALUE, got {text!r}")
    if value.lower() in BOOL_WORDS:
        return method, key, BOOL_WORDS[value.lower()]
    if value.lower() in FLOAT_WORDS:
        return method, key, float(value)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = value
    if not _plain_value(parsed):   # the options are written to results.json
        raise CSInputError(f"--option {method}.{key}: {value!r} is not a number, bool, text, list or dict "
                           f"of those (complex numbers, bytes and sets are not options)")
    return method, key, parsed


def _plain_value(v: Any) -> bool:
    """A JSON-representable option value: numbers, bools, text, None, lists/tuples/dicts of them."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain_value(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain_value(x) for k, x in v.items())
    return False
