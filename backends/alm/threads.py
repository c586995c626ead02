"""BLAS thread control.

Small dense factorisations (the Gram systems of the weight blocks, ``(I + W^T W)^{-1}``) are
run single-threaded: OpenBLAS threads give nothing at these sizes and, on a shared or
oversubscribed machine, spin-waiting made a 257 x 257 Cholesky 30x slower (0.9 s vs 0.03 s
measured here).  Large GEMMs keep the process setting unless ``solve_alm(threads=...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_CONTROLLER = None

#: factorisations of at least this order run single-threaded (below it the switch costs more)
MIN_ORDER = 32


def _controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/LAPACK to ``n`` threads inside the block (no-op for ``None``)."""
    if n is None:
        yield
        return
    with _controller().limit(limits=int(n), user_api="blas"):
        yield


def blas_thread_count() -> int:
    """Threads the loaded BLAS libraries use now (their largest setting; 1 when none is found),
    i.e. the process setting or that of an enclosing :func:`blas_threads`."""
    counts = [int(lib.num_threads) for lib in _controller().select(user_api="blas").lib_controllers]
    return max(counts, default=1)


def small_factorisation(order: int):
    """Context for a dense factorisation of the given order (single-threaded when large enough)."""
    return blas_threads(1) if order >= MIN_ORDER else contextlib.nullcontext()
