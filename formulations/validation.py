"""The one place where user-given arrays, widths, weights and boxes are checked (numpy only).

Every public constructor (``TrainingProblem``, ``FixedNetwork``, the ALM's warm start, the CS
decoders' weights) and every parser (``--widths``, sweep specs) calls these functions, so an
input is refused the same way wherever it enters.  Each check raises a one-line
:class:`~unrectify.formulations.errors.InputError` (a ``ValueError``) that names the argument
and the problem; callers in another layer may pass their own ``error`` class (it must accept
one message string), e.g. the CS layer's ``CSInputError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError

Weights = list[tuple[np.ndarray, np.ndarray]]


def finite_array(name: str, a: Any, ndim: int | None = None, error: type[Exception] = InputError) -> np.ndarray:
    """A float64 copy of ``a``; refuses non-numeric, complex, wrongly shaped or non-finite input."""
    try:
        if np.iscomplexobj(a):
            raise error(f"{name} is complex; real values are required")
        arr = np.array(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise error(f"{name} is not a numeric array ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if ndim is not None and arr.ndim != ndim:
        raise error(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise error(f"{name} contains NaN or infinite values")
    return arr


def parse_widths(value: Any, name: str = "widths", min_layers: int = 3,
                 error: type[Exception] = InputError) -> tuple[int, ...]:
    """Layer widths ``(n0, n1, ..., nL)`` from ``"1,2,1"`` or a sequence of integers.

    ``min_layers`` is the least number of widths (3: input, one hidden layer, output)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        parts = [t.strip() for t in value.split(",")]
        if not all(p.lstrip("+").isdigit() for p in parts):
            raise error(f"{name} must be comma-separated positive integers like 1,2,1, got {value!r}")
        items: list[Any] = [int(p) for p in parts]
    else:
        try:
            items = list(value)
        except TypeError:
            raise error(f"{name} must be a sequence of positive integers like (1, 2, 1), got {value!r}") from None
    out = []
    for w in items:
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer, float, np.floating)) \
                or not math.isfinite(w) or w != int(w):
            raise error(f"{name} must be positive integers, got {tuple(items)!r}")
        out.append(int(w))
    if len(out) < min_layers:
        hint = "input, at least one hidden layer and output (e.g. 1,2,1)" if min_layers >= 3 else "input and output"
        raise error(f"{name} {tuple(out)} need {hint}")
    if min(out) < 1:
        raise error(f"{name} must be positive, got {tuple(out)}")
    return tuple(out)


def check_weights(weights: Any, widths: Sequence[int] | None = None, n_in: int | None = None,
                  name: str = "weights", error: type[Exception] = InputError) -> Weights:
    """Float64 copies of a weights list ``[(W_1, b_1), ..., (W_L, b_L)]``.

    Checks: a non-empty list of ``(W, b)`` pairs, ``W_l`` 2-D and finite, ``b_l`` of shape
    ``(n_l,)``, consecutive layers chain (``W_l`` has as many columns as ``W_{l-1}`` rows), the
    first layer takes ``n_in`` inputs when given, and the shapes equal ``widths`` when given."""
    if isinstance(weights, (str, bytes, np.ndarray)):
        raise error(f"{name} must be a list of (W, b) pairs, got {type(weights).__name__}")
    try:
        pairs = list(weights)
    except TypeError:
        raise error(f"{name} must be a list of (W, b) pairs, got {type(weights).__name__}") from None
    if not pairs:
        raise error(f"{name} list is empty: a network needs at least one layer")
    if widths is not None and len(pairs) != len(widths) - 1:
        raise error(f"{name} has {len(pairs)} layers but the network has {len(widths) - 1}")
    out: Weights = []
    prev = n_in if widths is None else widths[0]
    for l, pair in enumerate(pairs, start=1):
        try:
            W, b = pair
        except (TypeError, ValueError):
            raise error(f"{name} layer {l} must be a (W, b) pair") from None
        W = finite_array(f"{name} layer {l} W", W, ndim=2, error=error)
        b = finite_array(f"{name} layer {l} b", b, error=error).reshape(-1)
        if min(W.shape) < 1:
            raise error(f"{name} layer {l}: W has an empty shape {W.shape}")
        if widths is not None and W.shape != (widths[l], widths[l - 1]):
            raise error(f"{name} layer {l} needs W {(widths[l], widths[l - 1])} and b {(widths[l],)}, "
                        f"got {W.shape} and {b.shape}")
        if b.shape != (W.shape[0],):
            raise error(f"{name} layer {l}: b has shape {b.shape}, expected ({W.shape[0]},) for W {W.shape}")
        if prev is not None and W.shape[1] != prev:
            raise error(f"{name} layer {l}: W expects {W.shape[1]} inputs but receives {prev}")
        out.append((W, b))
        prev = W.shape[0]
    return out


def check_box(lo: Any, hi: Any, n: int, names: tuple[str, str] = ("input_lo", "input_hi"),
              error: type[Exception] = InputError) -> tuple[np.ndarray, np.ndarray]:
    """A box ``lo <= x <= hi`` on ``n`` values (scalars broadcast): finite, ``lo <= hi``."""
    lo_a = finite_array(names[0], lo, error=error)
    hi_a = finite_array(names[1], hi, error=error)
    try:
        lo_a = np.broadcast_to(lo_a, (n,)).copy()
        hi_a = np.broadcast_to(hi_a, (n,)).copy()
    except ValueError:
        raise error(f"{names[0]}/{names[1]} shapes {np.shape(lo)}, {np.shape(hi)} do not match {n} values") from None
    if np.any(lo_a > hi_a):
        j = int(np.flatnonzero(lo_a > hi_a)[0])
        raise error(f"infeasible box: {names[0]} > {names[1]} at index {j} ({lo_a[j]:g} > {hi_a[j]:g})")
    return lo_a, hi_a


def positive_number(name: str, value: Any, allow_none: bool = False, error: type[Exception] = InputError) -> float | None:
    """A finite number > 0 (``None`` passes when ``allow_none``): time limits, weight bounds, tolerances."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_, str, bytes)):   # "5" is text, not a number, in the API
        raise error(f"{name} must be a positive number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(f) or f <= 0:
        raise error(f"{name} must be a positive finite number, got {value!r}")
    return f


def nonnegative_number(name: str, value: Any, error: type[Exception] = InputError) -> float:
    """A finite number >= 0: gaps and tolerances."""
    if not isinstance(value, (bool, np.bool_, str, bytes)):
        try:
            f = float(value)
        except (TypeError, ValueError):
            f = math.nan
        if math.isfinite(f) and f >= 0:
            return f
    raise error(f"{name} must be a finite number >= 0, got {value!r}")


#: seeds are below 2^32: numpy takes any size, but torch's generator and the ALM's do not
MAX_SEED = 2**32 - 1


def integer_at_least(name: str, value: Any, minimum: int, error: type[Exception] = InputError) -> int:
    """An integer (Python or numpy, not bool) ``>= minimum``: counts, sizes, seeds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def available_memory() -> int:
    """Bytes of memory available to a new allocation: ``MemAvailable`` on Linux (free plus
    reclaimable cache), else physical memory; 0 when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


_FLOP_RATE: float | None = None


def measured_flop_rate() -> float:
    """Dense matrix-multiply flop/s of this process, measured once (the best of eight 256 x 256
    products, a few ms): an optimistic figure, so that work refused for not
    fitting a time limit would not fit on a quiet machine either."""
    global _FLOP_RATE
    if _FLOP_RATE is None:
        import time

        best = 0.0
        for n, reps in ((256, 8),):
            a = np.random.default_rng(0).standard_normal((n, n))
            a @ a  # warm-up (thread pool start)
            for _ in range(reps):
                t0 = time.perf_counter()
                a @ a
                best = max(best, 2 * n**3 / max(time.perf_counter() - t0, 1e-9))
        _FLOP_RATE = best
    return _FLOP_RATE


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human figure (``3.2 GB``)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


__all__ = ["Weights", "available_memory", "check_box", "format_bytes", "measured_flop_rate", "check_weights", "finite_array", "parse_widths", "positive_number"]
