"""Exit codes and the EnvprintError family.

Owns: the mapping from a kind of failure to the exit code the CLI returns.
Must not import anything outside the standard library: every layer may raise these.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes. Everything >= 2 means "could not check", never "checked and differs"."""

    OK = 0  # verify passed / diff found no differences
    DIFFERENT = 1  # verify mismatch / diff found differences
    USAGE = 2  # bad command line (Typer's own code)
    FINGERPRINT = 3  # fingerprint or probes missing, unreadable, invalid, wrong schema version
    MODEL = 4  # model missing, unloadable, incompatible with the probes, prediction failed
    DEPENDENCY = 5  # TensorFlow or an optional extra cannot be imported
    INTERNAL = 70  # a bug in envprint (EX_SOFTWARE): a crash never looks like a mismatch


class EnvprintError(Exception):
    """Base of every error envprint raises on purpose. ``str(err)`` is one line: what, where, what next."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(EnvprintError):
    """Arguments that parse but make no sense together (for example ``diff A B --current``)."""

    exit_code = ExitCode.USAGE


class FingerprintError(EnvprintError):
    """A fingerprint or probes file is missing, unreadable, invalid or of an unknown schema version."""

    exit_code = ExitCode.FINGERPRINT


class ModelError(EnvprintError):
    """A model is missing, cannot be loaded, or cannot predict the probes."""

    exit_code = ExitCode.MODEL


class DependencyError(EnvprintError):
    """A package envprint needs for this command is not importable; the message carries the pip line."""

    exit_code = ExitCode.DEPENDENCY


class MismatchError(EnvprintError):
    """Raised only by ``Report.raise_for_status()``: the check ran and the outputs differ."""

    exit_code = ExitCode.DIFFERENT

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report
