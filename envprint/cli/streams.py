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
from collections.abc import Callable
from typing import Any

# Lines TensorFlow's and TFLite's C++ code write to file descriptor 2 by themselves: absl's
# "I0000 00:00:1700000000.1 123 port.cc:153] ...", tsl's "2024-01-01 12:00:00.1: I file.cc:1] ...",
# absl's notice before its initialisation, and TFLite's "INFO: Created TensorFlow Lite XNNPACK
# delegate for CPU." Fatal lines (F...) are kept: they explain a crash.
CPP_LOG = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|INFO: (?:Created|Initialized|Replacing) TensorFlow Lite)"
)


class CppLogFilter:
    """Drop TensorFlow's C++ log lines from stderr in envprint's own process (and its children).

    TF_CPP_MIN_LOG_LEVEL=3 does not silence them: TensorFlow 2.16+ logs through absl, and what is
    logged before absl::InitializeLog() runs (the oneDNN notice of port.cc, once per library that
    loads it) goes to stderr whatever the level; TFLite's own logger ignores the variable too.
    They are written by C++ straight to file descriptor 2, so the filter sits there: fd 2 becomes
    a pipe read by a thread that forwards every other line, while Python's ``sys.stderr`` (every
    message envprint writes) goes straight to the real stderr. Only the command line does this,
    never the library, and not under --debug or a TF_CPP_MIN_LOG_LEVEL below 3 that the user set.
    """

    def __init__(self) -> None:
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
                if not CPP_LOG.match(line):
                    try:
                        os.write(self._stderr, line)
                    except OSError:  # stderr itself is gone: keep draining, or a writer would block
                        pass

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self._stderr, 2)  # drops the pipe's last writer here: the thread reads to its end
        self._thread.join(timeout=2)
        sys.stderr = self._python_stderr


def discard_stdout() -> None:
    # The reader is gone. As Python's documentation advises (signal, "Note on SIGPIPE"), point
    # stdout at devnull, so that the flush at exit does not fail again with a traceback.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test runner's buffer)
        pass


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
