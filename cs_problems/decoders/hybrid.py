r"""Named hybrid: TV recovery anchored at a learned estimate (``tv+res-adam``, ``tv+res-alm+lbfgs``).

For each image, with ``x_L(y)`` the reconstruction of a fitted learned decoder (the ``inner``
decoder, e.g. ``res-adam``)::

    x_hat = argmin_{0 <= x <= 1}  lam TV(x) + 1/2 ||Phi x - y||^2 + beta/2 ||x - x_L(y)||^2

solved by the vectorised Chambolle--Pock method of :mod:`.primal_dual`, started at ``x_L(y)``.
``beta = 0`` is plain TV recovery (warm-started); large ``beta`` returns ``x_L``. ``fit`` trains
the inner decoder on the training pairs, then picks ``beta`` from ``betas`` by the MSE on up to
``n_select`` held-out training pairs (a seeded ``validation`` fraction; the inner decoder is
trained on the rest). It is a hybrid of a learned and a model-based decoder and is reported
under its own name, next to both parts.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CSInputError
from .base import Decoder, decoder_class, get_decoder, register_decoder
from .mlp import validation_split
from .tv import TVDecoder


class TVAnchoredDecoder(Decoder):
    """TV anchored at a learned estimate. Options: ``inner`` (learned decoder name),
    ``inner_options`` (dict), ``time_limit`` (passed to the inner decoder), ``lam`` (TV weight),
    ``betas`` (candidates, 0 = plain TV), ``max_iter`` (500, as the ``tv`` decoder, so that
    ``beta = 0`` is plain TV with the same iteration budget), ``validation`` (0.05), ``n_select`` (200),
    ``seed``, ``progress``. Fitted: ``inner_`` (the fitted inner decoder), ``beta_``,
    ``validation_mse_`` (by beta)."""

    name = "tv+learned"
    learned = True
    inner_default = "res-adam"

    def __init__(
        self, Phi: np.ndarray, *, inner: str | None = None, inner_options: dict[str, Any] | None = None,
        time_limit: float | None = None, lam: float = 0.01, betas: Sequence[float] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0),
        max_iter: int = 500, validation: float = 0.05, n_select: int = 200, seed: int = 0, progress: bool = False,
        shape: Sequence[int] | None = None, clip: bool = True,
    ) -> None:
        super().__init__(Phi, shape=shape, clip=clip)
        self.inner = self.inner_default if inner is None else str(inner)
        self.inner_options = dict(inner_options or {})
        if time_limit is not None:
            self.inner_options.setdefault("time_limit", time_limit)
        self.time_limit = time_limit
        betas = tuple(float(b) for b in betas)
        if not betas or any(not (np.isfinite(b) and b >= 0) for b in betas):
            raise CSInputError(f"betas must be a non-empty list of finite numbers >= 0, got {betas}")
        if not (0 < validation < 1) or int(n_select) < 1:
            raise CSInputError(f"validation must be in (0, 1) and n_select >= 1, got {validation}, {n_select}")
        self.betas, self.validation, self.n_select = betas, float(validation), int(n_select)
        self.seed, self.progress = int(seed), bool(progress)
        self._tv = TVDecoder(self.Phi, lam=lam, max_iter=max_iter, shape=self.shape)
        self._make_inner()  # validates the inner name and options now

    def _make_inner(self) -> Decoder:
        cls = decoder_class(self.inner)
        if not cls.learned:
            raise CSInputError(f"the inner decoder of {self.name!r} must be learned, got {self.inner!r}")
        opts = dict(self.inner_options)
        accepted = inspect.signature(cls).parameters
        for key, value in (("shape", self.shape), ("seed", self.seed), ("progress", self.progress)):
            if key in accepted:
                opts.setdefault(key, value)
        return get_decoder(self.inner, self.Phi, **opts)

    def _fit(self, Y: np.ndarray, S: np.ndarray) -> None:
        Yt, St, Yv, Sv = validation_split(Y, S, self.validation, self.seed)
        self.inner_ = self._make_inner().fit(Yt, St)
        self.validation_mse_: dict[float, float] = {}
        if Yv is None:
            self.beta_ = max(self.betas)
            return
        Yv, Sv = Yv[: self.n_select], Sv[: self.n_select]
        X0 = self.inner_.reconstruct(Yv)
        for beta in self.betas:
            X = self._tv.solve(Yv, S0=X0, anchor=X0, beta=beta)
            self.validation_mse_[beta] = float(np.mean((np.clip(X, 0, 1) - Sv) ** 2))
        self.beta_ = min(self.validation_mse_, key=self.validation_mse_.get)

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        X0 = self.inner_.reconstruct(Y)
        return self._tv.solve(Y, S0=X0, anchor=X0, beta=self.beta_)


def _variant(cls_name: str, inner: str) -> type[TVAnchoredDecoder]:
    cls = type(cls_name, (TVAnchoredDecoder,), {
        "name": f"tv+{inner}", "inner_default": inner, "__module__": __name__,
        "__doc__": f"TV anchored at the ``{inner}`` estimate (hybrid ``tv+{inner}``)."})
    if inner == "res-adam":
        cls.requires = ("torch",)
    return register_decoder(f"tv+{inner}", cls)


TVResAdamDecoder = _variant("TVResAdamDecoder", "res-adam")
TVResALMLBFGSDecoder = _variant("TVResALMLBFGSDecoder", "res-alm+lbfgs")
