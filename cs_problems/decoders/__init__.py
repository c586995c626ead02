"""Compressed-sensing decoders: ``Decoder(Phi, **options).fit(Y, S).reconstruct(Y)``.

Registered names (:data:`DECODERS`): ``pinv``, ``linear``, ``l1``, ``tv``, ``omp``, ``adam``.

Adding a decoder (e.g. the project's augmented-Lagrangian MLP trainer, name ``alm``):
write ``cs_problems/decoders/alm.py`` with a subclass of
:class:`~unrectify.cs.decoders.mlp.MLPDecoder` that implements ``_train(Y, S) -> weights``
(weights ``[(W1, b1), ...]``, ``W_l`` shaped ``(n_l, n_{l-1})``; reconstruction is then the
shared numpy :func:`~unrectify.cs.decoders.mlp.mlp_forward`) and call
``register_decoder("alm", ALMDecoder)`` at import. Names in :data:`PLANNED_DECODERS`
(``alm``, ``prior``) are imported from ``unrectify.cs.decoders.<name>`` on first use, so
the module needs no edit here; any other module can also call ``register_decoder``.
"""

from __future__ import annotations

from . import linear, l1, tv, omp, adam  # noqa: F401,I001  (import order = registry order)
from .adam import AdamDecoder
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
from .l1 import L1Decoder, cvxpy_l1, fista_lasso
from .linear import LinearDecoder, PinvDecoder
from .mlp import MLPDecoder, check_weights, layer_widths, mlp_forward
from .omp import OMPDecoder
from .tv import TVDecoder

__all__ = [
    "DECODERS",
    "PLANNED_DECODERS",
    "AdamDecoder",
    "CSNotFittedError",
    "Decoder",
    "L1Decoder",
    "LinearDecoder",
    "MLPDecoder",
    "OMPDecoder",
    "PinvDecoder",
    "TVDecoder",
    "available_decoders",
    "check_weights",
    "cvxpy_l1",
    "dct_basis",
    "decoder_class",
    "fista_lasso",
    "get_decoder",
    "layer_widths",
    "missing_requirements",
    "mlp_forward",
    "register_decoder",
    "sparsifying_basis",
    "wavelet_basis",
]
