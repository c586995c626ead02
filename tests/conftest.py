import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from unrectify.backends import available_backends  # noqa: E402

INSTALLED = set(available_backends())


def needs(backend: str):
    return pytest.mark.skipif(backend not in INSTALLED, reason=f"backend {backend} not installed")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_terminal_summary(terminalreporter):
    """Print the size of the bad-input corpus that ran (tests/test_bad_inputs.py)."""
    import sys

    mod = sys.modules.get("tests.test_bad_inputs")
    if mod is not None and mod.CORPUS:
        terminalreporter.write_line(f"bad-input corpus: {len(mod.CORPUS)} cases passed")
