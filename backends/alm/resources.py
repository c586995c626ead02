"""What an ALM request will need (memory, and the flops of its first weight update), checked
before any allocation so that an impossible request is refused in milliseconds with the figure,
instead of filling the memory or running far past its time limit.

Memory, float64 words: ``restarts * sum(hidden)`` for the stratified kink permutations (one
per unit and restart), one restart record per restart (``RECORD_BYTES``), two dense
``(n_{l-1} + 1)^2`` matrices per layer (Gram and Cholesky factor of the weight least squares) and
``ITERATE_ARRAYS`` arrays of ``N x n_l`` per layer (Z, X, D, P, Q, multipliers, workspace).

Time: the first weight update of every layer forms the Gram ``N (n+1)^2`` and factorises it,
``(n+1)^3 / 3`` flops; at the measured dense flop rate of this machine that is a lower bound
on the time before the ALM can return a first iterate.  The reduced-space method
(``reduced.py``) takes mini-batch steps on the weights and forms no Gram of a hidden layer, so for
it only the initialisation's output-layer fit counts: the ``(n_{L-1} + 1)^2`` Gram, or, for a
layer wider than the data, the ``N x N`` kernel of its dual form (``boxls.box_ls_wide``).
"""

from __future__ import annotations

from unrectify.formulations.errors import ResourceLimitError
from unrectify.formulations.problem import TrainingProblem
from unrectify.formulations.validation import available_memory, format_bytes, measured_flop_rate

RECORD_BYTES = 512
ITERATE_ARRAYS = 16
REDUCED_HIDDEN_ARRAYS = 8
REDUCED_OUTPUT_ARRAYS = 3
#: a request is refused on time only when even this multiple of the limit is not enough
TIME_MARGIN = 10.0


def estimate(problem: TrainingProblem, restarts: int, reduced: bool = False, itemsize: int = 8) -> dict:
    """``{"bytes": ..., "first_update_flops": ..., "largest_gram": n}`` for ``solve_alm``
    (``reduced``: the reduced-space method, which factorises only the output fit of its start and
    keeps ``REDUCED_HIDDEN_ARRAYS`` arrays per hidden entry and ``REDUCED_OUTPUT_ARRAYS`` per
    output entry, in the working dtype of ``itemsize`` bytes)."""
    N = problem.n_samples
    widths = problem.widths
    hidden = sum(widths[1:-1])
    if reduced:  # init.fit_output: the Gram, or the N x N kernel once the layer is wider than the data
        g = widths[-2] + 1
        grams = [g if g <= max(N, 64) else N]
    else:
        grams = [widths[l - 1] + 1 for l in range(1, len(widths))]
    words = int(restarts) * hidden + 2 * sum(g * g for g in grams)
    if reduced:
        # D, lam^a, lam^b, the result's Z, X, D and chunk temporaries per hidden entry; the
        # output Z_L and the data in the working dtype (measured peak on MNIST 60 000 x
        # 78-512-512-784, float32: 2.2x the D/lam arrays, i.e. ~6.6 arrays per hidden entry)
        words += (itemsize / 8) * N * (REDUCED_HIDDEN_ARRAYS * hidden
                                       + REDUCED_OUTPUT_ARRAYS * widths[-1] + widths[0])
    else:
        words += ITERATE_ARRAYS * N * sum(widths[1:])
    flops = sum(N * g * g + g ** 3 / 3 for g in grams)
    return {"bytes": int(8 * words) + RECORD_BYTES * int(restarts), "first_update_flops": flops,
            "largest_gram": max(grams)}


def check_resources(problem: TrainingProblem, restarts: int, time_limit: float | None,
                    reduced: bool = False, itemsize: int = 8) -> None:
    """Raise :class:`ResourceLimitError` (one line, with the figures) when the request cannot
    fit this machine's available memory, or its first weight update alone would take more than
    ``TIME_MARGIN`` times ``time_limit`` at the measured flop rate."""
    est = estimate(problem, restarts, reduced, itemsize)
    avail = available_memory()
    if avail and est["bytes"] > avail:
        raise ResourceLimitError(
            f"the ALM request (widths {','.join(map(str, problem.widths))}, {problem.n_samples} samples, "
            f"{restarts} restarts) needs about {format_bytes(est['bytes'])} of memory; this machine has "
            f"{format_bytes(avail)} available")
    if time_limit is not None:
        rate = measured_flop_rate()
        seconds = est["first_update_flops"] / rate
        if seconds > TIME_MARGIN * time_limit:
            g = est["largest_gram"]
            raise ResourceLimitError(
                f"the ALM's first weight update factorises a dense {g} x {g} matrix "
                f"({est['first_update_flops']:.2g} flops, about {seconds:.2g} s at this machine's measured "
                f"{rate:.2g} flop/s), far beyond the time limit of {time_limit:g} s; use narrower hidden "
                f"layers or a longer time limit")
