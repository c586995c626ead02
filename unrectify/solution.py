"""Re-exports of the result types (kept for ``from unrectify.solution import ...``).

They live in the lowest layer that needs them: :class:`Certificate` and its functions in
:mod:`unrectify.formulations.certificate`, :class:`Solution` in :mod:`unrectify.backends.results`.
"""

from unrectify.backends.results import Result, Solution
from unrectify.formulations.certificate import (AGREEMENT_ATOL, AGREEMENT_RTOL, VIOLATION_TOL, Certificate, certify,
                                                certify_split_iterate, gate, losses_agree)

__all__ = ["AGREEMENT_ATOL", "AGREEMENT_RTOL", "VIOLATION_TOL", "Certificate", "Result", "Solution", "certify",
           "certify_split_iterate", "gate", "losses_agree"]
