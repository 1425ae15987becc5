"""The command line: a thin Typer layer over the library.

Owns: the Typer app and its root options, which commands there are (registered here, in --help's
order, each given the exit-code epilog) and ``main``. The commands live one family per module
(``single``, ``inspect``, ``many``) over the shared options (``options``) and the error boundary
(``boundary._guard``, re-exported here: where EnvprintError becomes an exit code); each body
parses, makes one library call and prints. Must not import TensorFlow at module level: ``--help``
and ``diff`` of two files must start fast on hosts without it.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from envprint._version import __version__
from envprint.cli.boundary import SIGPIPE_EXIT, _guard, _print_json_error, _state  # noqa: F401 (_guard, SIGPIPE_EXIT: re-exported)
from envprint.cli.streams import (
    CppLogFilter,
    discard_stderr,
    discard_stdout,
    exit_code_told,
    min_log_level,
    one_line_warnings,
)
from envprint.errors import one_line

EXIT_CODES_HELP = """\b
Exit codes:
  0   passed / no differences
  1   mismatch (verify) / differences (diff)
  2   usage error
  3   fingerprint or probes problem (missing, invalid, newer schema)
  4   model problem (missing, unloadable, cannot predict the probes)
  5   missing dependency (TensorFlow or an extra not importable)
  6   endpoint could not be verified (verify --endpoint: unreachable, not ready, unreadable answer)
  70  internal error in envprint (a crash never looks like a mismatch)
A reader that closes the pipe early (| head -1) does not change the code.
"""


def _debug_first(argv: list[str]) -> list[str]:
    """--debug is the root's option; accept it after the command too (envprint verify m --debug)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" not in argv[:end]:
        return argv
    return ["--debug", *(a for i, a in enumerate(argv) if not (i < end and a == "--debug"))]


class _Group(TyperGroup):
    """Typer's group, but a usage error Typer itself finds (a bad option value) also prints JSON under --json."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:  # fmt: skip
        argv = _debug_first(list(sys.argv[1:] if args is None else args))
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
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


# The commands, one module per family, registered here: ``envprint.cli.app:app`` is the whole command line.
from envprint.cli import inspect, many, single  # noqa: E402

# In --help's order: one model's life first, then fleets.
app.command()(inspect.show)
app.command()(inspect.diff)
app.command()(single.save)
app.command()(single.verify)
app.command("report")(single.report_command)
app.command("env-export")(inspect.env_export)
app.command()(inspect.schema)
app.command()(many.sweep)
app.command()(many.fleet)
app.command()(many.aggregate)


def main() -> None:
    # The CLI is a short-lived process of its own. Importing TensorFlow and loading a model create
    # ~300k long-lived objects, and CPython's cyclic collector rescans them all in four full
    # passes on the way: 0.5-1.5 s of a 3-8 s verify or save on 2 cores, to free almost nothing
    # (peak RSS is 2-6 MB higher without it; scripts/bench.py). Reference counting still frees
    # everything that is not a cycle. Only the command line does this: the library never
    # touches the collector of a process that is not its own (a server's).
    gc.disable()
    args = sys.argv[1:]
    # TensorFlow's C++ lines below the level the user set (envprint's default: all); none under --debug.
    level = min_log_level(os.environ, debug="--debug" in args)
    try:
        log_filter = CppLogFilter(level) if level else None
    except OSError:  # no file descriptor 2 to filter (a daemon with stderr closed): nothing to silence
        log_filter = None
    one_line_warnings()
    try:
        app()
    except BrokenPipeError as exc:  # stderr's reader left while Click told a usage error (2>&1 | head -1)
        discard_stderr()
        try:
            sys.stdout.flush()
        except OSError:  # or stdout's, both one pipe
            discard_stdout()
        told = exit_code_told(exc)
        raise SystemExit(SIGPIPE_EXIT if told is None else told) from None
    finally:
        if log_filter is not None:
            log_filter.close()


# Every command's --help shows the exit codes and plain argument names, commands defined above
# in any order included (Typer shows the app's epilog only at the top level).
for _info in app.registered_commands:
    if _info.cls in (None, TyperCommand):  # Typer's default, not a class a command chose
        _info.cls = _Command
    _info.epilog = _info.epilog or EXIT_CODES_HELP
