"""The command line: a thin Typer layer over the library.

Owns: the Typer app and its root options, output streams (results on stdout, diagnostics on
stderr), the one place where EnvprintError becomes an exit code (``_guard``; with ``--json``, an
error document on stdout) and ``main``. The commands live one family per module (``single``,
``inspect``, ``many``) over the shared options (``options``); each body parses, makes one library
call and prints. They are imported through this module only (it orders them and gives each its
--help epilog once all are registered). Must not import TensorFlow at module level: ``--help``
and ``diff`` of two files must start fast on hosts without it.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from envprint._version import __version__
from envprint.cli.streams import CppLogFilter, discard_stdout, emit
from envprint.errors import KINDS, EnvprintError, ExitCode, one_line

EXIT_CODES_HELP = """\b
Exit codes:
  0   passed / no differences
  1   mismatch (verify) / differences (diff)
  2   usage error
  3   fingerprint or probes problem (missing, invalid, newer schema)
  4   model problem (missing, unloadable, cannot predict the probes)
  5   missing dependency (TensorFlow or an extra not importable)
  70  internal error in envprint (a crash never looks like a mismatch)
A reader that closes the pipe early (| head -1) does not change the code.
"""

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: stdout closed before the command had a result (the shell's convention)


def _print_json_error(code: int, message: str) -> None:
    from envprint.models import ErrorDocument, ErrorInfo
    from envprint.record.store import canonical_json

    kind = KINDS.get(code, "interrupted" if code == 130 else "internal")
    document = ErrorDocument(error=ErrorInfo(exit_code=code, kind=kind, message=message))
    emit(lambda: sys.stdout.write(canonical_json(document)))


def _debug_first(argv: list[str]) -> list[str]:
    """--debug is the root's option; accept it after the command too (envprint verify m --debug)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" not in argv[:end]:
        return argv
    return ["--debug", *(a for i, a in enumerate(argv) if not (i < end and a == "--debug"))]


class _Group(TyperGroup):
    """Typer's group, but a usage error Typer itself finds (a bad option value) also prints JSON under --json."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:  # fmt: skip
        argv = _debug_first(list(sys.argv[1:] if args is None else args))
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's UsageError, BadParameter, ...
            _print_json_error(exc.exit_code, one_line(exc.format_message()))
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.stderr.write("Aborted!\n")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


class _Command(TyperCommand):
    """Typer's command, with arguments in the usage line as plain MODEL, A [B] (Typer 0.2x writes a required one as {MODEL})."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [
            piece[1:].replace("}", "", 1) if piece.startswith("{") and "}" in piece else piece
            for piece in super().collect_usage_pieces(ctx)
        ]


app = typer.Typer(
    cls=_Group,
    name="envprint",
    help="Fingerprint the environment of a TensorFlow/Keras model; verify and explain drift on another host.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"envprint {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _state["debug"] = debug


def quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would drown the report; the variable is not recorded
    # (collect.ENV_IGNORED) and a user's own setting wins. It is not enough on its own: lines
    # logged before absl is initialised ignore it (see streams.CppLogFilter).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _guard(fn: Callable[[], Any], json_out: bool = False) -> Any:
    """Run a command body: EnvprintError -> one line on stderr and its exit code; a bug -> 70.

    With ``json_out`` stdout also gets the error document, so ``--json > report.json`` is never empty.
    """

    def fail(code: int, message: str) -> typer.Exit:
        sys.stderr.write(f"envprint: {message}\n")
        if json_out:
            _print_json_error(code, message.removeprefix("error: "))
        return typer.Exit(code)

    try:
        return fn()
    except typer.Exit:
        raise
    except EnvprintError as exc:
        if _state["debug"]:
            traceback.print_exc()
        raise fail(int(exc.exit_code), f"error: {exc}") from None
    except KeyboardInterrupt:
        raise fail(130, "interrupted") from None
    except BrokenPipeError:  # stdout closed before the command had a result
        discard_stdout()
        raise typer.Exit(SIGPIPE_EXIT) from None
    except Exception as exc:
        if _state["debug"]:
            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback and report it)"
        raise fail(int(ExitCode.INTERNAL), message) from None


def writer():
    from envprint.render.text import Writer

    # Plain text on stdout, never wrapped or cut: paths and versions stay whole in a pipe or a
    # CI log, and "[topic]" tags are data. No rich: diff of two files must start fast.
    return Writer()


# The commands, one module per family; each registers itself on ``app``. Imported here, after
# ``app`` and ``_guard`` exist, so that ``envprint.cli.app:app`` is the whole command line.
from envprint.cli import inspect, many, single  # noqa: E402, F401

# --help lists the commands in this order: one model's life first, then fleets.
_ORDER = ["show", "diff", "save", "verify", "report", "env-export", "schema", "sweep", "fleet", "aggregate"]
app.registered_commands.sort(key=lambda info: _ORDER.index(info.name or info.callback.__name__))


def main() -> None:
    # The CLI is a short-lived process of its own. Importing TensorFlow and loading a model create
    # ~300k long-lived objects, and CPython's cyclic collector rescans them all in four full
    # passes on the way: 0.5-1.5 s of a 3-8 s verify or save on 2 cores, to free almost nothing
    # (peak RSS is 2-6 MB higher without it; scripts/bench.py). Reference counting still frees
    # everything that is not a cycle. Only the command line does this: the library never
    # touches the collector of a process that is not its own (a server's).
    gc.disable()
    args = sys.argv[1:]
    # Unless --debug, or the user asked TensorFlow for its log lines (a level below 3).
    quiet = "--debug" not in args and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3").strip() == "3"
    try:
        log_filter = CppLogFilter() if quiet else None
    except OSError:  # no file descriptor 2 to filter (a daemon with stderr closed): nothing to silence
        log_filter = None
    try:
        app()
    finally:
        if log_filter is not None:
            log_filter.close()


# Every command's --help shows the exit codes and plain argument names, commands defined above
# in any order included (Typer shows the app's epilog only at the top level).
for _info in app.registered_commands:
    if _info.cls in (None, TyperCommand):  # Typer's default, not a class a command chose
        _info.cls = _Command
    _info.epilog = _info.epilog or EXIT_CODES_HELP
