r"""Residual decoders: learned linear estimate + ReLU residual network + measurement consistency.

Structure (one decoder, three parts, all vectorised over images)::

    x_lin(y) = A y + c                                 ridge linear decoder (closed form)
    x_net(y) = x_lin(y) + f(y)                         f: ReLU MLP  m -> hidden... -> n
    x_hat(y) = C_k(x_net(y); y)                        measurement-consistency step

Step-size selection: ``lr`` and ``batch_size`` may each be a list; the network is then
trained once per pair of the grid ``batch_size x lr`` (each with the whole ``time_limit``, from
the same start) and the one with the lowest held-out MSE of ``f`` is kept (``batch_size_``,
``lr_``; every pair's held-out MSE in ``train_info_["step_choices"]``). The two trainers
prefer different step sizes on some data (docs/cs_results.md), so each twin can be run at its
own held-out choice instead of at one guessed for it.

``f`` is trained on the residual targets ``s - x_lin(y)`` with its output layer started at zero,
so training starts from the linear decoder. A ``validation`` fraction of the training pairs is
held out (not trained on) and used twice. Early stopping (``early_stopping=True``, default):
the trainer measures the held-out MSE of ``f`` after every Adam epoch / every ALM outer
iteration (and every ``check_every`` refinement iterations) and returns the weights with the
lowest one, so neither twin's result depends on how many steps its budget happened to allow
on a small training set. Then the residual is kept only if it lowers the held-out MSE (else
``f = 0``): the decoder cannot do worse than its linear part on those pairs. The same architecture is trained by Adam (``res-adam``), by the ALM alone
(``res-alm``) or by the ALM followed by L-BFGS-B (``res-alm+lbfgs``), through the same trainers
as the plain MLP decoders (:func:`~unrectify.cs.decoders.adam.train_mlp_adam`,
:func:`~unrectify.cs.decoders.alm.train_mlp_alm`); the ALM twins take the decoder's
``batch_size``, ``lr`` and ``schedule`` for the ALM's inner Adam steps on the weights (ALM options
``batch_size``, ``lr``, ``lr_schedule``), so both twins step alike and differ in the objective
they descend (the augmented Lagrangian of the split form against the forward-pass loss).

Consistency step ``C_k`` (``P = Phi^+ = Phi^T (Phi Phi^T)^{-1}``, ``B = [0, 1]^n``):

* ``"project"``: ``k`` rounds of ``x <- clip_B(x - P (Phi x - y))``: alternating projections
  onto the affine set ``{x : Phi x = y}`` and the box. For noiseless data both sets contain the
  true image ``s``, and a projection onto a closed convex set containing ``s`` never increases
  the distance to ``s``; so each round can only lower the error.
* ``"gradient"``: ``k`` steps ``x <- clip_B(x - eta Phi^T (Phi x - y))`` with
  ``eta = step / ||Phi||_2^2`` (gradient descent on ``1/2 ||Phi x - y||^2``; for noisy data it
  moves towards consistency without fitting the noise exactly).
* ``"none"``: ``x_hat = x_net``.
* ``"auto"`` (default): the mode with the lowest MSE on the held-out pairs.

Fitted attributes: ``coef_``/``intercept_`` (``A``, ``c``), ``weights_`` (the residual MLP,
acting on raw measurements), ``residual_used_``, ``consistency_`` (the mode used),
``validation_mse_`` (held-out MSE of each candidate), ``batch_size_`` and ``lr_`` (the step
set-up trained with), ``train_info_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSInputError
from .adam import SCHEDULES, check_adam_options, import_torch, train_mlp_adam
from .alm import check_alm_options, train_mlp_alm
from .base import Decoder, register_decoder
from .mlp import Weights, check_trainable, mlp_forward, validation_split

TRAINERS = ("adam", "alm", "alm+lbfgs")
CONSISTENCY = ("auto", "project", "gradient", "none")


def ridge_fit(Y: np.ndarray, S: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(A, c)`` minimising ``sum ||s_i - A y_i - c||^2 + alpha ||A||_F^2``; ``A`` is ``(n, m)``."""
    y_mean, s_mean = Y.mean(axis=0), S.mean(axis=0)
    Yc, Sc = Y - y_mean, S - s_mean
    G = Yc.T @ Yc + alpha * np.eye(Y.shape[1])
    A_T = np.linalg.lstsq(G, Yc.T @ Sc, rcond=None)[0]
    return A_T.T, s_mean - y_mean @ A_T


def candidates(name: str, value: Any) -> list[Any]:
    """A number, or a non-empty list/tuple of them, as a list (values checked by the trainer)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise CSInputError(f"{name} candidates must not be empty")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise CSInputError(f"{name} must be a number or a list of numbers, got {value!r}")
    return values


def consistency_step(X: np.ndarray, Y: np.ndarray, Phi: np.ndarray, Phi_pinv: np.ndarray, mode: str,
                     rounds: int, step: float = 1.0) -> np.ndarray:
    """Apply ``C_k`` (module docstring) to the rows of ``X`` ``(N, n)`` with measurements ``Y``."""
    if mode == "none" or rounds == 0:
        return X
    X = X.copy()
    if mode == "project":
        for _ in range(rounds):
            X -= (X @ Phi.T - Y) @ Phi_pinv.T
            np.clip(X, 0.0, 1.0, out=X)
        return X
    if mode == "gradient":
        eta = step / float(np.linalg.norm(Phi, 2) ** 2)
        for _ in range(rounds):
            X -= eta * ((X @ Phi.T - Y) @ Phi)
            np.clip(X, 0.0, 1.0, out=X)
        return X
    raise CSInputError(f"unknown consistency mode {mode!r}; valid: {', '.join(CONSISTENCY)}")


class ResidualDecoder(Decoder):
    """Linear + ReLU residual + consistency decoder (module docstring). Options:

    ``trainer`` (``adam`` | ``alm`` | ``alm+lbfgs``), ``hidden`` (residual MLP widths, default
    (256, 256)), ``alpha`` (ridge weight), ``consistency`` (``auto`` | ``project`` | ``gradient``
    | ``none``), ``rounds`` (consistency rounds/steps, 3), ``step`` (gradient step, 1.0),
    ``validation`` (held-out fraction for early stopping and the residual/consistency choices,
    0.1; 0: train to the end, keep the residual and use ``project`` under ``auto``),
    ``early_stopping`` (True: return the trainer's weights with the lowest held-out MSE; False:
    its last weights), ``time_limit`` (training seconds per trained network; None = Adam
    epochs only; ALM default 30), ``batch_size`` and ``lr`` (a number or a list of candidates,
    module docstring; they serve both trainers), Adam: ``epochs``, ``weight_decay``,
    ``schedule``; ALM: ``max_outer`` (None: no cap, the time limit ends the run), ``max_inner``,
    ``restarts``, ``dtype``, ``alm_options``;
    ``seed``, ``progress``.
    """

    name = "res"
    learned = True
    trainer_default = "adam"
    #: options read by one trainer only (``batch_size``, ``lr``, ``schedule`` serve both)
    TRAINER_ONLY = {"adam": ("epochs", "weight_decay"),
                    "alm": ("max_outer", "max_inner", "restarts", "dtype", "alm_options")}

    @classmethod
    def options_ignored(cls, options: dict[str, Any]) -> list[str]:
        """The given options that this variant's trainer would ignore (refused, never dropped)."""
        trainer = options.get("trainer", cls.trainer_default)
        other = "alm" if trainer == "adam" else "adam"
        return sorted(k for k in options if k in cls.TRAINER_ONLY[other])

    def __init__(
        self, Phi: np.ndarray, *, trainer: str | None = None, hidden: Sequence[int] = (256, 256),
        alpha: float = 1e-3, consistency: str = "auto", rounds: int = 3, step: float = 1.0,
        validation: float = 0.1, early_stopping: bool = True, time_limit: float | None = None, epochs: int = 60,
        batch_size: int | Sequence[int] = 64, lr: float | Sequence[float] = 1e-3, weight_decay: float = 0.0,
        schedule: str = "cosine", max_outer: int | None = None,
        max_inner: int | None = None, restarts: int = 1, dtype: str = "float32",
        alm_options: dict[str, Any] | None = None,
        seed: int = 0, progress: bool = False, shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        trainer = self.trainer_default if trainer is None else trainer
        if trainer not in TRAINERS:
            raise CSInputError(f"unknown residual trainer {trainer!r}; valid: {', '.join(TRAINERS)}")
        hidden = tuple(int(h) for h in hidden)
        if len(hidden) == 0 or any(h <= 0 for h in hidden):
            raise CSInputError(f"hidden widths must be positive integers, got {hidden}")
        check_trainable([self.m, *hidden, self.n], f"decoder {self.name!r}")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise CSInputError(f"ridge alpha must be finite and >= 0, got {alpha!r}")
        if consistency not in CONSISTENCY:
            raise CSInputError(f"unknown consistency mode {consistency!r}; valid: {', '.join(CONSISTENCY)}")
        if int(rounds) < 0 or not (np.isfinite(step) and 0 < step < 2):
            raise CSInputError(f"rounds must be >= 0 and step in (0, 2), got {rounds!r}, {step!r}")
        if not (0 <= validation < 1):
            raise CSInputError(f"validation must be a fraction in [0, 1), got {validation!r}")
        alm_time = 30.0 if time_limit is None else time_limit
        grid = [(b, r) for b in candidates("batch_size", batch_size) for r in candidates("lr", lr)]
        if len(grid) > 1 and validation == 0:
            raise CSInputError("several batch_size/lr candidates need held-out pairs to choose among them "
                               "(validation > 0)")
        for b, r in grid:
            if trainer == "adam":
                check_adam_options(epochs, b, r, weight_decay, 0.0, time_limit, schedule)
            else:
                check_alm_options(alm_time, max_outer, max_inner, restarts, 0.0, 10, 5, dtype,
                                  {"batch_size": b, "lr": r, "lr_schedule": schedule, **dict(alm_options or {})})
        if trainer == "adam":
            import_torch(f"decoder {self.name!r}", warm=True)
        elif schedule not in SCHEDULES:
            raise CSInputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        self.trainer, self.hidden, self.alpha = trainer, hidden, float(alpha)
        self.consistency, self.rounds, self.step = consistency, int(rounds), float(step)
        if not isinstance(early_stopping, (bool, np.bool_)):
            raise CSInputError(f"early_stopping must be True or False, got {early_stopping!r}")
        self.validation, self.early_stopping = float(validation), bool(early_stopping)
        self.time_limit = None if time_limit is None else float(time_limit)
        self.epochs, self.step_grid = int(epochs), [(int(b), float(r)) for b, r in grid]
        self.weight_decay, self.schedule = float(weight_decay), schedule
        self.max_outer, self.max_inner, self.restarts, self.dtype = max_outer, max_inner, int(restarts), dtype
        self.alm_options = dict(alm_options or {})
        self.seed, self.progress = int(seed), bool(progress)
        self._alm_time = float(alm_time)
        self.Phi_pinv = np.linalg.pinv(self.Phi)

    # ------------------------------------------------------------------ parts
    def linear_estimate(self, Y: np.ndarray) -> np.ndarray:
        """``x_lin(y) = A y + c`` for every row of ``Y``."""
        return Y @ self.coef_.T + self.intercept_

    def network_estimate(self, Y: np.ndarray) -> np.ndarray:
        """``x_net(y) = x_lin(y) + f(y)`` (``f = 0`` when the residual was not kept)."""
        X = self.linear_estimate(Y)
        return X + mlp_forward(self.weights_, Y) if self.residual_used_ else X

    def _train_residual(self, Y: np.ndarray, R: np.ndarray, held_out: tuple[np.ndarray, np.ndarray] | None,
                        batch_size: int, lr: float) -> tuple[Weights, dict[str, Any]]:
        desc = f"{self.name} m={self.m}" + (f" b={batch_size} lr={lr:g}" if len(self.step_grid) > 1 else "")
        if self.trainer == "adam":
            return train_mlp_adam(
                Y, R, self.hidden, epochs=self.epochs, batch_size=batch_size, lr=lr,
                weight_decay=self.weight_decay, time_limit=self.time_limit, schedule=self.schedule,
                zero_output=True, seed=self.seed, progress=self.progress, desc=desc,
                validation_data=held_out,
            )
        # the twin's minibatch, step size and schedule for the ALM's inner Adam steps
        twin = {"batch_size": batch_size, "lr": lr, "lr_schedule": self.schedule}
        return train_mlp_alm(
            Y, R, self.hidden, time_limit=self._alm_time, max_outer=self.max_outer, max_inner=self.max_inner,
            polish=self.trainer == "alm+lbfgs", restarts=self.restarts, dtype=self.dtype, seed=self.seed,
            progress=self.progress, alm_options={**twin, **self.alm_options}, zero_output=True,
            validation_data=held_out,
        )

    def _choose_step(self, Y: np.ndarray, R: np.ndarray, held_out: tuple[np.ndarray, np.ndarray] | None,
                     Yv: np.ndarray, Rv: np.ndarray) -> tuple[Weights, dict[str, Any]]:
        """Train once per ``(batch_size, lr)`` of the grid; keep the lowest held-out MSE of ``f``."""
        tried, best = [], None
        for b, r in self.step_grid:
            w, info = self._train_residual(Y, R, held_out, b, r)
            v = float(np.mean((mlp_forward(w, Yv) - Rv) ** 2))
            tried.append({"batch_size": b, "lr": r, "validation_mse": v})
            if np.isfinite(v) and (best is None or v < best[0]):
                best = (v, w, info, b, r)
        if best is None:
            raise CSInputError(f"decoder {self.name!r}: every batch_size/lr candidate diverged "
                               "(non-finite held-out error)")
        _, w, info, self.batch_size_, self.lr_ = best
        return w, {**info, "step_choices": tried, "step_chosen": [self.batch_size_, self.lr_]}

    def _fit(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> None:
        Yt, St, Yv, Sv = validation_split(Y, S, self.validation, self.seed, groups)
        self.coef_, self.intercept_ = ridge_fit(Yt, St, self.alpha)
        R = St - self.linear_estimate(Yt)
        X_lin = None if Yv is None else self.linear_estimate(Yv)
        held_out = None if Yv is None or not self.early_stopping else (Yv, Sv - X_lin)
        if len(self.step_grid) == 1:
            self.batch_size_, self.lr_ = self.step_grid[0]
            self.weights_, info = self._train_residual(Yt, R, held_out, *self.step_grid[0])
        else:
            self.weights_, info = self._choose_step(Yt, R, held_out, Yv, Sv - X_lin)
        self.train_info_ = {k: v for k, v in info.items() if k != "result"}
        self.result_ = info.get("result")
        self.residual_used_ = True
        self.consistency_ = "project" if self.consistency == "auto" else self.consistency
        self.validation_mse_: dict[str, float] = {}
        if Yv is None:
            return
        X_net = X_lin + mlp_forward(self.weights_, Yv)
        modes = ("none", "project", "gradient") if self.consistency == "auto" else (self.consistency,)
        scores = {}
        for used, X0 in ((True, X_net), (False, X_lin)):
            for mode in modes:
                X = consistency_step(X0, Yv, self.Phi, self.Phi_pinv, mode, self.rounds, self.step)
                scores[(used, mode)] = float(np.mean((np.clip(X, 0, 1) - Sv) ** 2))
        self.validation_mse_ = {f"{'residual' if u else 'linear'}+{m}": v for (u, m), v in scores.items()}
        self.residual_used_, self.consistency_ = min(scores, key=scores.get)

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        return consistency_step(self.network_estimate(Y), Y, self.Phi, self.Phi_pinv, self.consistency_,
                                self.rounds, self.step)


def _residual_variant(cls_name: str, name: str, trainer: str, doc: str) -> type[ResidualDecoder]:
    cls = type(cls_name, (ResidualDecoder,),
               {"name": name, "trainer_default": trainer, "__doc__": doc, "__module__": __name__})
    if trainer == "adam":
        cls.requires = ("torch",)
    return register_decoder(name, cls)


ResidualAdamDecoder = _residual_variant(
    "ResidualAdamDecoder", "res-adam", "adam", "Residual decoder whose ReLU network is trained by Adam (``res-adam``).")
ResidualALMDecoder = _residual_variant(
    "ResidualALMDecoder", "res-alm", "alm", "Residual decoder whose ReLU network is trained by the ALM alone (``res-alm``).")
ResidualALMLBFGSDecoder = _residual_variant(
    "ResidualALMLBFGSDecoder", "res-alm+lbfgs", "alm+lbfgs",
    "Residual decoder whose ReLU network is trained by the ALM then L-BFGS-B (``res-alm+lbfgs``).")
