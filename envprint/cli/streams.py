"""The command line's own output streams: a stdout its reader may close, a stderr without TensorFlow's C++ lines.

Owns: ``emit`` (write a result; a closed pipe ends the output, not the command),
``CppLogFilter`` (file descriptor 2 filtered, in the ``envprint`` process only), and
``one_line_warnings`` (a record from a newer envprint noted in one line). Standard
library only; used by ``cli`` alone: the library never touches a server's streams.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

# Lines TensorFlow's and TFLite's C++ code write to file descriptor 2 by themselves: absl's
# "I0000 00:00:1700000000.1 123 port.cc:153] ...", tsl's "2024-01-01 12:00:00.1: I file.cc:1] ...",
# absl's notice before its initialisation (a WARNING), and TFLite's "INFO: Created TensorFlow Lite
# XNNPACK delegate for CPU." The named group is the line's severity. Fatal lines (F...) never
# match: they explain a crash.
CPP_LOG = re.compile(
    rb"^(?:(?P<absl>[IWE])\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<tsl>[IWE]) \S+:\d+\] "
    rb"|(?P<absl_notice>WARNING): All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|(?P<tflite>INFO): (?:Created|Initialized|Replacing) TensorFlow Lite)"
)
# TensorFlow's severities, as TF_CPP_MIN_LOG_LEVEL counts them: 1 hides INFO, 2 also WARNING, 3 also ERROR.
SEVERITY = {b"I": 0, b"INFO": 0, b"W": 1, b"WARNING": 1, b"E": 2}
# envprint's own level when the user set none: its report, not TensorFlow's start-up chatter.
DEFAULT_LEVEL = 3


def cpp_log_severity(line: bytes) -> int | None:
    """The severity (0 INFO, 1 WARNING, 2 ERROR) of one of TensorFlow's C++ log lines; None for any other line."""
    m = CPP_LOG.match(line)
    if m is None:
        return None
    return SEVERITY[next(v for v in m.groups() if v is not None)]


def min_log_level(environ: Mapping[str, str], debug: bool = False) -> int:
    """The TF_CPP_MIN_LOG_LEVEL the command line honours: the user's, else envprint's default; 0 under --debug.

    Read as TensorFlow reads it (tsl/platform/default/logging.cc): a leading integer, anything else 0, and
    nothing past 3 (fatal lines are always shown).
    """
    if debug:
        return 0
    raw = environ.get("TF_CPP_MIN_LOG_LEVEL")
    if raw is None or not raw.strip():
        return DEFAULT_LEVEL
    number = re.match(r"\s*([+-]?\d+)", raw)  # C++'s `istringstream >> level`: a leading integer
    return max(0, min(int(number.group(1)), 3)) if number else 0


class CppLogFilter:
    """Drop TensorFlow's C++ log lines below ``level`` from stderr in envprint's own process (and its children).

    TF_CPP_MIN_LOG_LEVEL alone does not silence them: TensorFlow 2.16+ logs through absl, and what
    is logged before absl::InitializeLog() runs (the oneDNN notice of port.cc, once per library that
    loads it, and absl's warning that it is doing so) goes to stderr whatever the level; TFLite's
    own logger ignores the variable too. They are written by C++ straight to file descriptor 2, so
    the filter sits there: fd 2 becomes a pipe read by a thread that forwards every other line,
    while Python's ``sys.stderr`` (every message envprint writes) goes straight to the real stderr.
    Only the command line does this, never the library, and not under --debug or level 0. The
    level is TensorFlow's own meaning of the variable (``min_log_level``), so a user's
    ``TF_CPP_MIN_LOG_LEVEL=2`` hides INFO and WARNING lines, the ones TensorFlow logged early included.
    """

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        self._level = level
        sys.stderr.flush()
        self._stderr = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._python_stderr = sys.stderr
        sys.stderr = open(self._stderr, "w", closefd=False, buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        self._thread = threading.Thread(target=self._pump, args=(read,), name="envprint-stderr", daemon=True)
        self._thread.start()

    def _pump(self, read: int) -> None:
        with open(read, "rb") as pipe:
            for line in pipe:
                severity = cpp_log_severity(line)
                if severity is None or severity >= self._level:
                    try:
                        os.write(self._stderr, line)
                    except OSError:  # stderr itself is gone: keep draining, or a writer would block
                        pass

    def close(self) -> None:
        try:
            sys.stderr.flush()
        except OSError:  # stderr's reader is gone: what was not told cannot be
            discard_stderr()
        os.dup2(self._stderr, 2)  # drops the pipe's last writer here: the thread reads to its end
        self._thread.join(timeout=2)
        sys.stderr = self._python_stderr


def discard_stdout() -> None:
    # The reader is gone. As Python's documentation advises (signal, "Note on SIGPIPE"), point
    # stdout at devnull, so that the flush at exit does not fail again with a traceback.
    _to_devnull(sys.stdout)


def discard_stderr() -> None:
    """stderr's reader is gone (``2>&1 | head -1``): the same, so that the exit code stays the command's
    (Python's failed flush at exit would make it 120)."""
    _to_devnull(sys.stderr)


def _to_devnull(stream: Any) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test runner's buffer)
        pass


def exit_code_told(exc: BaseException) -> int | None:
    """The exit code of the error being told when ``exc`` (a closed pipe) interrupted the telling, if any."""
    seen: BaseException | None = exc.__context__
    while seen is not None:
        if isinstance(seen, SystemExit) and isinstance(seen.code, int):
            return seen.code
        code = getattr(seen, "exit_code", None)  # Click's UsageError, BadParameter, ...
        if isinstance(code, int):
            return code
        seen = seen.__context__
    return None


def emit(write: Callable[[], Any]) -> None:
    """Write a command's result to stdout. A reader that closes the pipe early (``| head -1``) ends
    the output, not the command: its exit code stays the result's (mismatch, differences, ...)."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()


def one_line_warnings() -> None:
    """Print a record from a newer envprint (``record.store.NewerSchemaWarning``) as one line, as every diagnostic.

    Python's own format adds the file, line and source of the ``warnings.warn`` call: noise to a
    user. Other warnings keep it. Matched by name, so the command line's start imports nothing.
    """
    python_showwarning = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if category.__name__ == "NewerSchemaWarning":
            sys.stderr.write(f"envprint: WARNING: {message}\n")
        else:
            python_showwarning(message, category, *args, **kwargs)

    warnings.showwarning = show
