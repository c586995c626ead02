"""Exception hierarchy shared by every layer of unrectify.

All errors derive from built-in exceptions so callers can catch them generically
(``except ValueError``) or precisely (``except InputError``).  Messages are one line
and name the offending input, because the command line prints them verbatim.
"""

from __future__ import annotations


class UnrectifyError(Exception):
    """Base class of every error raised on purpose by unrectify."""


class InputError(UnrectifyError, ValueError):
    """Invalid user input: shapes, non-finite values, bounds, unknown names."""


class UnknownNameError(InputError, KeyError):
    """An unknown encoding, backend, loss or domain name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it one plain line
        return str(self.args[0]) if self.args else ""


class ModelClassError(UnrectifyError, ValueError):
    """A backend was handed a model outside its capabilities (e.g. bilinear for an LP solver)."""


class LicenseLimitError(UnrectifyError, ValueError):
    """The model exceeds the size limits of the installed solver licence."""


class SolverUnavailableError(UnrectifyError, ImportError):
    """The solver package of a backend is not installed or cannot start."""


class ResourceLimitError(InputError):
    """The request needs more memory (or, for a stated time limit, more time) than this machine
    has; the message names the estimate and the machine's figure.  Raised before any work."""
