"""The one atomic file writer: verify JSON, sweep and CS results, markdown, figures.

A file is written to a temporary file in the same folder, flushed to disk and renamed over
the target with ``os.replace`` (atomic on POSIX).  A reader, a crash or Ctrl-C therefore sees
either the old complete file or the new complete file, never a half-written one, and an
existing file is not touched until its replacement is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.",
                               suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars/arrays converted to Python values, dict keys as strings and
    non-finite floats as ``None``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if np.isfinite(f) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_json_atomic(path: str | os.PathLike[str], data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (see :func:`jsonable`) atomically; the text ends with a newline."""
    text = json.dumps(jsonable(data), indent=indent, allow_nan=False) + "\n"
    write_text_atomic(path, text)


__all__ = ["jsonable", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
