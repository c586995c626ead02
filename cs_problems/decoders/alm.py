"""ReLU MLP decoder ``m -> hidden... -> n`` trained by the project's augmented Lagrangian solver.

Training builds ``TrainingProblem(Y_std, S, (m, *hidden, n), loss="mse", weight_bound=None)``
(no weight box: the decoder is a large unboxed problem) and calls
:func:`unrectify.backends.alm.solve_alm` with a wall-clock limit: a short ALM phase (``max_outer`` outer
iterations of ``max_inner`` sweeps from a kink-in-data start) and then, with ``polish`` (the
default), L-BFGS-B on the forward-pass loss (``unrectify.backends.alm.polish``).
Measured on digits (docs/alm.md): at this size the ALM phase alone does not reach a feasible
point within a minute (its violation stalls near 0.1 and the forward loss rises), so the
polish does most of the fitting; ``polish=False`` gives the pure ALM decoder.

Optional early stopping (``validation`` > 0; off by default): that fraction of the training
pairs (seeded) is held out; every ``check_every`` polish iterations the validation MSE of the
current weights is measured (``solve_alm(polish_callback=...)``), the best weights are kept and
the polish stops after ``patience`` checks without improvement (or at ``time_limit``).
Measured on digits at 10 % (1500 training images, 100 test): the ALM decoder reaches a *lower
training* MSE than Adam (0.018 vs 0.022) but a higher test MSE (0.046 vs 0.037), and a longer
time limit lowers the training loss and raises the test loss (60 s: 0.011 / 0.051); holding out
10 % for early stopping did not help (test 0.049), so the gap to Adam is not plain
overfitting in time but the kind of minimum full-batch refinement finds.  The Adam decoder
takes the same ``validation`` option (best epoch on the same split).  On MNIST (5000 images)
the decoder is under-trained instead: 112 refinement iterations fit in the 30 s (0.075 s per
full-batch float32 loss and gradient) against Adam's ~4 700 minibatch steps, and its training
MSE is 1.6-2.6x Adam's (docs/cs_results.md).
Measurements are standardised per coordinate for training and the standardisation is folded
into the first layer, so the returned weights act on raw measurements (reconstruction is the
shared numpy :func:`~unrectify.cs.decoders.mlp.mlp_forward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSInputError
from .base import register_decoder
from .mlp import MLPDecoder, Weights, mlp_forward, validation_split


class ALMDecoder(MLPDecoder):
    """ReLU MLP trained by the ALM. Options: ``hidden`` (default (256, 256)), ``time_limit``
    (seconds, default 30), ``max_outer`` (3), ``max_inner`` (5 sweeps), ``polish`` (True),
    ``validation`` (0: off; a fraction enables early stopping), ``check_every`` (10 polish iterations),
    ``patience`` (5 checks), ``restarts`` (1), ``dtype`` ("float32"), ``seed``, ``progress``,
    ``alm_options`` (dict of further :func:`~unrectify.backends.alm.solve_alm` options)."""

    name = "alm"

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256), time_limit: float = 30.0,
        max_outer: int = 3, max_inner: int = 5, polish: bool = True, restarts: int = 1,
        validation: float = 0.0, check_every: int = 10, patience: int = 5,
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
        if not (0 <= validation < 1):
            raise CSInputError(f"alm validation must be a fraction in [0, 1), got {validation!r}")
        if int(check_every) < 1 or int(patience) < 1:
            raise CSInputError(f"alm check_every and patience must be >= 1, got {check_every}, {patience}")
        self.validation, self.check_every, self.patience = float(validation), int(check_every), int(patience)
        self.validation_history: list[tuple[int, float]] = []  # (polish iteration, validation MSE)
        self.alm_options = dict(alm_options or {})
        self.result: Any = None  # the ALMResult of the last fit (history, violation, status)

    def _train(self, Y: np.ndarray, S: np.ndarray) -> Weights:
        from unrectify.backends.alm import solve_alm
        from unrectify.formulations.problem import TrainingProblem

        Yt, St, Yv, Sv = validation_split(Y, S, self.validation, self.seed)
        mu = Yt.mean(axis=0)
        sd = Yt.std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        problem = TrainingProblem((Yt - mu) / sd, St, tuple(self.widths), loss="mse", weight_bound=None)
        self.validation_history = []
        best: list[Any] = [np.inf, None, 0]  # validation MSE, weights, checks since improvement
        monitor = None
        if Yv is not None:
            Yv_std = (Yv - mu) / sd

            def monitor(it: int, w: Weights, loss: float) -> bool:
                if it % self.check_every:
                    return False
                v = float(np.mean((mlp_forward(w, Yv_std) - Sv) ** 2))
                self.validation_history.append((it, v))
                if v < best[0]:
                    best[:] = [v, w, 0]
                    return False
                best[2] += 1
                return best[2] >= self.patience

        # the polish runs until early stopping or the time limit (its iteration cap is not binding)
        opts = {"polish": self.polish, "polish_iters": 100_000, **self.alm_options}
        self.result = solve_alm(problem, restarts=self.restarts, seed=self.seed, max_outer=self.max_outer,
                                max_inner=self.max_inner, time_limit=self.time_limit, dtype=self.dtype,
                                progress=self.progress, polish_callback=monitor, **opts)
        weights = [(W.copy(), b.copy()) for W, b in self.result.weights]
        if best[1] is not None:
            final = float(np.mean((mlp_forward(weights, Yv_std) - Sv) ** 2))
            if best[0] < final:
                weights = best[1]
        W1, b1 = weights[0]
        W1 = W1 / sd  # fold x = (y - mu) / sd into the first layer
        weights[0] = (W1, b1 - W1 @ mu)
        return weights


register_decoder("alm", ALMDecoder)
