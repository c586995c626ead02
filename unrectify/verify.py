"""The optimality-preservation check: solve every encoding in both domains and compare.

For each encoding the binary form (``d in {0,1}``) and the relaxed interval form
(``d in [0,1]``) are solved to certified global optimality where possible.  The verdict
``tight`` is

* ``False`` when the tool finds a witness: the relaxed optimum lies strictly below a
  certified lower bound of the binary problem, or the relaxed solution has
  ``x != relu(z)`` (its point is not a ReLU network);
* ``True`` when both forms are certified optimal, their optima agree to ``rtol``, the relaxed
  solution is a ReLU network, and mapping it back with ``d = 1[z > 0]`` gives a feasible
  point of the binary form with the same objective;
* ``None`` (null) otherwise: not certified within the time limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from unrectify.backends import Solution, backend_class, get_backend, options_for, refuse_unknown_options
from unrectify.formulations import BUILTIN, TrainingProblem, build_training_model, get_encoding
from unrectify.formulations.errors import InputError, ModelClassError, UnknownNameError

from .api import solve
from .atomic import jsonable as _jsonable  # noqa: F401  (kept for callers of the old name)
from .atomic import write_json_atomic

#: agreement required between binary and relaxed optima: |a - b| <= RTOL max(|a|, |b|) + ATOL
#: (ATOL covers optima near zero, where solver feasibility tolerances dominate)
RTOL = 1e-5
ATOL = 1e-8
#: largest |x - relu(z)| still read as "is a ReLU network" (solver feasibility tolerance scale)
RELU_TOL = 1e-5


@dataclass
class Verdict:
    encoding: str
    tight: bool | None
    binary_objective: float | None
    interval_objective: float | None
    reason: str
    mapped_back: dict | None = None
    backend: str | None = None            # set for verdicts on a local (non-certifying) run
    gap_to_certified: float | None = None

    def to_dict(self) -> dict:
        d = {"encoding": self.encoding, "tight": self.tight, "binary_objective": self.binary_objective,
             "interval_objective": self.interval_objective, "reason": self.reason, "mapped_back": self.mapped_back}
        if self.backend is not None:
            d |= {"backend": self.backend, "gap_to_certified": self.gap_to_certified}
        return d


@dataclass
class VerifyReport:
    problem: dict
    runs: list[Solution] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    def to_dict(self) -> dict:
        runs = []
        for s in self.runs:
            d = s.summary()
            runs.append({k: d[k] for k in ("encoding", "domain", "backend", "status", "objective", "bound",
                                           "forward_loss", "max_violation", "seconds")}
                        | {"solver": s.solver, "relu_gap": d["relu_gap"], "message": s.message,
                           "route": s.route or s.extra.get("route"), "stats": s.model_stats,
                           "certified": bool(s.certified), "solver_status": s.solver_status,
                           "solver_objective": s.solver_objective, "solver_bound": s.solver_bound})
        return {"problem": self.problem, "runs": runs, "verdicts": [v.to_dict() for v in self.verdicts]}

    def write_json(self, path: str) -> None:
        write_json_atomic(path, self.to_dict())


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _difference(a: float, b: float) -> str:
    """How far apart two optima are, in words: relative, or absolute when both are within ``ATOL``
    of zero (where a relative figure measures only the solvers' feasibility tolerances)."""
    if max(abs(a), abs(b)) <= ATOL:
        return f"{abs(a - b):.1e} absolute (both within {ATOL:g} of zero)"
    return f"{_rel(a, b):.1e} relative"


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b)) + ATOL


def map_back(problem: TrainingProblem, sol: Solution) -> dict | None:
    """Round ``d = 1[z > 0]`` in a relaxed solution and evaluate it in the binary form."""
    enc = get_encoding(sol.encoding)
    if sol.point is None or "binary" not in enc.domains:
        return None
    tm = build_training_model(problem, enc, "binary", sol.symmetry_breaking)
    ev = tm.model.evaluate(tm.round_activations(sol.point))
    return {"feasible": bool(ev.max_violation <= 1e-6), "max_violation": ev.max_violation,
            "objective": ev.objective}


def judge(encoding: str, binary: Solution | None, interval: Solution | None, reference: Solution | None,
          mapped: dict | None) -> Verdict:
    """Verdict for one encoding (see module docstring)."""
    ref = binary if binary is not None and binary.certified_optimal else reference
    b_obj = ref.objective if ref is not None else (binary.objective if binary is not None else None)
    i_obj = interval.objective if interval is not None else None
    v = Verdict(encoding, None, b_obj, i_obj, "", mapped)
    if interval is None:
        v.reason = "no interval form"
        return v
    if interval.point is None:
        v.reason = f"relaxed form not solved (status {interval.status})"
        return v
    gap = interval.certificate.relu_gap
    # a gap explained by the solver's feasibility tolerance (|d z| errors scale with |z|) is no witness
    zmax = max((float(abs(a["Z"]).max(initial=0.0)) for a in (interval.activations or [])), default=0.0)
    gap_tol = RELU_TOL + interval.certificate.max_violation * max(zmax, 1.0)
    # the best lower bound on the binary optimum we trust: a certified optimum or a proven bound
    lower = None
    if ref is not None:
        lower = ref.objective
    elif binary is not None and binary.bound is not None:
        lower = binary.bound
    if lower is not None and i_obj is not None and i_obj < lower - RTOL * abs(lower) - ATOL:
        v.tight = False
        v.reason = f"relaxed optimum {i_obj:.6g} < binary {'optimum' if ref is not None else 'bound'} {lower:.6g}"
        if gap > gap_tol:
            v.reason += f"; relaxed solution has x != relu(z) (max gap {gap:.3g})"
        return v
    if gap > gap_tol:
        v.tight = False
        v.reason = f"relaxed solution has x != relu(z) (max gap {gap:.3g})"
        return v
    if not interval.certified_optimal:
        v.reason = f"relaxed form not certified (status {interval.status})"
        return v
    if ref is None:
        v.reason = "binary form not certified" + (f" (status {binary.status})" if binary is not None else "")
        return v
    if not _agree(i_obj, ref.objective):
        v.reason = f"relaxed optimum {i_obj:.8g} above binary optimum {ref.objective:.8g}: solver inconsistency"
        return v
    if mapped is not None and (not mapped["feasible"] or not _agree(mapped["objective"], i_obj)):
        v.reason = f"mapped-back point infeasible for the binary form (violation {mapped['max_violation']:.3g})"
        return v
    v.tight = True
    v.reason = (f"optima agree to {_difference(i_obj, ref.objective)}; relaxed solution is a ReLU network"
                + ("; d = 1[z>0] is binary-feasible with the same objective" if mapped is not None else ""))
    return v


def preflight(problem: TrainingProblem, encodings, backends: Sequence[str], symmetry_breaking, **options) -> None:
    """Check every form against its backend's capabilities (and build and check the model of
    model-level backends: classes, licence) before any solve starts, so a bad combination
    fails at once with a one-line error.  Forms a named backend does not take are skipped by
    :func:`verify` and not checked here."""
    from .routing import route

    refuse_unknown_options(options)
    if "auto" not in backends:
        taken = set().union(*(options_for(b, options) for b in backends))
        unused = sorted(set(options) - taken)
        if unused:
            raise InputError(f"option{'s' if len(unused) > 1 else ''} {', '.join(unused)} "
                             f"{'are' if len(unused) > 1 else 'is'} taken by none of the backends {', '.join(backends)}")
    for backend in backends:
        if backend != "auto":
            backend_class(backend)   # unknown names fail here
        for enc in encodings:
            for domain in enc.domains:
                name = route(problem, enc.name, domain, symmetry_breaking).backend if backend == "auto" else backend
                be = get_backend(name, **options)
                if be.takes(None, enc.name, domain) is not None:
                    continue
                reason = be.takes(problem, enc.name, domain)
                if reason:
                    raise InputError(reason)
                if be.capabilities.level == "model":
                    try:
                        be.check(build_training_model(problem, enc, domain, symmetry_breaking).model)
                    except ModelClassError as exc:
                        raise ModelClassError(f"the {enc.name}/{domain} form cannot go to backend {name!r}: {exc}") from None


def backend_list(backend: str | Sequence[str]) -> list[str]:
    if not isinstance(backend, (str, list, tuple)):
        raise InputError(f"backend must be a name, a comma-separated list or a list of names, got {backend!r}")
    names = [b.strip() for b in backend.split(",")] if isinstance(backend, str) else [str(b) for b in backend]
    names = [b for b in names if b]
    if not names:
        raise InputError("no backend given")
    _refuse_repeats("backend", names)
    return names


def _refuse_repeats(what: str, names: Sequence[str]) -> None:
    """A name given twice would solve the same forms twice: refused in one line."""
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise InputError(f"{what} {', '.join(twice)} given more than once")


def _certifies(sol: Solution) -> bool:
    """A run whose backend certifies global optima (else its answer is judged as a local one)."""
    if sol.status == "local":
        return False
    try:
        return backend_class(sol.backend).capabilities.global_optimum
    except UnknownNameError:
        return sol.global_solver


def judge_local(sol: Solution, reference: Solution | None) -> Verdict:
    """Compare a local solution (a backend that does not certify, e.g. the ALM) with the certified optimum."""
    fl = sol.forward_loss
    v = Verdict(sol.encoding, None, None if reference is None else reference.objective, fl, "", None)
    v.backend = sol.backend
    if fl is None:
        v.reason = f"{sol.backend} returned no weights (status {sol.status})"
    elif reference is None:
        v.reason = f"{sol.backend} found a local solution (status {sol.status}); no certified optimum to compare with"
    else:
        gap = (fl - reference.objective) / max(abs(reference.objective), 1e-12)
        v.gap_to_certified = gap
        if _agree(fl, reference.objective):
            v.reason = f"{sol.backend} reached the certified optimum, off by {_difference(fl, reference.objective)}"
        elif fl > reference.objective:
            v.reason = f"{sol.backend} local solution is {gap:.3g} relative above the certified optimum"
        else:
            v.reason = f"{sol.backend} loss below the certified optimum ({gap:.3g}): inconsistent, check tolerances"
    return v


def verify(
    problem: TrainingProblem,
    encodings: Sequence[str] = BUILTIN,
    backend: str | Sequence[str] = "auto",
    time_limit: float | None = 60.0,
    symmetry_breaking: bool | str | list[str] = False,
    on_run: Callable[[Solution], None] | None = None,
    on_start: Callable[[], None] | None = None,
    **backend_options,
) -> VerifyReport:
    """Solve each encoding in its binary and interval forms and judge tightness.

    ``backend`` may list several backends (``"auto,alm"``): each solves the forms its
    capabilities take (the ALM solver: the relaxed split form only); a backend that does not
    certify global optima gets, per run, a verdict of its own comparing its local solution
    with the certified optimum.  ``on_start()`` is called once every form has passed the checks
    (before the first solve), ``on_run(solution)`` after each solve.
    """
    from unrectify.formulations.builder import symmetry_kinds

    if not isinstance(problem, TrainingProblem):
        raise InputError(f"verify needs a TrainingProblem, got {type(problem).__name__}")
    for name, fn in (("on_run", on_run), ("on_start", on_start)):
        if fn is not None and not callable(fn):
            raise InputError(f"{name} must be a function or None, got {fn!r}")
    if isinstance(encodings, str):   # "split,sign" as on the command line
        encodings = [e.strip() for e in encodings.split(",") if e.strip()]
    if not isinstance(encodings, (list, tuple)) or not encodings:
        raise InputError(f"encodings must be a non-empty list of names, got {encodings!r}")
    encs = [get_encoding(e) for e in encodings]   # unknown names fail before any solve
    _refuse_repeats("encoding", [e.name for e in encs])
    backends = backend_list(backend)
    preflight(problem, encs, backends, symmetry_breaking, **backend_options)
    if all(b != "auto" and backend_class(b).takes(None, e.name, d) is not None
           for b in backends for e in encs for d in e.domains):
        raise InputError(f"backend {','.join(backends)} takes none of the forms of {','.join(e.name for e in encs)}: "
                         f"nothing would run")
    if on_start is not None:   # after the checks: nothing is announced for a refused run
        on_start()
    report = VerifyReport(problem=problem.describe() | {"symmetry_breaking": list(symmetry_kinds(symmetry_breaking)),
                                                       "time_limit": time_limit, "backend": ",".join(backends)})
    exact: dict[tuple[str, str], Solution] = {}
    local: list[Solution] = []
    for b in backends:
        for enc in encs:
            for domain in enc.domains:
                if b != "auto" and backend_class(b).takes(None, enc.name, domain) is not None:
                    continue   # a form this backend does not solve (e.g. the ALM: split/interval only)
                opts = backend_options if b == "auto" else options_for(b, backend_options)
                sol = solve(problem, enc.name, domain, backend=b, time_limit=time_limit,
                            symmetry_breaking=symmetry_breaking, **opts)
                report.runs.append(sol)
                if not _certifies(sol):
                    local.append(sol)
                else:
                    exact.setdefault((enc.name, domain), sol)
                if on_run is not None:
                    on_run(sol)
    certified_binary = [s for (e, d), s in exact.items() if d == "binary" and s.certified_optimal]
    reference = min(certified_binary, key=lambda s: s.objective) if certified_binary else None
    for enc in encs:
        if not any(e == enc.name for e, _ in exact):
            continue
        interval = exact.get((enc.name, "interval"))
        mapped = map_back(problem, interval) if interval is not None else None
        report.verdicts.append(judge(enc.name, exact.get((enc.name, "binary")), interval, reference, mapped))
    report.verdicts.extend(judge_local(s, reference) for s in local)
    return report
