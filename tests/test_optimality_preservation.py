"""The paper's claim on random 1-D instances (N = 10, widths 1,2,1, B = 2, mse): the certified
optima of split/binary and split/interval agree, and agree with an independent global optimum
from pattern enumeration (tests/oracle.py)."""

import pytest

from unrectify.formulations import random_instance
from unrectify import solve
from unrectify.verify import ATOL, RTOL

from .conftest import needs
from .oracle import enumerate_optimum


def check_instance(seed, symmetry="all", time_limit=300, n=10):
    p = random_instance(n, (1, 2, 1), seed=seed, weight_bound=2.0, loss="mse")
    exact = enumerate_optimum(p.X, p.Y, 2, 2.0)
    sols = {d: solve(p, "split", d, backend="scip", time_limit=time_limit, symmetry_breaking=symmetry)
            for d in ("binary", "interval")}
    for d, s in sols.items():
        assert s.status == "optimal", (d, s.status, s.objective, s.bound)
        assert s.certified_optimal, (d, s.certificate)
        # the model objective recomputed at the point is the network's loss; the solver's own
        # objective (s.objective) agrees with it to the certificate's tolerance (certified_optimal)
        assert s.certificate.forward_loss == pytest.approx(s.certificate.objective_recomputed, rel=1e-6)
        assert s.solver_objective == s.objective
        assert s.objective == pytest.approx(exact, rel=RTOL, abs=ATOL)
    assert sols["binary"].objective == pytest.approx(sols["interval"].objective, rel=RTOL, abs=ATOL)


@needs("scip")
def test_split_binary_equals_interval_equals_enumeration():
    check_instance(0)


@pytest.mark.slow
@needs("scip")
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_split_binary_equals_interval_equals_enumeration_more_seeds(seed):
    check_instance(seed)


@pytest.mark.slow
@needs("scip")
def test_without_symmetry_breaking():
    # Without symmetry breaking the search grows fast with N: N = 6 was still open after 600 s,
    # and at N = 4 some seeds are open after 120 s.  N = 4, seed 0 has a non-zero optimum
    # (0.00181, not an exact fit) and is certified in both domains in about 25 s on a loaded
    # 2-core machine, far inside the limit: the test cannot pass on a wrong optimum.
    check_instance(0, symmetry="none", time_limit=300, n=4)


def test_agreement_is_reported_absolutely_near_zero():
    """Optima within ATOL of zero: a relative figure would measure only solver tolerances
    (1e-9 against -8e-10 is '1.9 relative'); the verdict states the absolute difference."""
    from unrectify.verify import ATOL, _difference

    assert _difference(1e-9, -8e-10) == f"1.8e-09 absolute (both within {ATOL:g} of zero)"
    assert _difference(2.0, 2.0 + 2e-7) == "1.0e-07 relative"


def test_verify_without_symmetry_breaking_maps_back():
    """No symmetry breaking: a solution records [] applied kinds, and mapping the relaxed point
    back to the binary form rebuilds a model from that record (an empty list is 'none')."""
    from unrectify.formulations.builder import symmetry_kinds
    from unrectify.verify import verify

    assert symmetry_kinds([]) == () and symmetry_kinds(()) == ()
    report = verify(random_instance(3), ["split"], "scip", 20, "none")
    assert [v.tight for v in report.verdicts] == [True]
