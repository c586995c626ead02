"""Reading problem data from files (one-line errors for every bad input)."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from unrectify.formulations import InputError, TrainingProblem


def load_npz(path: str, names: tuple[str, ...] = ("X", "Y")) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a ``.npz`` file; files are data, never code (``allow_pickle=False``),
    and only integer or float arrays are accepted."""
    if not os.path.exists(path):
        raise InputError(f"data file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):      # a .npy file: one array, no names
            raise InputError(f"{path} is a single array (.npy), not a .npz archive; save X and Y with "
                             "numpy.savez(path, X=X, Y=Y)")
        with loaded as data:
            found = list(data.files)
            missing = [n for n in names if n not in found]
            if missing:
                raise InputError(f"{path} has no array {missing[0]!r} (found: {', '.join(found) or 'none'}); "
                                 f"expected arrays {', '.join(names)}")
            out = {n: np.asarray(data[n]) for n in names}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # allow_pickle=False: an object array (pickled Python objects) fails here, unread
        raise InputError(f"cannot read {path} as a .npz archive of numeric arrays ({type(exc).__name__})") from None
    for n, a in out.items():
        if a.dtype.kind not in "iuf":
            raise InputError(f"{path}: array {n!r} has dtype {a.dtype}; a numeric (integer or float) array is required")
    return out


def load_problem(path: str, widths=None, loss: str = "mse", weight_bound: float = 2.0) -> TrainingProblem:
    """A :class:`TrainingProblem` from ``path`` (.npz with arrays ``X`` and ``Y``)."""
    arrs = load_npz(path)
    X, Y = arrs["X"], arrs["Y"]
    if widths is None:
        n0 = X.shape[1] if X.ndim == 2 else 1
        nL = Y.shape[1] if Y.ndim == 2 else 1
        widths = (n0, 2, nL)
    return TrainingProblem(X, Y, tuple(widths), loss=loss, weight_bound=weight_bound)
