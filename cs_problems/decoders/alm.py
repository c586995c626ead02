"""ReLU MLP decoder ``m -> hidden... -> n`` trained by the project's augmented Lagrangian solver.

Training builds ``TrainingProblem(Y_std, S, (m, *hidden, n), loss="mse", weight_bound=None)``
(no weight box: the decoder is a large unboxed problem) and calls
:func:`backends.alm.solve_alm` with a wall-clock limit: a short ALM phase (``max_outer`` outer
iterations of ``max_inner`` sweeps from a kink-in-data start) and then, with ``polish`` (the
default), L-BFGS-B on the forward-pass loss until the time limit (``backends.alm.polish``).
Measured on digits (docs/alm.md): at this size the ALM phase alone does not reach a feasible
point within a minute (its violation stalls near 0.1 and the forward loss rises), so the
polish does most of the fitting; ``polish=False`` gives the pure ALM decoder.
Measurements are standardised per coordinate for training and the standardisation is folded
into the first layer, so the returned weights act on raw measurements (reconstruction is the
shared numpy :func:`~cs_problems.decoders.mlp.mlp_forward`).  The time limit is the only
regularisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSInputError
from .base import register_decoder
from .mlp import MLPDecoder, Weights


class ALMDecoder(MLPDecoder):
    """ReLU MLP trained by the ALM. Options: ``hidden`` (default (256, 256)), ``time_limit``
    (seconds, default 30), ``max_outer`` (3), ``max_inner`` (5 sweeps), ``polish`` (True),
    ``restarts`` (1), ``dtype`` ("float32"), ``seed``, ``progress``, ``alm_options`` (dict of
    further :func:`~backends.alm.solve_alm` options)."""

    name = "alm"

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256), time_limit: float = 30.0,
        max_outer: int = 3, max_inner: int = 5, polish: bool = True, restarts: int = 1,
        dtype: str = "float32", seed: int = 0,
        progress: bool = False, alm_options: dict[str, Any] | None = None,
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, hidden=hidden, shape=shape, clip=clip)
        if not (np.isfinite(time_limit) and time_limit > 0):
            raise CSInputError(f"alm time_limit must be a positive number of seconds, got {time_limit!r}")
        if int(max_outer) < 1 or int(max_inner) < 1 or int(restarts) < 1:
            raise CSInputError(f"alm max_outer, max_inner and restarts must be >= 1, got {max_outer}, {max_inner}, {restarts}")
        self.time_limit, self.max_outer, self.max_inner = float(time_limit), int(max_outer), int(max_inner)
        self.restarts, self.dtype, self.seed, self.progress = int(restarts), str(dtype), int(seed), bool(progress)
        self.polish = bool(polish)
        self.alm_options = dict(alm_options or {})
        self.result: Any = None  # the ALMResult of the last fit (history, violation, status)

    def _train(self, Y: np.ndarray, S: np.ndarray) -> Weights:
        from backends.alm import solve_alm
        from formulations.problem import TrainingProblem

        mu = Y.mean(axis=0)
        sd = Y.std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        problem = TrainingProblem((Y - mu) / sd, S, tuple(self.widths), loss="mse", weight_bound=None)
        # the polish runs until the time limit (its iteration cap is not the binding limit)
        opts = {"polish": self.polish, "polish_iters": 100_000, **self.alm_options}
        self.result = solve_alm(problem, restarts=self.restarts, seed=self.seed, max_outer=self.max_outer,
                                max_inner=self.max_inner, time_limit=self.time_limit, dtype=self.dtype,
                                progress=self.progress, **opts)
        weights = [(W.copy(), b.copy()) for W, b in self.result.weights]
        W1, b1 = weights[0]
        W1 = W1 / sd  # fold x = (y - mu) / sd into the first layer
        weights[0] = (W1, b1 - W1 @ mu)
        return weights


register_decoder("alm", ALMDecoder)
