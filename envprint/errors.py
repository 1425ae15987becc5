"""Exit codes and the EnvprintError family, and the two helpers every error message is made with.

Owns: the mapping from a kind of failure to the exit code the CLI returns; ``one_line`` (any
text, an exception's included, made safe for a one-line message) and ``open_user_file`` (a file
the user named, with one line saying what is wrong with it).
Must not import anything outside the standard library: every layer may raise these.
"""

from __future__ import annotations

import enum
import os
import re
from typing import IO


class ExitCode(enum.IntEnum):
    """Process exit codes. Everything >= 2 means "could not check", never "checked and differs"."""

    OK = 0  # verify passed / diff found no differences
    DIFFERENT = 1  # verify mismatch / diff found differences
    USAGE = 2  # bad command line (Typer's own code)
    FINGERPRINT = 3  # fingerprint or probes missing, unreadable, invalid, wrong schema version
    MODEL = 4  # model missing, unloadable, incompatible with the probes, prediction failed
    DEPENDENCY = 5  # TensorFlow or an optional extra cannot be imported
    ENDPOINT = 6  # verify --endpoint: the server could not be reached, or answered what cannot be judged
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


class EndpointError(EnvprintError):
    """A served model could not be verified: unreachable, not ready, or an answer that cannot be read.

    Not a mismatch: nothing was judged. A server that answers numbers that differ is a report.
    """

    exit_code = ExitCode.ENDPOINT


class MismatchError(EnvprintError):
    """Raised only by ``Report.raise_for_status()``: the check ran and the outputs differ."""

    exit_code = ExitCode.DIFFERENT

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


# What a failure is called in JSON ("kind") and by the CLI's error line, by exit code.
KINDS: dict[int, str] = {
    ExitCode.USAGE: "usage",
    ExitCode.FINGERPRINT: "fingerprint",
    ExitCode.MODEL: "model",
    ExitCode.DEPENDENCY: "dependency",
    ExitCode.ENDPOINT: "endpoint",
    ExitCode.INTERNAL: "internal",
}


_STYLE = re.compile(r"\x1b\[[0-9;]*m")  # ANSI colour and weight (SGR) sequences only


def one_line(text: object, limit: int = 240) -> str:
    """``text`` (a string or an exception) as one line of at most ``limit`` characters.

    Runs of whitespace, line breaks included, become one space; any other character that does
    not print is escaped (``\\x1b``), so a hostile file name or an exception quoting one can
    neither break the line nor move the cursor. An exception without text gives its type's name.
    """
    if isinstance(text, BaseException):
        text = str(text) or type(text).__name__
    flat = " ".join(_STYLE.sub("", str(text)).split())  # Keras bolds its messages: the styling goes
    clean = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in flat)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def open_user_file(
    path: str | os.PathLike[str],
    error: type[EnvprintError],
    fix: str,
    *,
    directory_fix: str | None = None,
) -> IO[bytes]:
    """``open(path, "rb")`` of a file the user named, or ``error`` of one line saying what is wrong.

    ``fix`` ends the message for a missing file (and a directory, unless ``directory_fix``).
    Not only regular files: ``envprint diff <(ssh host cat fp.json) b.json`` reads a pipe.
    """
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise error(f"{path}: no such file; {fix}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory; {directory_fix or fix}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({one_line(exc.strerror or exc)}); check its permissions") from None
