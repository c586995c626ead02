"""Decoder base class (scikit-learn estimator convention) and the decoder registry.

A decoder is built from the measurement matrix, ``Decoder(Phi, **options)``, learns from
training pairs with ``fit(Y_train, S_train) -> self`` (a no-op for model-based decoders)
and maps measurements to images with ``reconstruct(Y) -> S_hat`` (aliases ``predict`` and
``decode``); all arrays have the sample axis first: ``Y`` is ``(N, m)``, ``S`` and ``S_hat``
are ``(N, n)``.

scikit-learn convention (so decoders compose with ``clone``, ``GridSearchCV``, pipelines):
``get_params()`` returns the constructor arguments exactly as given and ``set_params(**p)``
re-runs the constructor with them (so options are validated and derived matrices rebuilt,
and fitted state is dropped); attributes learned by ``fit`` end in an underscore
(``n_features_in_``, ``coef_``, ``weights_``, ...); ``score(Y, S)`` is the mean test PSNR in dB
(greater is better).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from unrectify.formulations.errors import UnrectifyError

from ..errors import CSInputError


class CSNotFittedError(UnrectifyError, ValueError, AttributeError):
    """A learned decoder was asked to reconstruct before ``fit`` (the bases of scikit-learn's
    ``NotFittedError``, so code written for estimators catches it)."""


def _record_init_args(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a decoder ``__init__`` so the outermost call records its arguments verbatim.

    ``get_params`` returns them (so ``sklearn.base.clone`` finds every parameter it passed,
    by identity) while ``__init__`` is free to validate and convert into working attributes.
    """
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Decoder, *args: Any, **kwargs: Any) -> None:
        outer = not getattr(self, "_in_init", False)
        if outer:
            try:
                bound = sig.bind(self, *args, **kwargs)
            except TypeError as exc:
                raise CSInputError(f"bad options for decoder {type(self).__name__}: {exc}") from None
            bound.apply_defaults()
            params = dict(bound.arguments)
            params.pop(next(iter(sig.parameters)))  # self
            self.__dict__["_in_init"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            if outer:
                self.__dict__["_in_init"] = False
        if outer:
            self.__dict__["_init_args"] = params

    return wrapped


class Decoder(BaseEstimator):
    """Base class: ``Decoder(Phi, shape=None, clip=True)``.

    ``Phi`` is the ``(m, n)`` measurement matrix; ``shape`` the 2-D image shape
    (default: square ``sqrt(n) x sqrt(n)`` when ``n`` is a perfect square, else None);
    ``clip`` clips reconstructions to the data range [0, 1]. Subclasses set ``name``,
    ``learned`` and implement ``_reconstruct`` (and ``_fit`` when learned).
    """

    name: ClassVar[str] = "base"
    learned: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ()
    """Importable modules this decoder needs beyond numpy/scipy (checked by experiments)."""
    budget_option: ClassVar[str | None] = "time_limit"
    """The option that limits training seconds (an experiment's ``budget`` sets it), or None when
    the decoder has none (its ``time_limit`` may mean something else, e.g. seconds per image)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _record_init_args(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(
        self, Phi: np.ndarray, *, shape: Sequence[int] | None = None, clip: bool = True
    ) -> None:
        Phi = np.asarray(Phi, dtype=np.float64)
        if Phi.ndim != 2 or min(Phi.shape) < 1:
            raise CSInputError(f"Phi must be a non-empty 2-D (m, n) matrix, got shape {Phi.shape}")
        if not np.all(np.isfinite(Phi)):
            raise CSInputError("Phi contains non-finite entries")
        self.Phi = Phi
        self.m, self.n = Phi.shape
        self.shape = _image_shape(self.n, shape)
        self.clip = bool(clip)

    # ------------------------------------------------------------------ sklearn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments as given (``deep`` is accepted for sklearn; nothing nests)."""
        return dict(self.__dict__.get("_init_args", {}))

    def set_params(self, **params: Any) -> Decoder:
        """Re-run the constructor with ``params`` changed; drops fitted state. Returns ``self``."""
        args = self.get_params()
        unknown = sorted(set(params) - set(args))
        if unknown:
            raise CSInputError(f"invalid parameters {unknown} for decoder {self.name!r}; valid: {sorted(args)}")
        args.update(params)
        self.__dict__.clear()
        type(self).__init__(self, **args)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return (not self.learned) or hasattr(self, "n_features_in_")

    @property
    def fitted(self) -> bool:
        """True once ``fit`` ran (model-based decoders: always usable, fitted after ``fit``)."""
        return hasattr(self, "n_features_in_")

    # ------------------------------------------------------------------ public
    def fit(self, Y_train: np.ndarray, S_train: np.ndarray, groups: np.ndarray | None = None) -> Decoder:
        """Learn from measurement/image pairs ``(N, m)`` / ``(N, n)``; returns ``self``.

        ``groups`` (optional, length ``N``): a label per pair saying which pairs are not
        independent (e.g. the source image of a patch). Decoders that hold out training pairs
        to choose something (early stopping, the residual, the hybrid's anchor weight) then
        hold out whole groups, so that the choice is judged on unseen images, as on the test
        set, and not on near-copies of training pairs (overlapping patches, their flips)."""
        Y = self._check_Y(Y_train)
        S = np.asarray(S_train, dtype=np.float64)
        if S.ndim != 2 or S.shape != (Y.shape[0], self.n):
            raise CSInputError(f"S_train must be ({Y.shape[0]}, {self.n}), got {S.shape}")
        if not np.all(np.isfinite(S)):
            raise CSInputError("S_train contains NaN or infinite values")
        if Y.shape[0] < 1:
            raise CSInputError("fit needs at least one training sample")
        self._fit(Y, S, check_groups(groups, Y.shape[0]))
        self.n_features_in_ = self.m
        self.n_train_ = int(Y.shape[0])
        return self

    def reconstruct(self, Y: np.ndarray) -> np.ndarray:
        """Images ``(N, n)`` (float64, clipped to [0, 1] if ``clip``) from measurements ``(N, m)``."""
        if not self.__sklearn_is_fitted__():
            raise CSNotFittedError(f"decoder {self.name!r} must be fitted before reconstruct")
        Y = self._check_Y(Y)
        if Y.shape[0] == 0:
            return np.zeros((0, self.n))
        S_hat = np.asarray(self._reconstruct(Y), dtype=np.float64)
        return np.clip(S_hat, 0.0, 1.0) if self.clip else S_hat

    def predict(self, Y: np.ndarray) -> np.ndarray:
        """scikit-learn name of :meth:`reconstruct`."""
        return self.reconstruct(Y)

    def decode(self, Y: np.ndarray) -> np.ndarray:
        """Alias of :meth:`reconstruct`."""
        return self.reconstruct(Y)

    def score(self, Y: np.ndarray, S: np.ndarray) -> float:
        """Mean PSNR (dB, data range 1, capped at 100) of ``reconstruct(Y)`` against ``S``."""
        from ..metrics import PSNR_CAP_DB, psnr

        return float(np.mean(psnr(S, self.reconstruct(Y), max_db=PSNR_CAP_DB)))

    # ------------------------------------------------------------------ hooks
    def _fit(self, Y: np.ndarray, S: np.ndarray, groups: np.ndarray | None = None) -> None:
        """Learned decoders override this; model-based decoders ignore training data.
        ``groups``: None or integer labels ``0..G-1`` per pair (see :meth:`fit`)."""

    def _reconstruct(self, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_Y(self, Y: np.ndarray) -> np.ndarray:
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[1] != self.m:
            raise CSInputError(f"measurements must be (N, {self.m}) for this Phi, got {Y.shape}")
        if not np.all(np.isfinite(Y)):
            raise CSInputError("measurements contain non-finite values")
        return Y

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return f"{type(self).__name__}(m={self.m}, n={self.n}, shape={self.shape})"


def check_groups(groups: Any, n_pairs: int) -> np.ndarray | None:
    """None, or the group labels as integers ``0..G-1`` (one per pair, any hashable labels)."""
    if groups is None:
        return None
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n_pairs:
        raise CSInputError(f"groups must be one label per training pair ({n_pairs},), got shape {g.shape}")
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        raise CSInputError("groups contain non-finite labels")
    return np.unique(g, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _image_shape(n: int, shape: Sequence[int] | None) -> tuple[int, int] | None:
    if shape is None:
        side = int(round(np.sqrt(n)))
        return (side, side) if side * side == n else None
    h, w = (int(s) for s in shape)
    if h * w != n:
        raise CSInputError(f"image shape {tuple(shape)} does not match signal length {n}")
    return (h, w)


# ---------------------------------------------------------------------- registry
DECODERS: dict[str, type[Decoder]] = {}
"""Registered decoder classes by name (extend with :func:`register_decoder`)."""

PLANNED_DECODERS: dict[str, str] = {
    "prior": "recovery with a trained ReLU generator as prior (MILP via the split encoding)",
}
"""Names reserved for decoders written elsewhere. ``get_decoder(name)`` first tries to
import ``unrectify.cs.decoders.<name>``, whose import must call :func:`register_decoder`."""

D = TypeVar("D", bound=type[Decoder])


def register_decoder(
    name: str, cls: type[Decoder] | None = None, *, overwrite: bool = False
) -> Any:
    """Register decoder class ``cls`` under ``name``; usable as ``@register_decoder("x")``."""

    def deco(c: D) -> D:
        if not (isinstance(c, type) and issubclass(c, Decoder)):
            raise TypeError(f"decoder {name!r} must be a Decoder subclass, got {c!r}")
        if name in DECODERS and DECODERS[name] is not c and not overwrite:
            raise CSInputError(f"decoder name {name!r} is already registered to {DECODERS[name].__name__}")
        DECODERS[name] = c
        return c

    if not name or not isinstance(name, str):
        raise CSInputError(f"decoder name must be a non-empty string, got {name!r}")
    return deco if cls is None else deco(cls)


def _try_plugin(name: str) -> None:
    module = f"{__package__}.{name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise


def decoder_class(name: str) -> type[Decoder]:
    """The class registered under ``name`` (imports planned plug-ins on first use)."""
    if name not in DECODERS and name in PLANNED_DECODERS:
        _try_plugin(name)
    if name not in DECODERS:
        if name in PLANNED_DECODERS:
            raise CSInputError(
                f"decoder {name!r} ({PLANNED_DECODERS[name]}) is not registered yet; "
                f"available: {', '.join(available_decoders())}"
            )
        raise CSInputError(f"unknown decoder {name!r}; available: {', '.join(available_decoders())}")
    return DECODERS[name]


def missing_requirements(cls: type[Decoder]) -> list[str]:
    """Modules listed in ``cls.requires`` that cannot be imported here."""
    import importlib.util

    return [mod for mod in cls.requires if importlib.util.find_spec(mod) is None]


def available_decoders() -> list[str]:
    """Names of the registered decoders, in registration order."""
    return list(DECODERS)


def get_decoder(name: str, Phi: np.ndarray, **options: Any) -> Decoder:
    """Build the decoder registered as ``name``: ``DECODERS[name](Phi, **options)``.

    Unknown names, options not accepted by that decoder and option values it cannot use
    (a text where a number belongs, ``inf`` epochs) raise :class:`CSInputError`.
    """
    cls = decoder_class(name)
    try:
        inspect.signature(cls).bind(Phi, **options)
    except TypeError as exc:
        raise CSInputError(f"bad options {sorted(options)} for decoder {name!r}: {exc}") from None
    try:
        return cls(Phi, **options)
    except CSInputError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        # a value of the wrong type met inside numpy or int(): name the decoder and the options
        given = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "no options"
        raise CSInputError(f"bad option value for decoder {name!r} ({given}): {type(exc).__name__}: {exc}") from None


DecoderFactory = Callable[..., Decoder]
