"""Optimisation-based bound tightening (OBBT) of a fixed-weight network's pre-activations."""

from __future__ import annotations

import numpy as np

from unrectify.backends import get_backend
from unrectify.formulations.encodings import Encoding
from unrectify.formulations.errors import InputError
from unrectify.formulations.fixed_weight import FixedNetwork, build_bound_tightening_model
from unrectify.formulations.validation import positive_number

#: relative slack added to LP-tightened bounds (solver tolerances must not cut off feasible points)
OBBT_SLACK = 1e-6


def tighten_bounds(net: FixedNetwork, start: str = "crown", backend: str = "highs", time_limit: float | None = 60.0,
                   encoding: str | Encoding = "bigm", domain: str = "interval", max_nonzeros: int = 2_000_000,
                   guard: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Optimisation-based bound tightening (OBBT), layer by layer from ``start`` bounds.

    For layers ``2..L`` every unit is maximised and minimised over the relaxation of the network
    truncated after that layer, using the bounds already tightened for the layers before
    (:func:`unrectify.formulations.fixed_weight.build_bound_tightening_model`; with ``bigm``/``interval``
    one LP per layer, split into chunks of at most ``max_nonzeros`` nonzeros).  Each optimum is
    loosened by ``OBBT_SLACK * max(1, |v|)`` and intersected with the previous bound, so the
    result is never looser than ``start``; a chunk that is not solved to optimality in
    ``time_limit`` keeps its previous bounds.  Returns ``[(L_1, U_1), ..., (L_L, U_L)]`` for the
    builders' ``bounds=`` argument.
    """
    if not isinstance(net, FixedNetwork):
        raise InputError(f"tighten_bounds needs a FixedNetwork, got {type(net).__name__}")
    if isinstance(max_nonzeros, bool) or not isinstance(max_nonzeros, (int, np.integer)) or max_nonzeros < 1:
        raise InputError(f"max_nonzeros must be a positive integer, got {max_nonzeros!r}")
    time_limit = positive_number("time_limit (seconds)", time_limit, allow_none=True)
    bounds = [(L.copy(), U.copy()) for L, U in net.bounds(start)]
    be = get_backend(backend)
    for k in range(2, net.n_layers + 1):
        n = net.widths[k]
        per_row = build_bound_tightening_model(net, k, bounds[:k], encoding, domain, units=[0]).model.A.nnz / 2
        chunk = int(max(1, min(n, max_nonzeros // max(2 * per_row, 1))))
        for start_unit in range(0, n, chunk):      # one separable model per chunk of units
            units = np.arange(start_unit, min(n, start_unit + chunk))
            fm = build_bound_tightening_model(net, k, bounds[:k], encoding, domain, units=units)
            raw = be.solve(fm.model, time_limit=time_limit, guard=guard)
            if raw.status != "optimal" or raw.x is None:
                continue
            z = fm.row_objectives(fm.output_value(raw.x))
            J = len(units)
            up, lo = z[:J], z[J:]
            L, U = bounds[k - 1]
            U[units] = np.minimum(U[units], up + OBBT_SLACK * np.maximum(1.0, np.abs(up)))
            L[units] = np.maximum(L[units], lo - OBBT_SLACK * np.maximum(1.0, np.abs(lo)))
            L[units] = np.minimum(L[units], U[units])
    return bounds


__all__ = ["OBBT_SLACK", "tighten_bounds"]
