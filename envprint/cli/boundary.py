"""The command line's error boundary and output helpers, shared by every command module.

Owns: ``_guard`` (EnvprintError -> one line on stderr and its exit code; the error also to each of
the command's outputs, or with ``--json`` the error document on stdout; a bug -> 70), the root's
``--debug`` state, ``outputs`` (a command's outputs table, render.outputs.Selection, writing to
stdout through ``emit``), ``this_host`` (JUnit's host properties, the library's: render never
captures), ``writer`` (plain text on stdout) and ``quiet_tensorflow``. Imports nothing of the
command modules (they and ``app`` import it), and never TensorFlow.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer

from envprint.cli.streams import discard_stderr, discard_stdout, emit
from envprint.errors import KINDS, EnvprintError, ExitCode, one_line

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: stdout closed before the command had a result (the shell's convention)


def _print_json_error(code: int, message: str) -> None:
    from envprint.models import ErrorDocument, ErrorInfo
    from envprint.render.outputs import canonical_json

    kind = KINDS.get(code, "interrupted" if code == 130 else "internal")
    document = ErrorDocument(error=ErrorInfo(exit_code=code, kind=kind, message=message))
    emit(lambda: sys.stdout.write(canonical_json(document)))


_state = {"debug": False}


def quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would drown the report; the variable is not recorded
    # (collect.ENV_IGNORED) and a user's own setting wins. It is not enough on its own: lines
    # logged before absl is initialised ignore it (see streams.CppLogFilter).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _traceback_under_debug() -> None:
    if _state["debug"]:
        try:
            traceback.print_exc()
        except OSError:  # stderr's reader is gone: the exit code still says what happened
            discard_stderr()


def _guard(fn: Callable[[], Any], json_out: Any = False) -> Any:
    """Run a command body: EnvprintError -> one line on stderr and its exit code; a bug -> 70.

    With ``json_out`` stdout also gets the error document, so ``--json > report.json`` is never empty;
    given the command's outputs (render.outputs.Selection), each of them gets the error instead.
    """

    def fail(code: int, message: str) -> typer.Exit:
        try:
            sys.stderr.write(f"envprint: {message}\n")
            sys.stderr.flush()
        except OSError:  # stderr's reader is gone (2>&1 | head): the code still says what happened
            discard_stderr()
        if hasattr(json_out, "write_error"):
            json_out.write_error(code, message.removeprefix("error: "))
        elif json_out:
            _print_json_error(code, message.removeprefix("error: "))
        return typer.Exit(code)

    try:
        return fn()
    except typer.Exit:
        raise
    except EnvprintError as exc:
        _traceback_under_debug()
        raise fail(int(exc.exit_code), f"error: {exc}") from None
    except KeyboardInterrupt:
        raise fail(130, "interrupted") from None
    except BrokenPipeError:  # stdout closed before the command had a result
        discard_stdout()
        raise typer.Exit(SIGPIPE_EXIT) from None
    except Exception as exc:
        _traceback_under_debug()
        message = f"internal error: {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback and report it)"
        raise fail(int(ExitCode.INTERNAL), message) from None


def writer(stream: Any = None):
    from envprint.render.text import Writer

    # Plain text on stdout (or the stream given), never wrapped or cut: paths and versions stay whole
    # in a pipe or a CI log, and "[topic]" tags are data. No rich: diff of two files must start fast.
    return Writer(stream) if stream is not None else Writer()


def outputs(specs: list[str] | None, **aliases: Any) -> Any:
    """The outputs a command writes (render.outputs): its --output specs and the older flags routed into them."""
    from envprint.render.outputs import Selection

    return Selection(specs, emit=lambda text: emit(lambda: sys.stdout.write(text)), **aliases)


def this_host() -> Any:
    """This host for JUnit's properties (check.capture.this_host), imported only when a JUnit output is written."""
    from envprint.check.capture import this_host as host

    return host()
