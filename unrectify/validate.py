"""Command-line checks that run before any work: argument values, input files, output paths.

Every function raises :class:`CLIError` (an :class:`~unrectify.formulations.errors.InputError`,
so a ``ValueError``) with one line that names the option and the problem; the argparse
``type=`` helpers raise ``argparse.ArgumentTypeError`` instead, which argparse turns into
``unrectify <cmd>: error: argument --x: ...`` and exit code 2.  Nothing here creates, opens
for writing or changes a file: output paths are checked with ``os.access`` and ``os.stat`` only.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from unrectify.formulations.errors import CLIError, InputError, UnknownNameError
from unrectify.formulations.validation import MAX_SEED, parse_widths

#: the largest count accepted by integer options before any memory estimate (a typo guard)
MAX_COUNT = 10**12


# ---------------------------------------------------------------- argparse types
def positive_int(text: str) -> int:
    try:
        v = int(text, 10)
    except ValueError:
        try:
            f = float(text)          # "1e9" is a count a user may type; accept it when integral
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
        v = int(f)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r} is above the largest accepted count {MAX_COUNT:.0e}")
    return v


def nonnegative_int(text: str) -> int:
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def seed_int(text: str) -> int:
    """A seed: an integer in ``0 .. 2^32 - 1``."""
    v = nonnegative_int(text)
    if v > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..{MAX_SEED}, got {text!r}")
    return v


def _number(text: str, positive: bool) -> float:
    what = "a positive" if positive else "a non-negative"
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} number, got {text!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise argparse.ArgumentTypeError(f"expected {what} finite number, got {text!r}")
    return v


def positive_int_list(text: str) -> str:
    """Comma-separated positive integers (e.g. sample sizes), checked; the text is returned."""
    for part in text.split(","):
        positive_int(part.strip())
    return text


def positive_float(text: str) -> float:
    return _number(text, positive=True)


def nonnegative_float(text: str) -> float:
    return _number(text, positive=False)


def finite_float(text: str) -> float:
    """Any finite number (e.g. an SNR in dB, which may be negative)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def widths_arg(text: str) -> tuple[int, ...]:
    """An argparse ``type=`` for layer widths like ``1,2,1`` (:func:`parse_widths`), as a tuple."""
    try:
        return parse_widths(text, name="widths")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---------------------------------------------------------------- name lists
def name_list(text: str | Sequence[str], option: str, known: Iterable[str] | None = None) -> list[str]:
    """Comma-separated names: none empty, each known (when ``known`` is given), none repeated."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    if not items or any(not t for t in items):
        raise CLIError(f"{option} needs comma-separated names without empty entries, got {text!r}")
    if known is not None:
        known = list(known)
        for t in items:
            if t not in known:
                raise UnknownNameError(f"{option}: unknown name {t!r}; choose from {', '.join(known)}")
    dup = sorted({t for t in items if items.count(t) > 1})
    if dup:
        raise CLIError(f"{option} names {dup[0]!r} more than once (each would be run again)")
    return items


# ---------------------------------------------------------------- files
def _can_create_in(folder: str) -> bool:
    """Whether a file can be created in ``folder`` (probed with a temporary file that is removed
    at once: ``os.access`` says yes to root on read-only mounts and /proc)."""
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".unrectify-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def _same(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def input_file(path: str, option: str) -> str:
    """An existing, readable regular file."""
    if not os.path.exists(path):
        raise CLIError(f"{option}: file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{option}: {path} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise CLIError(f"{option}: {path} is not readable")
    return path


def output_file(path: str, option: str, inputs: Iterable[str | None] = ()) -> str:
    """A file that can be (re)placed atomically: its folder exists and is writable, it is not a
    folder, and it is none of ``inputs``."""
    if not path:
        raise CLIError(f"{option} needs a file name")
    for inp in inputs:
        if inp and _same(path, inp):
            raise CLIError(f"{option} {path} is also an input file; choose another output path")
    if os.path.isdir(path):
        raise CLIError(f"{option} names a directory, not a file: {path}")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CLIError(f"{option} {path} exists and is not a regular file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{option} directory does not exist: {folder}")
    if not _can_create_in(folder):
        raise CLIError(f"{option} directory is not writable: {folder}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CLIError(f"{option} {path} exists and is read-only")
    return path


def _argparse_type(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """``check`` as an argparse ``type=``: its :class:`InputError` becomes argparse's one-line
    usage error, raised when the arguments are parsed (before any work)."""
    def parse(text: str) -> Any:
        try:
            return check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def output_file_arg(option: str) -> Callable[[str], str]:
    """An argparse ``type=`` checking an output file with :func:`output_file`."""
    return _argparse_type(lambda text: output_file(text, option))


def input_file_arg(option: str) -> Callable[[str], str]:
    """An argparse ``type=`` checking an input file with :func:`input_file`."""
    return _argparse_type(lambda text: input_file(text, option))


def output_dir(path: str, option: str, inputs: Iterable[str | None] = ()) -> str:
    """A folder that exists and is writable, or can be created (its nearest existing parent is
    a writable folder); it is none of ``inputs``.  Nothing is created here."""
    if not path:
        raise CLIError(f"{option} needs a folder name")
    for inp in inputs:
        if inp and _same(path, inp):
            raise CLIError(f"{option} {path} is also an input; choose another output folder")
    full = os.path.abspath(path)
    if os.path.exists(full):
        if not os.path.isdir(full):
            raise CLIError(f"{option} {path} exists and is not a directory")
        if not _can_create_in(full):
            raise CLIError(f"{option} directory is not writable: {path}")
        return path
    parent = os.path.dirname(full)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise CLIError(f"{option} {path} cannot be created: {parent} is not a directory")
    if not _can_create_in(parent):
        raise CLIError(f"{option} {path} cannot be created: {parent} is not writable")
    return path


__all__ = ["CLIError", "input_file", "name_list", "nonnegative_float", "nonnegative_int", "output_dir",
           "output_file", "output_file_arg", "positive_float", "positive_int", "positive_int_list", "seed_int",
           "widths_arg"]
