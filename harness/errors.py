"""Exception types that map onto the CLI's exit codes.

Anything derived from :class:`HarnessError` is a problem with what the user gave
us (a file, an option, a suite, a baseline): the CLI prints its message on one
line and exits with code 2.  :class:`StageError` is a stage under test that failed:
a case outcome (``error``), recorded in the report.  Any other exception escaping a
command is a bug: exit code 3, with the traceback under ``--debug``.
"""

from __future__ import annotations

__all__ = ["HarnessError", "InputError", "ConfigError", "BaselineError", "StageError"]


class HarnessError(Exception):
    """Base class: a user-facing error that the CLI reports with exit code 2."""

    exit_code = 2


class InputError(HarnessError, ValueError):
    """An image, mask or other input file is unreadable, corrupt or of the wrong shape."""


class ConfigError(HarnessError, ValueError):
    """A suite, vector or command-line option names something unknown or invalid."""


class BaselineError(HarnessError):
    """A baseline file is missing, corrupt or does not match its manifest."""


class StageError(RuntimeError):
    """A pipeline stage produced unusable output (NaN/inf, all black, wrong shape).

    Not a :class:`HarnessError`: the user's input was fine, the stage under test failed.
    It becomes the ``error`` outcome of that case (exit code 1 for the run), never exit 2.
    """
