"""Compressed-sensing decoders: ``Decoder(Phi, **options).fit(Y, S).reconstruct(Y)``.

Decoders follow scikit-learn's estimator convention (``fit``, ``predict``/``decode``,
``get_params``/``set_params``, fitted attributes ending in ``_``; see :mod:`.base`).
Registered names (:data:`DECODERS`), in table order: classic ``pinv``, ``l1``, ``tv``, ``omp``;
learned ``linear`` (ridge), ``adam``, ``alm`` (ALM alone), ``alm+lbfgs`` (ALM then L-BFGS-B),
``res-adam``, ``res-alm``, ``res-alm+lbfgs`` (ridge + ReLU residual network + measurement
consistency, :mod:`.residual`); named hybrids ``tv+res-adam``, ``tv+res-alm``, ``tv+res-alm+lbfgs``
(TV anchored at the learned estimate, :mod:`.hybrid`) and ``adaptive-tv+res-adam``,
``adaptive-tv+res-alm``, ``adaptive-tv+res-alm+lbfgs`` (the same with one anchor weight per image,
set from its measurements); ``prior`` (generator
prior) is imported on first use.

Adding a decoder (e.g. another MLP trainer): write a module with a subclass of
:class:`~unrectify.cs.decoders.mlp.MLPDecoder` that implements ``_train(Y, S, groups) -> weights``
(weights ``[(W1, b1), ...]``, ``W_l`` shaped ``(n_l, n_{l-1})``; reconstruction is then the
shared numpy :func:`~unrectify.cs.decoders.mlp.mlp_forward`) and call
``register_decoder("name", Class)`` at import. Names in :data:`PLANNED_DECODERS`
(``prior``) are imported from ``unrectify.cs.decoders.<name>`` on first use, so
the module needs no edit here; any other module can also call ``register_decoder``.
"""

from __future__ import annotations

from . import linear, l1, tv, omp, adam, alm, residual, hybrid  # noqa: F401,I001  (import order = registry order)
from .adam import AdamDecoder, train_mlp_adam
from .alm import ALMDecoder, ALMLBFGSDecoder, train_mlp_alm
from .base import (
    DECODERS,
    PLANNED_DECODERS,
    CSNotFittedError,
    Decoder,
    available_decoders,
    decoder_class,
    get_decoder,
    missing_requirements,
    register_decoder,
)
from .bases import dct_basis, sparsifying_basis, wavelet_basis
from .hybrid import AdaptiveTVAnchoredDecoder, TVAnchoredDecoder
from .l1 import L1Decoder, cvxpy_l1, fista_lasso
from .linear import LinearDecoder, PinvDecoder
from .mlp import MLPDecoder, check_weights, layer_widths, mlp_forward
from .omp import OMPDecoder
from .residual import (
    ResidualAdamDecoder,
    ResidualALMDecoder,
    ResidualALMLBFGSDecoder,
    ResidualDecoder,
    consistency_step,
    ridge_fit,
)
from .tv import TVDecoder

__all__ = [
    "DECODERS",
    "PLANNED_DECODERS",
    "ALMDecoder",
    "ALMLBFGSDecoder",
    "AdamDecoder",
    "CSNotFittedError",
    "Decoder",
    "L1Decoder",
    "LinearDecoder",
    "MLPDecoder",
    "OMPDecoder",
    "PinvDecoder",
    "ResidualALMDecoder",
    "ResidualALMLBFGSDecoder",
    "ResidualAdamDecoder",
    "ResidualDecoder",
    "AdaptiveTVAnchoredDecoder",
    "TVAnchoredDecoder",
    "TVDecoder",
    "available_decoders",
    "check_weights",
    "consistency_step",
    "cvxpy_l1",
    "dct_basis",
    "decoder_class",
    "fista_lasso",
    "get_decoder",
    "layer_widths",
    "missing_requirements",
    "mlp_forward",
    "register_decoder",
    "ridge_fit",
    "sparsifying_basis",
    "train_mlp_adam",
    "train_mlp_alm",
    "wavelet_basis",
]
