r"""Input-space branch and bound for ``max`` (or ``min``) of one output of a fixed ReLU network.

A global method without a MIP solver: the input box is split into sub-boxes, each bounded by
batched CROWN back-substitution (:func:`unrectify.formulations.box_bounds.output_upper_bounds`),
and every sub-box whose bound cannot beat the best input found is discarded.

* **Bound**: the largest bound over the open and the pruned boxes is a proven upper bound of the
  maximum (each box's bound is valid on the box, and the boxes cover the input box).
* **Incumbent**: random inputs improved by projected gradient ascent, the centre of every new box
  and the box corner that maximises its linear bound; whenever one of them improves the
  incumbent it is polished by walking linear regions with small LPs to the vertex where its
  region's maximum lies (:mod:`unrectify.backends.input_search`).  Every incumbent value is a
  forward pass at a feasible input, so it needs no further certificate.
* **Search**: best first, in batches: the ``batch`` open boxes with the largest bounds are each
  halved along the input coordinate with the largest ``|lam_i| (hi_i - lo_i)`` (the linear
  bound's sensitivity times the width), both halves bounded in one vectorised call; a half
  keeps the smaller of its own bound and its parent's (valid on it too; CROWN's bound is not
  monotone in the box, because its lower ReLU lines are chosen by a heuristic).
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

from unrectify.formulations.box_bounds import output_upper_bounds
from unrectify.formulations.errors import InputError

from .input_search import ascend, polish, value
from .scip import DEFAULT_ABSGAP, DEFAULT_GAP

NAME = "input-bab"
SOLVER = "input-space branch and bound, CROWN bounds (numpy)"


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


def maximize_output(weights, lo: np.ndarray, hi: np.ndarray, row: int = 0, sign: float = 1.0,
                    time_limit: float | None = 60.0, gap: float = DEFAULT_GAP, absgap: float = DEFAULT_ABSGAP,
                    batch: int = 1024, samples: int = 4096, max_open: int = 4_000_000,
                    seed: int = 0, local_search: bool = True) -> BabResult:
    """Maximise ``sign * z_L[row]`` over the box ``[lo, hi]`` (module docstring).

    ``local_search=False`` keeps only the random inputs, box centres and corners as incumbents
    (no gradient ascent, no region LPs)."""
    t0 = time.perf_counter()
    lo = np.asarray(lo, dtype=float).ravel()
    hi = np.asarray(hi, dtype=float).ravel()
    n0 = weights[0][0].shape[1]
    if lo.shape != (n0,) or hi.shape != (n0,) or np.any(lo > hi):
        raise InputError(f"input-bab needs an input box of {n0} coordinates with lo <= hi")
    if int(batch) < 1 or int(max_open) < 2 * int(batch):
        raise InputError(f"input-bab needs batch >= 1 and max_open >= 2 batch, got {batch}, {max_open}")
    rng = np.random.default_rng(seed)

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

    ub, lam, vert = output_upper_bounds(weights, lo[None], hi[None], row, sign)
    open_lo, open_hi, open_ub, open_lam = lo[None].copy(), hi[None].copy(), ub, lam
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
        open_lo, open_hi, open_ub, open_lam = open_lo[keep], open_hi[keep], open_ub[keep], open_lam[keep]
        if len(open_ub) == 0:
            status = "optimal"
            break
        if time_limit is not None and time.perf_counter() - t0 >= time_limit:
            message = f"time limit with {len(open_ub)} boxes open"
            break
        if len(open_ub) + 2 * batch > max_open:
            message = f"{len(open_ub)} boxes open (max_open {max_open}): stopped for memory"
            break
        rounds += 1
        n = min(int(batch), len(open_ub))
        part = np.argpartition(-open_ub, n - 1)[:n] if n < len(open_ub) else np.arange(len(open_ub))
        rest = np.ones(len(open_ub), dtype=bool)
        rest[part] = False
        slo, shi = open_lo[part], open_hi[part]
        width = shi - slo
        d = np.argmax(np.abs(open_lam[part]) * width + 1e-12 * width, axis=1)   # width breaks ties
        idx = np.arange(n)
        mid = 0.5 * (slo[idx, d] + shi[idx, d])
        lo1, hi1, lo2, hi2 = slo, shi.copy(), slo.copy(), shi
        hi1[idx, d] = mid
        lo2[idx, d] = mid
        new_lo, new_hi = np.concatenate([lo1, lo2]), np.concatenate([hi1, hi2])
        nub, nlam, nvert = output_upper_bounds(weights, new_lo, new_hi, row, sign)
        # a half's box lies in its parent's, so the parent's bound holds on it too (CROWN's own
        # bound of a sub-box can be looser: its lower ReLU lines are chosen by a heuristic)
        nub = np.minimum(nub, np.tile(open_ub[part], 2))
        boxes += len(nub)
        cand = np.concatenate([nvert, 0.5 * (new_lo + new_hi)])
        fc = value(weights, cand, row, sign)
        j = int(np.argmax(fc))
        if fc[j] > best:
            best_x, best = improve(cand[j].copy(), float(fc[j]))
        open_lo = np.concatenate([open_lo[rest], new_lo])
        open_hi = np.concatenate([open_hi[rest], new_hi])
        open_ub = np.concatenate([open_ub[rest], nub])
        open_lam = np.concatenate([open_lam[rest], nlam])
    bound = max(closed, best, float(open_ub.max()) if len(open_ub) else -np.inf)
    stats = {"boxes": boxes, "rounds": rounds, "open": int(len(open_ub)), "batch": int(batch)}
    return BabResult(status, best_x, best, bound, time.perf_counter() - t0, stats, message)


__all__ = ["NAME", "SOLVER", "BabResult", "maximize_output"]
