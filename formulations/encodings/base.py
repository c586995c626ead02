"""Encoding interface and registry.

An encoding replaces ``x = relu(z)`` for a whole layer (arrays ``Z`` of shape ``(N, n)``
with interval bounds ``lo <= Z <= hi``) by variables and constraints of a :class:`Model`.
It declares which *domains* of its activation variable ``d`` it supports
(``binary``: ``d in {0,1}``; ``interval``: ``d in [0,1]``) and whether its interval
relaxation is exact (``tight``), with a one-line reason (``tight_note``).

Registering a new encoding takes a few lines::

    from unrectify.formulations import Encoding, register_encoding

    @register_encoding
    class Clipped(Encoding):
        '''x >= z, x >= 0, x <= (z + |lo|) d ... (math here).'''
        name = "clipped"
        tight = False
        tight_note = "why (not) tight"

        def add_relu(self, model, Z, lo, hi, domain, tag):
            X = model.add_var(f"X{tag}", Z.shape, 0.0, np.maximum(hi, 0.0))
            D = self.activation(model, f"D{tag}", lo, hi, domain)
            model.add_constraints(f"ge_z{tag}", ">=", 0.0, linear=[(1.0, X), (-1.0, Z)])
            ...
            return {"X": X, "D": D}
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import InputError, UnknownNameError
from ..model import Model

DOMAINS = ("binary", "interval")

_REGISTRY: dict[str, type["Encoding"]] = {}


class Encoding:
    """Base class of ReLU encodings."""

    name: ClassVar[str] = ""
    domains: ClassVar[tuple[str, ...]] = DOMAINS
    tight: ClassVar[bool | None] = None
    tight_note: ClassVar[str] = ""

    def add_relu(self, model: Model, Z: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 domain: str, tag: str) -> dict[str, np.ndarray]:
        """Add variables/constraints for ``X = relu(Z)``; return created blocks (``"X"`` required)."""
        raise NotImplementedError

    # helpers shared by encodings
    @staticmethod
    def activation(model: Model, name: str, lo: np.ndarray, hi: np.ndarray, domain: str) -> np.ndarray:
        """Activation variables ``d`` with bounds [0,1], fixed where the sign of ``z`` is known
        from its bounds (``d = 1`` if ``lo > 0``, ``d = 0`` if ``hi < 0``)."""
        if domain not in DOMAINS:
            raise UnknownNameError(f"unknown domain {domain!r}; choose binary or interval")
        dlo = np.where(lo > 0, 1.0, 0.0)
        dhi = np.where(hi < 0, 0.0, 1.0)
        return model.add_var(name, lo.shape, dlo, dhi, integer=(domain == "binary"))

    def check_domain(self, domain: str) -> None:
        if domain not in DOMAINS:
            raise UnknownNameError(f"unknown domain {domain!r}; choose binary or interval")
        if domain not in self.domains:
            raise InputError(f"encoding {self.name!r} has no {domain} form (supports {', '.join(self.domains)})")

    def describe(self) -> dict:
        return {"name": self.name, "domains": list(self.domains), "tight": self.tight, "tight_note": self.tight_note}


def register_encoding(cls: type[Encoding]) -> type[Encoding]:
    """Class decorator adding an encoding to the registry under ``cls.name``."""
    if not cls.name:
        raise InputError(f"encoding class {cls.__name__} needs a non-empty `name`")
    _REGISTRY[cls.name] = cls
    return cls


def get_encoding(name: str | Encoding) -> Encoding:
    if isinstance(name, Encoding):
        return name
    if not isinstance(name, str):
        raise InputError(f"an encoding is a name (or an Encoding), got {name!r}")
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise UnknownNameError(f"unknown encoding {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None


def available_encodings() -> list[str]:
    return list(_REGISTRY)
