"""Exceptions raised by :mod:`unrectify.cs`: re-exported from the package's one errors module,
:mod:`unrectify.formulations.errors` (they derive from built-in exceptions)."""

from unrectify.formulations.errors import CSDependencyError, CSInputError

__all__ = ["CSDependencyError", "CSInputError"]
