"""ReLU MLP decoder ``m -> hidden... -> n`` trained with torch's Adam on the MSE loss.

Training is float32 on CPU, seeded (``torch.manual_seed`` and a seeded shuffling
generator), minibatch Adam for a fixed number of epochs; with ``validation`` > 0 (off by
default; the same seeded split as the ALM decoder) that fraction of the pairs is held out and
the weights of the epoch with the lowest validation MSE are returned. Measurements are standardised
per coordinate for training and the standardisation is folded into the first layer, so
the returned weights act on raw measurements and reconstruction is the plain numpy
:func:`~unrectify.cs.decoders.mlp.mlp_forward`. The output bias starts at the mean
training image. torch is imported when the decoder is constructed (never at package
import); without torch construction raises :class:`~unrectify.cs.errors.CSDependencyError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSDependencyError, CSInputError
from .base import register_decoder
from .mlp import MLPDecoder, Weights, validation_split


def import_torch(needed_for: str = "the adam decoder") -> Any:
    """Import torch or raise :class:`CSDependencyError` naming what needs it and the install command."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        raise CSDependencyError(f"{needed_for} needs torch: pip install torch==2.13.0") from exc
    return torch


@register_decoder("adam")
class AdamDecoder(MLPDecoder):
    """ReLU MLP trained by Adam. Options: ``hidden`` (default (256, 256)), ``epochs``,
    ``batch_size``, ``lr``, ``weight_decay``, ``validation`` (0: train on all pairs and return
    the last epoch; a fraction: keep the best epoch on held-out pairs), ``seed``, ``progress`` (tqdm bar)."""

    name = "adam"
    requires = ("torch",)

    def __init__(
        self, Phi: np.ndarray, *, hidden: Sequence[int] = (256, 256), epochs: int = 60,
        batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0, validation: float = 0.0,
        seed: int = 0,
        progress: bool = False, shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, hidden=hidden, shape=shape, clip=clip)
        if int(epochs) < 1 or int(batch_size) < 1:
            raise CSInputError(f"adam epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        if not (np.isfinite(lr) and lr > 0) or not (np.isfinite(weight_decay) and weight_decay >= 0):
            raise CSInputError(f"adam lr must be > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        if not (0 <= validation < 1):
            raise CSInputError(f"adam validation must be a fraction in [0, 1), got {validation!r}")
        self.validation = float(validation)
        self.seed, self.progress = int(seed), bool(progress)
        self.loss_history: list[float] = []
        self.validation_history: list[float] = []  # validation MSE per epoch
        import_torch()  # fail early (and pay the import here, not inside the timed fit)

    def _train(self, Y: np.ndarray, S: np.ndarray) -> Weights:
        torch = import_torch()
        from tqdm.auto import tqdm

        Y, S, Yv, Sv = validation_split(Y, S, self.validation, self.seed)
        mu = Y.mean(axis=0)
        sd = Y.std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        Xt = torch.from_numpy(((Y - mu) / sd).astype(np.float32))
        St = torch.from_numpy(S.astype(np.float32))
        layers: list[Any] = []
        widths = self.widths
        for i in range(len(widths) - 1):
            layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers)
        with torch.no_grad():
            layers[-1].bias.copy_(St.mean(dim=0))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        N = Xt.shape[0]
        self.loss_history = []
        self.validation_history = []
        Xv = None if Yv is None else torch.from_numpy(((Yv - mu) / sd).astype(np.float32))
        Sv_t = None if Sv is None else torch.from_numpy(Sv.astype(np.float32))
        best_state, best_val = None, np.inf
        bar = tqdm(range(self.epochs), desc=f"adam m={self.m}", disable=not self.progress, leave=False)
        for _ in bar:
            perm = torch.randperm(N, generator=gen)
            total = 0.0
            for start in range(0, N, self.batch_size):
                idx = perm[start : start + self.batch_size]
                opt.zero_grad()
                loss = torch.mean((net(Xt[idx]) - St[idx]) ** 2)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            self.loss_history.append(total / N)
            if Xv is not None:
                with torch.no_grad():
                    v = float(torch.mean((net(Xv) - Sv_t) ** 2))
                self.validation_history.append(v)
                if v < best_val:
                    best_val = v
                    best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
            bar.set_postfix(mse=f"{self.loss_history[-1]:.4g}")
        if best_state is not None:
            net.load_state_dict(best_state)
        linears = [l for l in layers if isinstance(l, torch.nn.Linear)]
        weights: Weights = [
            (l.weight.detach().double().numpy().copy(), l.bias.detach().double().numpy().copy())
            for l in linears
        ]
        # fold the input standardisation x = (y - mu) / sd into the first layer
        W1, b1 = weights[0]
        W1 = W1 / sd
        weights[0] = (W1, b1 - W1 @ mu)
        return weights
