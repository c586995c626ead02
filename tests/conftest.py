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
