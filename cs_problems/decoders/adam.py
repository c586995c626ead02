"""ReLU MLP decoder ``m -> hidden... -> n`` trained with torch's Adam on the MSE loss.

Training (:func:`train_mlp_adam`, shared with the residual decoders) is float32 on CPU,
seeded (``torch.manual_seed`` and a seeded shuffling generator), minibatch Adam for at most
``epochs`` epochs and at most ``time_limit`` seconds, the learning rate following a cosine
decay over whichever budget is reached first (``schedule="cosine"``) or constant. With
``validation`` > 0 (the decoder's default 0.1; the same seeded split as the ALM decoder) that
fraction of the pairs is held out (not trained on) and the weights of the epoch with the lowest
validation MSE are returned (early stopping; 0 trains on all pairs and returns the last epoch).
Inputs are standardised per coordinate for training and the standardisation is folded into the
first layer, so the returned weights act on raw inputs and reconstruction is the plain numpy
:func:`~unrectify.cs.decoders.mlp.mlp_forward`. Training starts from :func:`~.mlp.twin_start` (torch's
default distribution in the hidden layers, drawn by numpy; zero output weights, output bias the
mean target, or 0 with ``zero_output=True`` for residual networks), the start the ALM twin
shares. torch is imported when the decoder is constructed (never at
package import); without torch construction raises :class:`~unrectify.cs.errors.CSDependencyError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSDependencyError, CSInputError
from .base import register_decoder
from .mlp import MLPDecoder, Weights, fold_standardisation, standardiser, training_and_held_out, twin_start

SCHEDULES = ("cosine", "constant")


_WARMED = False


def import_torch(needed_for: str = "the adam decoder", warm: bool = False) -> Any:
    """Import torch or raise :class:`CSDependencyError` naming what needs it and the install command.

    ``warm``: also run one tiny Adam step, once per process.  torch sets up its autograd and
    optimiser machinery on first use (0.9 s measured here), which would otherwise be charged to
    the time budget of whichever decoder trains first (at a 1 s budget it ran 0 steps)."""
    global _WARMED
    try:
        import torch
    except ModuleNotFoundError as exc:
        raise CSDependencyError(f"{needed_for} needs torch: pip install torch==2.13.0") from exc
    if warm and not _WARMED:
        net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        net(torch.zeros(1, 2)).sum().backward()
        opt.step()
        _WARMED = True
    return torch


def check_adam_options(epochs: int, batch_size: int, lr: float, weight_decay: float, validation: float,
                       time_limit: float | None, schedule: str) -> None:
    """Raise :class:`CSInputError` for out-of-range Adam options."""
    if any(isinstance(v, bool) or float(v) != int(v) for v in (epochs, batch_size)) \
            or int(epochs) < 1 or int(batch_size) < 1:
        raise CSInputError(f"adam epochs and batch_size must be integers >= 1, got {epochs}, {batch_size}")
    if not (np.isfinite(lr) and lr > 0) or not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise CSInputError(f"adam lr must be > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
    if not (0 <= validation < 1):
        raise CSInputError(f"adam validation must be a fraction in [0, 1), got {validation!r}")
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise CSInputError(f"adam time_limit must be a positive number of seconds or None, got {time_limit!r}")
    if schedule not in SCHEDULES:
        raise CSInputError(f"adam schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


def train_mlp_adam(
    X: np.ndarray, T: np.ndarray, hidden: Sequence[int], *, groups: np.ndarray | None = None,
    epochs: int = 60, batch_size: int = 64,
    lr: float = 1e-3, weight_decay: float = 0.0, validation: float = 0.0, time_limit: float | None = None,
    schedule: str = "constant", zero_output: bool = False, seed: int = 0, progress: bool = False,
    desc: str = "adam", validation_data: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Weights, dict[str, Any]]:
    """Train the ReLU MLP ``X -> T`` (widths ``[X.shape[1], *hidden, T.shape[1]]``) by Adam on the
    mean squared error ``(1/(N n)) sum ||f(x_i) - t_i||^2``. A ``validation`` fraction of the
    pairs (whole ``groups`` when given, see :func:`.mlp.held_out_mask`) is held out, or
    ``validation_data = (X_val, T_val)`` is given (then all of ``X, T`` is trained on); with
    held-out pairs the weights of the epoch with the lowest validation MSE are returned.

    Returns weights acting on raw ``X`` and ``info`` with ``loss_history`` (training MSE per
    epoch), ``validation_history``, ``best_epoch`` (1-based; None without held-out pairs),
    ``epochs`` run, ``steps`` and ``seconds``.
    """
    torch = import_torch()
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    X, T, Xv, Tv = training_and_held_out(X, T, validation, seed, groups, validation_data)
    mu, sd = standardiser(X)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(((X - mu) / sd).astype(np.float32))
    Tt = torch.from_numpy(T.astype(np.float32))
    widths = [X.shape[1], *[int(h) for h in hidden], T.shape[1]]
    layers: list[Any] = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    start = twin_start(widths, seed, None if zero_output else T.mean(axis=0))
    with torch.no_grad():   # the start shared with the ALM twin
        for layer, (W, b) in zip(layers[::2], start):
            layer.weight.copy_(torch.from_numpy(W.astype(np.float32)))
            layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    N = Xt.shape[0]
    info: dict[str, Any] = {"loss_history": [], "validation_history": [], "steps": 0, "best_epoch": None}
    Xv_t = None if Xv is None else torch.from_numpy(((Xv - mu) / sd).astype(np.float32))
    Tv_t = None if Tv is None else torch.from_numpy(Tv.astype(np.float32))
    best_state, best_val = None, np.inf
    bar = tqdm(range(int(epochs)), desc=desc, disable=not progress, leave=False)
    out_of_time = False
    for epoch in bar:
        perm = torch.randperm(N, generator=gen)
        total = 0.0
        seen = 0
        for start in range(0, N, int(batch_size)):
            if time_limit is not None or schedule == "cosine":
                elapsed = time.perf_counter() - t_start
                frac = (epoch + start / N) / epochs
                if time_limit is not None:
                    frac = max(frac, elapsed / time_limit)
                    if elapsed >= time_limit:
                        out_of_time = True
                        break
                if schedule == "cosine":  # decay over whichever budget runs out first
                    for g in opt.param_groups:
                        g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
            idx = perm[start : start + int(batch_size)]
            opt.zero_grad()
            loss = torch.mean((net(Xt[idx]) - Tt[idx]) ** 2)
            loss.backward()
            opt.step()
            info["steps"] += 1
            total += float(loss.detach()) * idx.numel()
            seen += idx.numel()
        if seen:
            info["loss_history"].append(total / seen)
        if Xv_t is not None and seen:
            with torch.no_grad():
                v = float(torch.mean((net(Xv_t) - Tv_t) ** 2))
            info["validation_history"].append(v)
            if v < best_val:
                best_val, info["best_epoch"] = v, len(info["validation_history"])
                best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
        if info["loss_history"]:
            bar.set_postfix(mse=f"{info['loss_history'][-1]:.4g}")
        if out_of_time:
            break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    linears = [l for l in layers if isinstance(l, torch.nn.Linear)]
    weights: Weights = [
        (l.weight.detach().double().numpy().copy(), l.bias.detach().double().numpy().copy())
        for l in linears
    ]
    info["epochs"] = len(info["loss_history"])
    info["seconds"] = time.perf_counter() - t_start
    return fold_standardisation(weights, mu, sd), info


@register_decoder("adam")
class AdamDecoder(MLPDecoder):
    """ReLU MLP trained by Adam. Options: ``hidden`` (default (256, 256)), ``epochs``,
    ``batch_size``, ``lr``, ``weight_decay``, ``validation`` (0.1: that fraction is held out and
    the best epoch on it kept; 0: train on all pairs and return the last epoch), ``time_limit`` (seconds,
    None: epochs only), ``schedule`` (``constant`` | ``cosine``), ``seed``, ``progress`` (tqdm bar).
    Fitted: ``weights_``, ``loss_history_``, ``validation_history_``, ``train_info_``."""

    name = "adam"
    requires = ("torch",)

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256), epochs: int = 60,
        batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0, validation: float = 0.1,
        time_limit: float | None = None, schedule: str = "constant", seed: int = 0,
        progress: bool = False, shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, hidden=hidden, shape=shape, clip=clip)
        check_adam_options(epochs, batch_size, lr, weight_decay, validation, time_limit, schedule)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.validation = float(validation)
        self.time_limit = None if time_limit is None else float(time_limit)
        self.schedule = schedule
        self.seed, self.progress = int(seed), bool(progress)
        import_torch(warm=True)  # fail early (and pay the import and set-up here, not inside the timed fit)

    def _train(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> Weights:
        weights, info = train_mlp_adam(
            Y, S, self.hidden, groups=groups, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, validation=self.validation, time_limit=self.time_limit,
            schedule=self.schedule, seed=self.seed, progress=self.progress, desc=f"adam m={self.m}",
        )
        self.train_info_ = info
        self.loss_history_ = info["loss_history"]
        self.validation_history_ = info["validation_history"]
        return weights
