"""mkdocs hook: show mkdocstrings the installed package layout.

formulations/, backends/ and cs_problems/ live at the repository top but install as
``unrectify.formulations``, ``unrectify.backends`` and ``unrectify.cs`` (the package-dir mapping in
pyproject.toml).  Griffe reads the source tree, so we give it a temporary tree of symlinks in the
installed layout and put it first on the handler's search path.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = {"formulations": "formulations", "backends": "backends", "cs": "cs_problems"}


def _staged_tree() -> Path:
    top = Path(tempfile.mkdtemp(prefix="unrectify-docs-"))
    atexit.register(shutil.rmtree, top, True)
    pkg = top / "unrectify"
    pkg.mkdir()
    for entry in (ROOT / "unrectify").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for name, folder in SUBPACKAGES.items():
        (pkg / name).symlink_to(ROOT / folder, target_is_directory=True)
    return top


@event_priority(100)  # before mkdocstrings reads its handler options
def on_config(config):
    handlers = config["plugins"]["mkdocstrings"].config.setdefault("handlers", {})
    python = handlers.setdefault("python", {})
    python["paths"] = [str(_staged_tree())] + list(python.get("paths", []))
    return config
