"""ReLU MLP decoders ``m -> hidden... -> n`` trained by the project's augmented Lagrangian solver.

Two registered names, reported side by side (honest names):

* ``alm``        -- the ALM alone (``polish=False``): the weights are those of the ALM iterate.
* ``alm+lbfgs``  -- the ALM followed by an L-BFGS-B refinement of the forward-pass loss
  (``polish=True``, the solver's ``polish`` step), run until ``time_limit`` or early stopping.

Training (:func:`train_mlp_alm`, shared with the residual decoders) builds
``TrainingProblem(X_std, T, (n_in, *hidden, n_out), loss="mse", weight_bound=None)`` (no weight
box: the decoder is a large unboxed problem) and calls :func:`unrectify.backends.alm.solve_alm`
with a wall-clock limit, then (``alm+lbfgs`` only) the refinement.  The ALM starts from the
weights its Adam twin starts from (:func:`~.mlp.twin_start`), not from the solver's own
kink-in-data start, whose least-squares output layer overfits a few thousand training pairs
from the first iteration (digits, 50 %: 1.2 dB lower PSNR than from the twin start).
At decoder size the solver runs its reduced-space method (docs/alm.md), whose outer iteration is
one pass over the training pairs; by default (``max_outer=None``) the ALM runs until the time
limit, a stall or convergence, so ``alm`` uses the same budget as its Adam twin. (A cap of 3
outer iterations, the default before the reduced method, stopped it after 3 passes over the
data with the penalty still small.) This module only calls the solver's public entry point.

Early stopping (``validation`` > 0; 0.1 by default, 0 turns it off): that fraction of the
training pairs (seeded) is held out (not trained on); the validation MSE is measured after every outer iteration of the
ALM (``solve_alm(callback=...)``) and every ``check_every`` refinement iterations
(``polish_callback``); the weights with the lowest one are returned, and the refinement stops
after ``patience`` checks without a new lowest.
Inputs are standardised per coordinate for training and the standardisation is folded into the
first layer, so the returned weights act on raw inputs (reconstruction is the shared numpy
:func:`~unrectify.cs.decoders.mlp.mlp_forward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unrectify.formulations.errors import InputError

from ..errors import CSInputError
from .base import register_decoder
from .mlp import (MLPDecoder, Weights, fold_standardisation, mlp_forward, standardiser, training_and_held_out,
                  twin_start)


def check_alm_options(time_limit: float, max_outer: int | None, max_inner: int | None, restarts: int,
                      validation: float, check_every: int, patience: int, dtype: str | None = None,
                      alm_options: dict[str, Any] | None = None) -> None:
    """Raise :class:`CSInputError` for out-of-range ALM decoder options; ``dtype`` and the
    ``alm_options`` passed on to the ALM solver are checked by the solver's own option checks,
    so a bad one fails when the decoder is built, not after training starts."""
    if not (np.isfinite(time_limit) and time_limit > 0):
        raise CSInputError(f"alm time_limit must be a positive number of seconds, got {time_limit!r}")
    if (max_outer is not None and int(max_outer) < 1) or (max_inner is not None and int(max_inner) < 1) \
            or int(restarts) < 1:
        raise CSInputError(f"alm max_outer, max_inner and restarts must be >= 1, got {max_outer}, {max_inner}, {restarts}")
    if not (0 <= validation < 1):
        raise CSInputError(f"alm validation must be a fraction in [0, 1), got {validation!r}")
    if int(check_every) < 1 or int(patience) < 1:
        raise CSInputError(f"alm check_every and patience must be >= 1, got {check_every}, {patience}")
    if alm_options is not None and not isinstance(alm_options, dict):
        raise CSInputError(f"alm_options must be a dict of ALM solver options, got {alm_options!r}")
    from unrectify.backends.alm.backend import check_alm_kwargs

    try:
        check_alm_kwargs({**dict(alm_options or {}), **({} if dtype is None else {"dtype": dtype})})
    except InputError as exc:
        raise CSInputError(f"alm: {exc}") from None


def train_mlp_alm(
    X: np.ndarray, T: np.ndarray, hidden: Sequence[int], *, groups: np.ndarray | None = None,
    time_limit: float = 30.0, max_outer: int | None = None,
    max_inner: int | None = None, polish: bool = False, restarts: int = 1, validation: float = 0.0,
    check_every: int = 10,
    patience: int = 5, dtype: str = "float32", seed: int = 0, progress: bool = False,
    alm_options: dict[str, Any] | None = None, zero_output: bool = False,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Weights, dict[str, Any]]:
    """Train the ReLU MLP ``X -> T`` by the ALM (then L-BFGS-B when ``polish``) on the MSE.
    A ``validation`` fraction of the pairs (whole ``groups`` when given) is held out, or
    ``validation_data = (X_val, T_val)`` is given (then all of ``X, T`` is trained on).

    With held-out pairs the validation MSE is measured after every outer iteration of the ALM
    and every ``check_every`` refinement iterations; the weights with the lowest one are
    returned (the refinement stops after ``patience`` checks without a new lowest).

    The ALM starts from :func:`~.mlp.twin_start` (the start of the Adam twin, ``zero_output`` as
    there) unless ``alm_options`` gives ``init``.

    Returns weights acting on raw ``X`` and ``info`` with ``result`` (the solver's ALMResult),
    ``validation_history`` (``(phase, iteration, validation MSE)`` with phase ``"alm"`` or
    ``"polish"``; ``"alm restart r"`` for the iterates of restart ``r >= 1``) and
    ``best_validation`` (``(phase, iteration)`` of the returned weights, or None without
    held-out pairs).
    """
    from unrectify.backends.alm import solve_alm
    from unrectify.formulations.problem import TrainingProblem

    Xt, Tt, Xv, Tv = training_and_held_out(X, T, validation, seed, groups, validation_data)
    mu, sd = standardiser(Xt)
    widths = (X.shape[1], *[int(h) for h in hidden], T.shape[1])
    problem = TrainingProblem((Xt - mu) / sd, Tt, widths, loss="mse", weight_bound=None)
    history: list[tuple[str, int, float]] = []
    best: dict[str, Any] = {"mse": np.inf, "weights": None, "at": None, "since": 0}
    Xv_std = None if Xv is None else (Xv - mu) / sd

    def check(phase: str, it: int, w: Weights) -> None:
        v = float(np.mean((mlp_forward(w, Xv_std) - Tv) ** 2))
        history.append((phase, it, v))
        if not np.isfinite(v):   # a diverged iterate is never kept, and does not end the refinement
            return
        if v < best["mse"]:
            best.update(mse=v, weights=[(W.astype(np.float64), b.astype(np.float64)) for W, b in w],
                        at=(phase, it), since=0)
        else:
            best["since"] += 1

    on_outer = monitor = None
    if Xv_std is not None:

        def on_outer(rec: dict) -> bool:   # the ALM's own iterates: keep the best, never stop
            r = int(rec.get("restart", 0))    # later restarts' iterates are named by restart
            check("alm" if r == 0 else f"alm restart {r}", int(rec["outer"]), rec["weights"])
            best["since"] = 0
            return False

        def monitor(it: int, w: Weights, loss: float) -> bool:
            if it % int(check_every):
                return False
            check("polish", it, w)
            return best["since"] >= int(patience)

    # the refinement runs until early stopping or the time limit (its iteration cap is not binding)
    start = twin_start(widths, seed, None if zero_output else Tt.mean(axis=0))
    opts = {"polish": bool(polish), "init": start, **({"polish_iters": 100_000} if polish else {}),
            **({"max_inner": int(max_inner)} if max_inner is not None else {}), **(alm_options or {})}
    # no outer cap by default: the wall-clock limit ends the run (or a stall / convergence)
    result = solve_alm(problem, restarts=int(restarts), seed=int(seed),
                       max_outer=10**9 if max_outer is None else int(max_outer), time_limit=float(time_limit),
                       dtype=dtype, progress=progress, callback=on_outer,
                       polish_callback=monitor if polish else None, **opts)
    weights = [(W.copy(), b.copy()) for W, b in result.weights]
    if best["weights"] is not None:
        final = float(np.mean((mlp_forward(weights, Xv_std) - Tv) ** 2))
        if best["mse"] < final:
            weights = best["weights"]
        else:
            best["at"] = ("final", None)
    return fold_standardisation(weights, mu, sd), {"result": result, "validation_history": history,
                                                   "best_validation": best["at"]}


@register_decoder("alm")
class ALMDecoder(MLPDecoder):
    """ReLU MLP trained by the ALM alone (``alm``; see :class:`ALMLBFGSDecoder` for ``alm+lbfgs``).

    Options: ``hidden`` (default (256, 256)), ``time_limit`` (seconds, default 30), ``max_outer``
    (None: no cap, the time limit ends the run), ``max_inner`` (None: the solver's default),
    ``polish`` (False here), ``validation`` (held-out fraction for early
    stopping, default 0.1: the ALM iterate or refinement iterate with the lowest held-out MSE
    is returned; 0: off), ``check_every`` (10 refinement iterations),
    ``patience`` (5 checks), ``restarts`` (1), ``dtype`` ("float32"), ``seed``, ``progress``,
    ``alm_options`` (dict of further :func:`~unrectify.backends.alm.solve_alm` options).
    Fitted: ``weights_``, ``result_`` (the ALMResult: history, violation, status),
    ``validation_history_`` (``(phase, iteration, held-out MSE)``), ``train_info_`` (with
    ``best_validation``: where the returned weights came from)."""

    name = "alm"

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256), time_limit: float = 30.0,
        max_outer: int | None = None, max_inner: int | None = None, polish: bool = False, restarts: int = 1,
        validation: float = 0.1, check_every: int = 10, patience: int = 5,
        dtype: str = "float32", seed: int = 0,
        progress: bool = False, alm_options: dict[str, Any] | None = None,
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, hidden=hidden, shape=shape, clip=clip)
        check_alm_options(time_limit, max_outer, max_inner, restarts, validation, check_every, patience, dtype,
                          alm_options)
        self.time_limit, self.max_outer, self.max_inner = float(time_limit), max_outer, max_inner
        self.restarts, self.dtype, self.seed, self.progress = int(restarts), str(dtype), int(seed), bool(progress)
        self.polish = bool(polish)
        self.validation, self.check_every, self.patience = float(validation), int(check_every), int(patience)
        self.alm_options = dict(alm_options or {})

    def _train(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> Weights:
        weights, info = train_mlp_alm(
            Y, S, self.hidden, groups=groups, time_limit=self.time_limit, max_outer=self.max_outer, max_inner=self.max_inner,
            polish=self.polish, restarts=self.restarts, validation=self.validation, check_every=self.check_every,
            patience=self.patience, dtype=self.dtype, seed=self.seed, progress=self.progress,
            alm_options=self.alm_options,
        )
        self.result_ = info["result"]
        self.train_info_ = {k: v for k, v in info.items() if k != "result"}
        self.validation_history_ = info["validation_history"]
        return weights


@register_decoder("alm+lbfgs")
class ALMLBFGSDecoder(ALMDecoder):
    """``alm+lbfgs``: the ALM decoder followed by the L-BFGS-B refinement (``polish=True``).

    Same options as :class:`ALMDecoder`; only the default of ``polish`` differs."""

    name = "alm+lbfgs"

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256), time_limit: float = 30.0,
        max_outer: int | None = None, max_inner: int | None = None, polish: bool = True, restarts: int = 1,
        validation: float = 0.1, check_every: int = 10, patience: int = 5,
        dtype: str = "float32", seed: int = 0,
        progress: bool = False, alm_options: dict[str, Any] | None = None,
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, hidden=hidden, time_limit=time_limit, max_outer=max_outer, max_inner=max_inner,
                         polish=polish, restarts=restarts, validation=validation, check_every=check_every,
                         patience=patience, dtype=dtype, seed=seed, progress=progress, alm_options=alm_options,
                         shape=shape, clip=clip)
