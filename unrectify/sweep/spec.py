"""Sweep specs: read a TOML file and validate it key by key (types, ranges, unknown keys).

Every error is one line that names the key and the value (:class:`SweepError`, or
:class:`UnknownNameError` for an unknown encoding, domain, backend, loss or symmetry name),
raised before any task runs.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unrectify.formulations.errors import InputError, UnknownNameError

from .errors import SweepError
from .grid import backend_skips, expand, forms, n_grid_points, unique

#: grid keys (lists, or one value) and scalar keys of a spec file
GRID_KEYS = ("seeds", "samples", "widths", "encodings", "domains", "backends", "loss", "weight_bound",
             "symmetry_breaking")
SCALAR_KEYS = ("time_limit", "total_time_limit", "name", "description")
DEFAULTS: dict[str, Any] = {
    "seeds": [0], "samples": [8], "widths": ["1,2,1"], "domains": ["binary", "interval"], "backends": ["auto"],
    "loss": ["mse"], "weight_bound": [2.0], "symmetry_breaking": ["all"], "time_limit": 60.0,
}
REQUIRED = ("encodings",)
#: largest task accepted: samples x (sum of all widths) (a typo such as "1,20000000,1" must not
#: take a worker's memory)
MAX_TASK_SIZE = 10 ** 7
#: most tasks in one grid (a results file of that many lines is already large)
MAX_TASKS = 10 ** 5
#: longest time limit accepted, per task or overall (about 11.6 days)
MAX_TIME_LIMIT = 1e6
#: largest seed accepted (numpy's generators take any non-negative integer; JSON keeps 2^53 exact)
MAX_SEED = 2 ** 53


@dataclass
class SweepSpec:
    """A validated sweep grid (see :func:`load_sweep_spec`).  ``time_limit`` is per task,
    ``total_time_limit`` (None: none) for the whole run; both wall-clock seconds."""

    encodings: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    samples: list[int] = field(default_factory=lambda: [8])
    widths: list[tuple[int, ...]] = field(default_factory=lambda: [(1, 2, 1)])
    domains: list[str] = field(default_factory=lambda: ["binary", "interval"])
    backends: list[str] = field(default_factory=lambda: ["auto"])
    loss: list[str] = field(default_factory=lambda: ["mse"])
    weight_bound: list[float] = field(default_factory=lambda: [2.0])
    symmetry_breaking: list[str] = field(default_factory=lambda: ["all"])
    time_limit: float = 60.0
    total_time_limit: float | None = None
    name: str = "sweep"
    description: str = ""
    path: str | None = None

    def skipped_forms(self) -> list[tuple[str, str]]:
        """(encoding, domain) pairs of the grid that the encoding does not have (left out)."""
        from unrectify.formulations import get_encoding
        return [(e, d) for e in self.encodings for d in self.domains if d not in get_encoding(e).domains]

    def skipped(self) -> list[str]:
        """Every combination of the grid that :func:`expand` leaves out, with the reason."""
        out = [f"{e}/{d} (not a form of {e})" for e, d in self.skipped_forms()]
        for b in self.backends:
            out += [f"{b} for {e}/{d} ({backend_skips(b, e, d)})" for e, d in forms(self)
                    if backend_skips(b, e, d) is not None]
        return out


# ---------------------------------------------------------------------------------------------
# one validator per kind of value; ``where`` is " in PATH" (or "") for the message
# ---------------------------------------------------------------------------------------------
def _where(path: str | None) -> str:
    return f" in {path}" if path else ""


def _as_list(key: str, value, where: str) -> list:
    if isinstance(value, dict):
        raise SweepError(f"sweep key {key!r}: expected a value or a list, got a table {value!r}{where}")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise SweepError(f"sweep key {key!r} is an empty list{where}")
    return items


def _int(key: str, v, where: str, minimum: int, maximum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SweepError(f"sweep key {key!r}: expected an integer, got {v!r}{where}")
    if not minimum <= v <= maximum:
        raise SweepError(f"sweep key {key!r}: expected an integer in [{minimum}, {maximum}], got {v!r}{where}")
    return v


def _positive_float(key: str, v, where: str, maximum: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SweepError(f"sweep key {key!r}: expected a positive number, got {v!r}{where}")
    f = float(v)
    if not math.isfinite(f) or f <= 0:
        raise SweepError(f"sweep key {key!r}: expected a positive finite number, got {v!r}{where}")
    if f > maximum:
        raise SweepError(f"sweep key {key!r}: {v!r} exceeds the largest accepted value {maximum:g}{where}")
    return f


def _widths(v, where: str) -> tuple[int, ...]:
    """``"1,2,1"`` or ``[1, 2, 1]`` through the package's one widths parser."""
    from unrectify.formulations.errors import InputError
    from unrectify.formulations.validation import parse_widths

    if not isinstance(v, (str, list)) or (isinstance(v, list) and not all(
            isinstance(t, int) and not isinstance(t, bool) for t in v)):
        raise SweepError(f"sweep key 'widths': expected \"1,2,1\" or [1, 2, 1], got {v!r}{where}")
    try:
        w = parse_widths(v, name="sweep key 'widths'")
    except InputError as exc:
        raise SweepError(f"{exc}{where}") from None
    if sum(w) > MAX_TASK_SIZE:
        raise SweepError(f"sweep key 'widths': {v!r} sums to more than {MAX_TASK_SIZE:.0e}{where}")
    return w


def _names(key: str, values: list, known: Sequence[str], where: str) -> list[str]:
    out = []
    for v in values:
        if not isinstance(v, str):
            raise SweepError(f"sweep key {key!r}: expected a name, got {v!r}{where}")
        if v not in known:
            raise UnknownNameError(f"sweep key {key!r}: unknown name {v!r}; choose from {', '.join(known)}{where}")
        out.append(v)
    return out


def _symmetry(values: list, where: str) -> list[str]:
    from unrectify.formulations.builder import symmetry_kinds

    out = []
    for v in values:
        if isinstance(v, bool):
            v = "permutation" if v else "none"
        if not isinstance(v, str):
            raise SweepError(f"sweep key 'symmetry_breaking': expected a name, got {v!r}{where}")
        try:
            kinds = symmetry_kinds(v)
        except UnknownNameError as exc:
            raise UnknownNameError(f"sweep key 'symmetry_breaking': {exc}{where}") from None
        out.append(",".join(kinds) or "none")   # canonical, so "all" and "permutation,scaling" agree
    return unique(out)


def _backend_choices() -> list[str]:
    from unrectify.backends import backend_names

    return ["auto", *backend_names()]


def _model_backends(names: Sequence[str]) -> list[str]:
    """The backends among ``names`` that take a built model (their model classes are checked)."""
    import unrectify.backends as registry
    out = []
    for b in names:
        if b == "auto" or b not in registry.backend_names():
            continue
        if registry.backend_class(b).capabilities.level == "model":
            out.append(b)
    return out


def spec_from_dict(data: dict, path: str | None = None) -> SweepSpec:
    """Validate a parsed spec (the TOML document as a dict); errors name the key and value."""
    from unrectify.backends import backend_names, get_backend
    from unrectify.formulations import DOMAINS, LOSSES, available_encodings

    where = _where(path)
    if not isinstance(data, dict):
        raise SweepError(f"a sweep spec is a table of keys{where}")
    known = GRID_KEYS + SCALAR_KEYS
    for k in data:
        if k not in known:
            raise SweepError(f"unknown sweep key {k!r}{where}; known keys: {', '.join(known)}")
    for k in REQUIRED:
        if k not in data:
            raise SweepError(f"sweep key {k!r} is missing{where}")
    raw = {**DEFAULTS, **data}
    kw: dict[str, Any] = {}
    kw["seeds"] = unique(_int("seeds", v, where, 0, MAX_SEED) for v in _as_list("seeds", raw["seeds"], where))
    kw["samples"] = unique(_int("samples", v, where, 1, MAX_TASK_SIZE)
                           for v in _as_list("samples", raw["samples"], where))
    w = raw["widths"]
    # one width list given as [1, 2, 1] (not a list of lists): one grid value
    if isinstance(w, list) and w and all(isinstance(t, int) for t in w):
        w = [w]
    kw["widths"] = unique(_widths(v, where) for v in _as_list("widths", w, where))
    kw["encodings"] = unique(_names("encodings", _as_list("encodings", raw["encodings"], where),
                                    available_encodings(), where))
    kw["domains"] = unique(_names("domains", _as_list("domains", raw["domains"], where), DOMAINS, where))
    kw["backends"] = unique(_names("backends", _as_list("backends", raw["backends"], where),
                                   _backend_choices(), where))
    for b in kw["backends"]:
        if b in backend_names():
            get_backend(b).require()   # SolverUnavailableError (one line) if its package is missing
    kw["loss"] = unique(_names("loss", _as_list("loss", raw["loss"], where), LOSSES, where))
    kw["weight_bound"] = unique(_positive_float("weight_bound", v, where)
                                for v in _as_list("weight_bound", raw["weight_bound"], where))
    kw["symmetry_breaking"] = _symmetry(_as_list("symmetry_breaking", raw["symmetry_breaking"], where), where)
    kw["time_limit"] = _positive_float("time_limit", raw["time_limit"], where, MAX_TIME_LIMIT)
    if data.get("total_time_limit") is not None:
        kw["total_time_limit"] = _positive_float("total_time_limit", data["total_time_limit"], where, MAX_TIME_LIMIT)
    size = max(kw["samples"]) * max(sum(w) for w in kw["widths"])
    if size > MAX_TASK_SIZE:
        raise SweepError(f"sweep tasks too large: samples x sum(widths) = {size:.3g} exceeds {MAX_TASK_SIZE:.0e} "
                         f"(samples up to {max(kw['samples'])}){where}")
    for k in ("name", "description"):
        if k in data:
            if not isinstance(data[k], str):
                raise SweepError(f"sweep key {k!r}: expected a string, got {data[k]!r}{where}")
            if k == "name" and (not data[k].strip() or any(c in data[k] for c in "\n\r\x00")):
                raise SweepError(f"sweep key 'name': expected a one-line, non-empty string, got {data[k]!r}{where}")
            kw[k] = data[k]
    if "name" not in kw and path:
        kw["name"] = Path(path).stem
    spec = SweepSpec(path=path, **kw)
    n = n_grid_points(spec)
    if n > MAX_TASKS:
        raise SweepError(f"the sweep grid has up to {n} tasks, more than {MAX_TASKS}; split it into several specs{where}")
    if not expand(spec):
        raise SweepError(f"the sweep grid is empty: left out {', '.join(spec.skipped())}{where}")
    _check_instances(spec, where)
    return spec


def _check_instances(spec: SweepSpec, where: str) -> None:
    """Before anything runs: every instance kind passes the problem's validation (its weight
    box gives finite bounds for the exact forms), and an explicit exact backend handles every
    model class of the grid (built on a 2-sample instance; the class does not depend on the
    sample count or the widths, only on the depth)."""
    from unrectify.backends import get_backend
    from unrectify.formulations import build_training_model, random_instance

    exact_forms = bool(_model_backends(spec.backends)) or "auto" in spec.backends
    for widths in spec.widths:
        for loss in spec.loss:
            for B in spec.weight_bound:
                try:
                    problem = random_instance(2, widths, 0, loss, B)
                    if exact_forms:
                        problem.bounds()   # the big-M / complementarity constants of the exact forms
                except InputError as exc:
                    raise SweepError(f"sweep key 'weight_bound' = {B:g} with widths {','.join(map(str, widths))}: "
                                     f"{str(exc).splitlines()[0]}{where}") from None
    exact = _model_backends(spec.backends)
    if not exact:
        return
    for widths in spec.widths:
        for loss in spec.loss:
            # the model class depends on the depth, not on the widths
            problem = random_instance(2, tuple(min(w, 2) for w in widths), 0, loss, 1.0)
            for sym in spec.symmetry_breaking:
                for e, d in forms(spec):
                    model = build_training_model(problem, e, d, sym).model
                    for b in exact:
                        reason = get_backend(b).supports(model)
                        if reason:
                            raise SweepError(f"sweep key 'backends': {reason} ({e}/{d}, loss {loss}); "
                                             f"leave it out of this grid{where}")


def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a TOML sweep spec; every error is one line naming the key and value."""
    path = str(path)
    if not os.path.exists(path):
        raise SweepError(f"sweep spec not found: {path}")
    if os.path.isdir(path):
        raise SweepError(f"sweep spec is a directory: {path}")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"cannot parse {path} as TOML: {str(exc).splitlines()[0]}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise SweepError(f"cannot read {path} as TOML ({type(exc).__name__})") from None
    return spec_from_dict(data, path)
