"""The enumeration oracle's pruning is exact: it gives the exhaustive enumeration's optimum."""

from __future__ import annotations

import pytest

from unrectify.formulations import random_instance

pytest.importorskip("cvxpy")
from .oracle import enumerate_optimum  # noqa: E402


@pytest.mark.parametrize("n, hidden, seed", [(9, 2, 0), (12, 2, 5), (6, 3, 1)])
def test_pruned_enumeration_equals_exhaustive(n: int, hidden: int, seed: int) -> None:
    p = random_instance(n, (1, hidden, 1), seed)
    full = enumerate_optimum(p.X, p.Y, hidden, p.weight_bound, prune=False)
    assert enumerate_optimum(p.X, p.Y, hidden, p.weight_bound) == pytest.approx(full, rel=1e-9, abs=1e-14)
