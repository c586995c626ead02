r"""Input-space branch and bound for ``max`` (or ``min``) of one output of a fixed ReLU network.

A global method without a MIP solver: the input box is split into sub-boxes, each bounded by
batched CROWN back-substitution (:class:`unrectify.formulations.box_bounds.BoxBounder`, built
once per search), and every sub-box whose bound cannot beat the best input found is discarded.

* **Bound**: the largest bound over the open and the pruned boxes is a proven upper bound of the
  maximum (each box's bound is valid on the box, and the boxes cover the input box).  A box that
  CROWN does not prune gets :data:`ALPHA_STEPS` projected Adam steps on the lower ReLU slopes of
  its output bound (:meth:`~unrectify.formulations.box_bounds.BoxBounder.optimise_slopes`).
* **Incumbent**: random inputs improved by projected gradient ascent, and the centre and the
  corner that maximises the linear bound of the :data:`CANDIDATES` new boxes with the largest
  bounds of every round; whenever one of them improves the incumbent it is polished by walking
  linear regions with small LPs to the vertex where its region's maximum lies
  (:mod:`unrectify.backends.input_search`).  Every incumbent value is a forward pass at a
  feasible input, so it needs no further certificate.
* **Search**: best first, in rounds: the ``max(batch, open / 2)`` open boxes with the largest
  bounds (at most :data:`MAX_SPLIT`; the bookkeeping of a round is linear in the open boxes,
  so it is spread over as many new ones) are each halved along the input coordinate that is
  widest relative to the root box (``|lam_i| (hi_i - lo_i)``, the linear bound's sensitivity
  times the width, breaks ties; inputs with all-zero weights are never split), the halves
  bounded in vectorised chunks of :data:`CHUNK`; a half keeps the smaller of its own
  bound and its parent's (valid on it too; CROWN's bound is not monotone in the box, because
  its lower ReLU lines are chosen by a heuristic).  Once the incumbent is optimal the order
  does not change the work: every box whose bound is above it must be split.
* **Stop**: ``optimal`` when the bound is within ``max(gap |best|, absgap)`` of the best value
  (SCIP's rule, same defaults as the ``scip`` backend: every open box is within the gap);
  ``time_limit`` at the time
  limit or when ``max_open`` boxes are open (memory), with the best value and the proven bound.

When every unit is stable on a box, its bound is the exact maximum over it, so a neighbourhood of
a maximiser inside one linear region closes at once; a maximiser at a vertex of many regions
needs boxes of the width the gap asks for.  It suits networks with a few inputs (the number of
boxes grows with the input dimension); :mod:`unrectify.fixed` reaches it as ``backend="input-bab"``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from unrectify.formulations.box_bounds import BoxBounder
from unrectify.formulations.errors import InputError
from unrectify.formulations.validation import integer_at_least, nonnegative_number

from .input_search import ascend, polish, value
from .scip import DEFAULT_ABSGAP, DEFAULT_GAP

NAME = "input-bab"
SOLVER = "input-space branch and bound, CROWN / optimised-slope bounds (numpy)"


@dataclass
class BabResult:
    """What :func:`maximize_output` found: in the sense of ``sign * output``."""

    status: str
    x: np.ndarray
    value: float
    bound: float
    seconds: float
    stats: dict = field(default_factory=dict)
    message: str = ""


#: the best random inputs that are improved by gradient ascent (the best of them is polished)
ASCENT_STARTS = 256
#: the most boxes halved in one round (bounds memory: the new boxes and their candidates)
MAX_SPLIT = 65536
#: new boxes per round (those with the largest bounds) whose centre and best corner are tried as inputs
CANDIDATES = 2048
#: projected Adam steps on the lower ReLU slopes of every new box that CROWN does not prune
ALPHA_STEPS = 4
#: weight of the linear bound's sensitivity ``|lam_i| width_i`` in the split score (ties only)
TIE_BREAK = 1e-12
#: boxes bounded per call of the bounder, at most; fewer for wide layers, so that no temporary
#: exceeds :data:`CHUNK_FLOATS` floats (:attr:`BoxBounder.box_floats` per box)
CHUNK = 4096
CHUNK_FLOATS = 1 << 23


def _bound_boxes(bounder: BoxBounder, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, steps: int = 0,
                 above: float = -np.inf, chunk: int = CHUNK,
                 deadline: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ub, split, vertex)`` of every box, in chunks of ``chunk``: the bound (slopes optimised
    with ``steps`` on the boxes whose CROWN bound is above ``above``), the coordinate to halve
    next (the widest relative to the root box, ``scale = 1 / root width``, 0 for inputs the
    network ignores; ``|lam_i| (hi_i - lo_i)`` breaks ties) and the corner maximising the bound.
    Past ``deadline`` the boxes not yet bounded get ``+inf`` (the caller's parent bound then
    holds), the widest split and their centre, so a round never runs far past the time limit."""
    ub, split, vert = np.empty(len(lo)), np.empty(len(lo), dtype=np.int32), np.empty_like(lo)
    for s in range(0, len(lo), chunk):
        if s and deadline is not None and time.perf_counter() > deadline:
            ub[s:] = np.inf
            split[s:] = np.argmax((hi[s:] - lo[s:]) * scale, axis=1)
            vert[s:] = 0.5 * (lo[s:] + hi[s:])
            break
        u, lam, v = bounder(lo[s:s + chunk], hi[s:s + chunk], steps, above)
        width = hi[s:s + chunk] - lo[s:s + chunk]
        ub[s:s + chunk], vert[s:s + chunk] = u, v
        split[s:s + chunk] = np.argmax(width * scale + TIE_BREAK * np.abs(lam) * width, axis=1)
    return ub, split, vert


def maximize_output(weights, lo: np.ndarray, hi: np.ndarray, row: int = 0, sign: float = 1.0,
                    time_limit: float | None = 60.0, gap: float = DEFAULT_GAP, absgap: float = DEFAULT_ABSGAP,
                    batch: int = 1024, samples: int = 4096, max_open: int = 4_000_000,
                    seed: int = 0, local_search: bool = True, alpha_steps: int = ALPHA_STEPS) -> BabResult:
    """Maximise ``sign * z_L[row]`` over the box ``[lo, hi]`` (module docstring).

    ``local_search=False`` keeps only the random inputs, box centres and corners as incumbents
    (no gradient ascent, no region LPs); ``alpha_steps=0`` bounds every box by CROWN alone."""
    t0 = time.perf_counter()
    lo = np.asarray(lo, dtype=float).ravel()
    hi = np.asarray(hi, dtype=float).ravel()
    n0 = weights[0][0].shape[1]
    if lo.shape != (n0,) or hi.shape != (n0,) or np.any(lo > hi):
        raise InputError(f"input-bab needs an input box of {n0} coordinates with lo <= hi")
    gap, absgap = nonnegative_number("gap", gap), nonnegative_number("absgap", absgap)
    batch = integer_at_least("batch", batch, 1)
    max_open = integer_at_least("max_open", max_open, 2 * batch)
    samples = integer_at_least("samples", samples, 1)
    seed = integer_at_least("seed", seed, 0)
    alpha_steps = integer_at_least("alpha_steps", alpha_steps, 0)
    if not isinstance(local_search, (bool, np.bool_)):
        raise InputError(f"local_search must be True or False, got {local_search!r}")
    if len(weights) == 1:       # no hidden layer: an affine output, maximised at a vertex of the box
        w = sign * np.asarray(weights[0][0], dtype=float)[row]
        x = np.where(w > 0, hi, lo)
        v = float(value(weights, x[None], row, sign)[0])
        return BabResult("optimal", x, v, v, time.perf_counter() - t0, {"boxes": 1, "rounds": 0, "open": 0,
                                                                         "batch": batch})
    rng = np.random.default_rng(seed)
    bounder = BoxBounder(weights, row, sign)

    def improve(x: np.ndarray, v: float) -> tuple[np.ndarray, float]:
        return polish(weights, x, lo, hi, row, sign) if local_search else (x, v)

    # incumbent: random inputs (the best ascended, the best of those polished), the root's corner
    X = lo + (hi - lo) * rng.random((max(int(samples), 1), n0))
    f = value(weights, X, row, sign)
    if local_search:
        X = ascend(weights, X[np.argsort(-f)[:ASCENT_STARTS]], lo, hi, row, sign, steps=50)
        f = value(weights, X, row, sign)
    i = int(np.argmax(f))
    best_x, best = improve(X[i], float(f[i]))

    # split the widest coordinate relative to the root box (scale-free); never an input whose
    # weights are all zero (or whose range is a point): halving it cannot tighten anything
    root = hi - lo
    live = (root > 0) & np.any(np.asarray(weights[0][0], dtype=float) != 0, axis=0)
    scale = np.divide(1.0, root, out=np.zeros(n0), where=live)
    chunk = max(1, min(CHUNK, CHUNK_FLOATS // bounder.box_floats))
    deadline = None if time_limit is None else t0 + time_limit
    open_lo, open_hi = lo[None].copy(), hi[None].copy()
    open_ub, open_split, vert = _bound_boxes(bounder, open_lo, open_hi, scale, alpha_steps)
    fv = value(weights, vert, row, sign)
    if fv[0] > best:
        best_x, best = improve(vert[0], float(fv[0]))
    boxes, rounds, closed = 1, 0, -np.inf
    status, message = "time_limit", ""
    while True:
        tol = max(gap * abs(best), absgap)          # SCIP's stopping rule: relative or absolute gap
        keep = open_ub > best + tol
        if not keep.all():
            closed = max(closed, float(open_ub[~keep].max()))   # pruned boxes: nothing above this
            open_lo, open_hi, open_ub, open_split = open_lo[keep], open_hi[keep], open_ub[keep], open_split[keep]
        if len(open_ub) == 0:
            status = "optimal"
            break
        if time_limit is not None and time.perf_counter() - t0 >= time_limit:
            message = f"time limit with {len(open_ub)} boxes open"
            break
        n = min(len(open_ub), max(int(batch), len(open_ub) // 2), MAX_SPLIT)
        if len(open_ub) + n > max_open:
            message = f"{len(open_ub)} boxes open (max_open {max_open}): stopped for memory"
            break
        rounds += 1
        part = np.argpartition(-open_ub, n - 1)[:n] if n < len(open_ub) else np.arange(len(open_ub))
        rest = np.ones(len(open_ub), dtype=bool)
        rest[part] = False
        slo, shi, d = open_lo[part], open_hi[part], open_split[part]
        idx = np.arange(n)
        mid = 0.5 * (slo[idx, d] + shi[idx, d])
        lo1, hi1, lo2, hi2 = slo, shi.copy(), slo.copy(), shi
        hi1[idx, d] = mid
        lo2[idx, d] = mid
        new_lo, new_hi = np.concatenate([lo1, lo2]), np.concatenate([hi1, hi2])
        nub, nsplit, nvert = _bound_boxes(bounder, new_lo, new_hi, scale, alpha_steps, best + tol, chunk, deadline)
        # a half's box lies in its parent's, so the parent's bound holds on it too (CROWN's own
        # bound of a sub-box can be looser: its lower ReLU lines are chosen by a heuristic; a
        # half left unbounded at the deadline has only its parent's)
        nub = np.minimum(nub, np.tile(open_ub[part], 2))
        boxes += len(nub)
        top = np.argpartition(-nub, CANDIDATES - 1)[:CANDIDATES] if len(nub) > CANDIDATES else slice(None)
        cand = np.concatenate([nvert[top], 0.5 * (new_lo[top] + new_hi[top])])
        fc = value(weights, cand, row, sign)
        j = int(np.argmax(fc))
        if fc[j] > best:
            best_x, best = improve(cand[j].copy(), float(fc[j]))
        open_lo = np.concatenate([open_lo[rest], new_lo])
        open_hi = np.concatenate([open_hi[rest], new_hi])
        open_ub = np.concatenate([open_ub[rest], nub])
        open_split = np.concatenate([open_split[rest], nsplit])
    bound = max(closed, best, float(open_ub.max()) if len(open_ub) else -np.inf)
    stats = {"boxes": boxes, "rounds": rounds, "open": int(len(open_ub)), "batch": int(batch)}
    return BabResult(status, best_x, best, bound, time.perf_counter() - t0, stats, message)


__all__ = ["ALPHA_STEPS", "NAME", "SOLVER", "BabResult", "maximize_output"]
