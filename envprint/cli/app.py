"""The command line: a thin Typer layer over the library.

Owns: arguments, output streams (results on stdout, diagnostics on stderr) and the one place
where EnvprintError becomes an exit code (and, with ``--json``, an error document on stdout).
Must not import TensorFlow at module level: ``--help`` and ``diff`` of two files must start fast
on hosts without it.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from envprint import formats
from envprint._version import __version__
from envprint.cli.streams import CppLogFilter, discard_stdout, emit, min_log_level, one_line_warnings
from envprint.errors import KINDS, EnvprintError, ExitCode, UsageError, one_line

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
    from envprint.render.outputs import canonical_json

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


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would drown the report; the variable is not recorded
    # (collect.ENV_IGNORED) and a user's own setting wins. It is not enough on its own: lines
    # logged before absl is initialised ignore it (see streams.CppLogFilter).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _guard(fn: Callable[[], Any], json_out: Any = False) -> Any:
    """Run a command body: EnvprintError -> one line on stderr and its exit code; a bug -> 70.

    With ``json_out`` stdout also gets the error document, so ``--json > report.json`` is never empty;
    given the command's outputs (render.outputs.Selection), each of them gets the error instead.
    """

    def fail(code: int, message: str) -> typer.Exit:
        sys.stderr.write(f"envprint: {message}\n")
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


def _writer():
    from envprint.render.text import Writer

    # Plain text on stdout, never wrapped or cut: paths and versions stay whole in a pipe or a
    # CI log, and "[topic]" tags are data. No rich: diff of two files must start fast.
    return Writer()


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (canonical, sorted keys) instead of tables.")]
OutputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT[=PATH]",
        help="Also write the result as FORMAT (text, json, html, junit, markdown) to PATH ('-': stdout; repeatable). "
        "Every PATH is checked before any work.",
    ),
]


def _outputs(specs: list[str] | None, **aliases: Any) -> Any:
    """The outputs a command writes (render.outputs): its --output specs and the older flags routed into them."""
    from envprint.render.outputs import Selection

    return Selection(specs, emit=lambda text: emit(lambda: sys.stdout.write(text)), **aliases)


AllOpt = Annotated[bool, typer.Option("--all", help="List every installed package instead of a count.")]


def _this_host() -> Any:
    """This host's fingerprint for JUnit's properties: TensorFlow's facts only if a command imported it."""
    from envprint.check.capture import capture

    return capture(tensorflow=False)


@app.command()
def show(
    json_out: JsonOpt = False,
    show_all: AllOpt = False,
    no_tensorflow: Annotated[
        bool, typer.Option("--no-tensorflow", help="Do not import TensorFlow; its sections are recorded as absent.")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Declare the seed your training used.")] = None,
    output: OutputOpt = None,
) -> None:
    """Capture this host's fingerprint and print it."""
    outs = _outputs(output, json=json_out)

    def body() -> None:
        from envprint.check.capture import capture

        outs.check("fingerprint", show_all=show_all)
        _quiet_tensorflow()
        outs.write(capture(tensorflow=not no_tensorflow, seed=seed))

    _guard(body, outs)


@app.command()
def diff(
    a: Annotated[
        Path,
        typer.Argument(
            metavar="A", help="A fingerprint.json, or the sidecar directory that holds it.", show_default=False
        ),
    ],
    b: Annotated[
        Path | None, typer.Argument(metavar="B", help="Another fingerprint.json or sidecar (or use --current).")
    ] = None,
    current: Annotated[bool, typer.Option("--current", help="Compare A with this host, captured now.")] = False,
    json_out: JsonOpt = False,
    show_all: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """Show what differs between two fingerprints, numerics-relevant differences first.

    Exit 0 when they are the same, 1 when they differ, 2 or more when they cannot be compared.
    Comparing two files never imports TensorFlow.
    """

    outs = _outputs(output, json=json_out)

    def body() -> int:
        from envprint.causes.explain import expect
        from envprint.record.store import read_fingerprint

        outs.check("diff", show_all=show_all)
        if (b is None) == (not current):
            raise UsageError("give either a second fingerprint B or --current, not both and not neither")
        fa = read_fingerprint(a)
        if current:
            from envprint.check.capture import capture

            _quiet_tensorflow()
            fb, label_b = capture(), "current host"
        else:
            fb, label_b = read_fingerprint(b), str(b)
        result = expect(fa, fb, str(a), label_b)
        outs.context.model_name = (fa.model or fb.model).name if (fa.model or fb.model) else None
        outs.write(result)
        return int(ExitCode.OK if result.identical else ExitCode.DIFFERENT)

    raise typer.Exit(_guard(body, outs))


def _input_shapes(specs: list[str]) -> dict[str, tuple[int, ...]]:
    """--input-shape NAME=D1,D2 (or D1,D2 for a single input): the shape of one probe, without the batch."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = ()
        if not shape or any(d < 1 for d in shape):
            raise UsageError(
                f"--input-shape {spec!r}: expected NAME=D1,D2,... with positive integers, e.g. image=224,224,3"
            )
        shapes[name if sep else ""] = shape
    return shapes


def _tolerance(rtol: float | None, atol: float | None, exact: bool):
    from envprint.models import Tolerance

    if exact and (rtol is not None or atol is not None):
        raise UsageError("--exact demands bit equality; drop --rtol/--atol, or drop --exact")
    for name, value in (("--rtol", rtol), ("--atol", atol)):
        if value is not None and not value >= 0:
            raise UsageError(f"{name} must be a number >= 0, got {value}")
    if not (exact or rtol is not None or atol is not None):
        return None
    return Tolerance(exact=exact, rtol=rtol, atol=atol)


def _custom_objects(specs: list[str]) -> dict:
    if not specs:
        return {}
    from envprint._tf.loading import parse_custom_objects

    return parse_custom_objects(specs)


def _signing_key(required: bool) -> bytes | None:
    """ENVPRINT_SIGNING_KEY, or None; a UsageError when --sign needs it and it is unset."""
    from envprint.record.signing import KEY_ENV, key_from_env

    key = key_from_env()
    if key is None and required:
        raise UsageError(f"--sign needs a key: set {KEY_ENV} (a shared secret of at least 16 bytes)")
    return key


ModelArg = Annotated[
    Path,
    typer.Argument(
        metavar="MODEL",
        # Not Click's own readable check: an unreadable model is a model problem (exit 4, one line), raised below.
        readable=False,
        help=f"{formats.accepted()[0].upper()}{formats.accepted()[1:]}.",
        show_default=False,
    ),
]


def _format_choice(value: str | None) -> str | None:
    if value is not None and value not in formats.IDS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(formats.IDS)}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value:g} is not a number of seconds > 0")
    return value


def _custom_objects_syntax(values: list[str] | None) -> list[str] | None:
    for spec in values or []:
        module, sep, name = spec.partition(":")
        if not (sep and module and name):
            raise typer.BadParameter(f"{spec!r}: expected package.module:NAME, e.g. mypkg.layers:MyLayer")
    return values


FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help=f"{formats.choices()} (default: from the path).", callback=_format_choice),
]
SignatureOpt = Annotated[
    str | None, typer.Option("--signature", help="SavedModel/TFLite signature (default: serving_default).")
]
CustomOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--custom-objects",
        metavar="MODULE:NAME",
        help="A custom layer or function to load the model with (repeatable).",
        callback=_custom_objects_syntax,
    ),
]
UnsafeOpt = Annotated[
    bool,
    typer.Option(
        "--unsafe", help="Load with Keras safe_mode off: runs code stored in the model file. Only for files you trust."
    ),
]
RtolOpt = Annotated[float | None, typer.Option("--rtol", help="Relative tolerance (default: per output dtype).")]
AtolOpt = Annotated[float | None, typer.Option("--atol", help="Absolute tolerance (default: per output dtype).")]
ExactOpt = Annotated[bool, typer.Option("--exact", help="Demand bit-identical outputs.")]
HtmlOpt = Annotated[
    Path | None,
    typer.Option(
        "--html", help="Also write the report as one self-contained HTML page with plots (envprint[html] extra)."
    ),
]


@app.command()
def save(
    model: ModelArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Sidecar directory (default: MODEL.envprint/ beside a file, MODEL/assets.extra/envprint/ inside a SavedModel).",
        ),
    ] = None,
    probes: Annotated[
        Path | None,
        typer.Option(
            "--probes",
            help="Probe inputs: .npy for one input, .npz keyed by input name. Real samples make the best probes.",
        ),
    ] = None,
    num_probes: Annotated[int, typer.Option("--num-probes", min=1, help="How many probes to generate.")] = 8,
    probe_seed: Annotated[int, typer.Option("--probe-seed", help="Seed of the probe generator.")] = 0,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            "--input-shape",
            metavar="NAME=D1,D2",
            help="Shape of one probe for an input with dynamic dimensions (repeatable).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Declare the seed your training used (recorded).")] = None,
    fmt: FormatOpt = None,
    signature: SignatureOpt = None,
    custom_objects: CustomOpt = None,
    unsafe: UnsafeOpt = False,
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    exact: ExactOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace an existing fingerprint (the old one stays until the new one is complete)."
        ),
    ] = False,
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign the record (HMAC-SHA256) with the key in ENVPRINT_SIGNING_KEY.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 4) if the model's outputs change between identical calls.")
    ] = False,
    tf_serving_warmup: Annotated[
        bool,
        typer.Option(
            "--tf-serving-warmup",
            help="Also write assets.extra/tf_serving_warmup_requests into the SavedModel from the probes, so "
            "that the inputs verify checks warm TF Serving.",
        ),
    ] = False,
    allow_nonfinite: Annotated[
        bool,
        typer.Option(
            "--allow-nonfinite",
            help="Record probes that hold only NaN/Inf, or outputs that are NaN/Inf for every probe, with a warning "
            "instead of refusing them (they cannot tell one model from another).",
        ),
    ] = False,
    tolerance_from: Annotated[
        Path | None,
        typer.Option(
            "--tolerance-from",
            metavar="REPORT.json",
            help="Set the record's tolerance from the drift a verify report measured (envprint verify --json).",
        ),
    ] = None,
    margin: Annotated[
        float, typer.Option("--margin", help="With --tolerance-from: the factor on the measured drift (>= 1).")
    ] = 2.0,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Record the model's identity, probe inputs, reference predictions and this host's fingerprint beside it."""
    outs = _outputs(output, json=json_out)

    def body() -> None:
        outs.check("save")
        if tf_serving_warmup:
            from envprint.integrations.tfserving import save_with_warmup as do_save
        else:
            from envprint.check.saver import save as do_save

        _quiet_tensorflow()
        tolerance = _tolerance(rtol, atol, exact)
        if tolerance_from is not None:
            from envprint.check.compare import tolerance_from_report
            from envprint.record.store import read_report

            if tolerance is not None:
                raise UsageError("--tolerance-from sets rtol from measured drift; drop --rtol/--atol/--exact")
            tolerance = tolerance_from_report(read_report(tolerance_from), margin, str(tolerance_from))
        result = do_save(
            model,
            out=out,
            probes=probes,
            num_probes=num_probes,
            probe_seed=probe_seed,
            input_shapes=_input_shapes(input_shape or []),
            fmt=fmt,
            signature=signature,
            custom_objects=_custom_objects(custom_objects or []),
            safe_mode=not unsafe,
            seed=seed,
            tolerance=tolerance,
            force=force,
            strict=strict,
            sign_key=_signing_key(required=True) if sign else None,
            allow_nonfinite=allow_nonfinite,
        )
        for warning in result.warnings:
            sys.stderr.write(f"envprint: WARNING: {warning}\n")
        outs.write(result.summary())

    _guard(body, outs)


@app.command()
def verify(
    model: ModelArg,
    fingerprint: Annotated[
        Path | None,
        typer.Option(
            "--fingerprint", help="The sidecar directory or its fingerprint.json (default: found beside MODEL)."
        ),
    ] = None,
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    exact: ExactOpt = False,
    fmt: FormatOpt = None,
    signature: SignatureOpt = None,
    custom_objects: CustomOpt = None,
    unsafe: UnsafeOpt = False,
    investigate: Annotated[
        bool,
        typer.Option(
            "--investigate",
            help="When outputs differ, re-run the probes in child processes, each with one saved setting "
            "restored, and report which causes that confirms or rules out.",
        ),
    ] = False,
    investigate_timeout: Annotated[
        float,
        typer.Option("--investigate-timeout", callback=_positive, help="Seconds each child process may run (> 0)."),
    ] = 120.0,
    require_signature: Annotated[
        bool,
        typer.Option(
            "--require-signature",
            help="Refuse (exit 3) a record that is not signed with the key in ENVPRINT_SIGNING_KEY.",
        ),
    ] = False,
    preflight: Annotated[
        bool,
        typer.Option(
            "--preflight",
            help="Do not load the model: predict from the saved fingerprint and this host alone what drift to "
            "expect and why (exit 1 when a change of the outputs or a load failure is at least 0.5 likely).",
        ),
    ] = False,
    junit_xml: Annotated[
        Path | None,
        typer.Option(
            "--junit-xml",
            metavar="PATH",
            help="Also write the result as JUnit XML for CI panels: one test case per check (identity, each "
            "output, the self-check), the environment as properties.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    html: HtmlOpt = None,
    output: OutputOpt = None,
) -> None:
    """Recompute the probes on this host and compare them with the saved reference.

    MODEL may also be an MLflow URI, runs:/<run_id>/<path> or models:/<name>/<version>: the model
    and its run's envprint/ record are downloaded (pip install 'envprint[mlflow]').
    Exit 0: identical or within tolerance; 1: mismatch (the report says why); 2 or more:
    could not verify (the exit codes are below). Writes nothing but the outputs asked for (--output).
    """
    outs = _outputs(output, json=json_out, html=html, junit_xml=junit_xml, model=model)

    def body(model: Path = model, fingerprint: Path | None = fingerprint, relabel=lambda report: report) -> int:
        if preflight and investigate:
            raise UsageError("--investigate re-runs a verify's probes; --preflight runs none: drop one of them")
        # every path and extra, before any work; JUnit's properties: this host, TensorFlow's facts if imported
        outs.check("preflight" if preflight else "report", host=_this_host)
        from envprint.check.verifier import verify as do_verify

        _quiet_tensorflow()
        if preflight:
            from envprint.check.verifier import preflight as do_preflight

            result = do_preflight(model, fingerprint=fingerprint, require_signature=require_signature,
                                  signing_key=_signing_key(required=False))  # fmt: skip
            outs.write(result)
            return int(ExitCode.DIFFERENT if result.expects_change else ExitCode.OK)
        report = do_verify(
            model,
            fingerprint=fingerprint,
            tolerance=_tolerance(rtol, atol, exact),
            fmt=fmt,
            signature=signature,
            custom_objects=_custom_objects(custom_objects or []),
            safe_mode=not unsafe,
            signing_key=_signing_key(required=False),
            require_signature=require_signature,
            investigate=investigate,
            investigate_timeout=investigate_timeout,
            progress=lambda message: sys.stderr.write(f"envprint: {message}\n"),
        )  # an error that stops it reaches every output through _guard: the CI panel shows "could not verify"
        report = relabel(report)
        outs.write(report)
        return int(ExitCode.OK if report.passed else ExitCode.DIFFERENT)

    raise typer.Exit(_guard(lambda: _from_mlflow(model, fingerprint, body), outs))


def _from_mlflow(model: Path, fingerprint: Path | None, body: Callable[..., int]) -> int:
    """``body()``; for a runs:/ or models:/ MODEL, first download it and its record, and name the URIs in the report."""
    from envprint.integrations.mlflow import is_mlflow_uri, local_copy

    if not is_mlflow_uri(model):
        return body()
    with local_copy(str(model), fingerprint) as copy:
        return body(copy.model, copy.fingerprint, copy.relabel)


@app.command("report")
def report_command(
    report_json: Annotated[
        Path, typer.Argument(metavar="REPORT", help="A report saved with: envprint verify MODEL --json > REPORT.json")
    ],
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the report as one self-contained HTML page here.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Draw a saved verify report (or verify's error document) again: an HTML page with plots
    (pip install 'envprint[html]'), Markdown, JUnit XML, or text."""
    outs = _outputs(output, html=html, text_unless_files=True)

    def body() -> None:
        from envprint.record.store import read_report_or_error

        outs.check("report", host=_this_host)  # every output that draws a report draws verify's error document too
        result = read_report_or_error(report_json)
        outs.context.kind = "error" if result.verdict == "error" else "report"
        outs.write(result)

    _guard(body)


@app.command("env-export")
def env_export(
    fingerprint: Annotated[
        Path, typer.Argument(metavar="FINGERPRINT", help="A fingerprint.json, or the sidecar directory that holds it.")
    ],
) -> None:
    """Print a pip constraints file pinning the saved host's packages (all but pip, setuptools, wheel, envprint).

    Use: envprint env-export FINGERPRINT > constraints.txt && pip install -c constraints.txt 'tensorflow==X'
    """

    def body() -> None:
        from envprint.host.constraints import env_export as export
        from envprint.record.store import read_fingerprint

        constraints = export(read_fingerprint(fingerprint))
        emit(lambda: sys.stdout.write(constraints))

    _guard(body)


@app.command()
def schema(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the JSON Schema files into.")] = Path(
        "schemas"
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the files in --out differ from the models.")
    ] = False,
) -> None:
    """Write the JSON Schema of every record envprint persists or emits (e.g. fingerprint.v1.schema.json)."""

    def body() -> int:
        from envprint.models import json_schemas
        from envprint.record.sidecar import atomic_write_text
        from envprint.record.store import canonical_json

        stale = []
        if check and not out.is_dir():
            raise UsageError(
                f"{out}: no such folder, so nothing to check; run 'envprint schema --check' in a checkout of "
                "envprint, or pass --out DIR"
            )
        if not check:
            out.mkdir(parents=True, exist_ok=True)
        for name, document in json_schemas().items():
            path = out / name
            text = canonical_json(document)
            if check:
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                atomic_write_text(path, text)
                sys.stdout.write(f"wrote {path}\n")
        if stale:
            sys.stderr.write(f"envprint: schemas out of date: {', '.join(stale)}; run: envprint schema --out {out}\n")
            return int(ExitCode.DIFFERENT)
        return int(ExitCode.OK)

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- many models, many hosts


def _error_document(item: Any) -> Any:
    from envprint.models import ErrorDocument, ErrorInfo

    kind = KINDS.get(item.exit_code, "internal")
    return ErrorDocument(error=ErrorInfo(exit_code=item.exit_code, kind=kind, message=item.error or "could not verify"))


def _verify_options(fingerprint, rtol, atol, exact, custom_objects, unsafe, require_signature):
    from envprint.many.sweep import VerifyOptions

    return VerifyOptions(
        fingerprint=str(fingerprint) if fingerprint else None,
        tolerance=_tolerance(rtol, atol, exact),
        custom_objects=tuple(custom_objects or ()),
        safe_mode=not unsafe,
        require_signature=require_signature,
    )


def _ray_options(address: str, task_cpus: float, task_memory_mb: int | None, resources: list[str] | None, jobs=None):
    from envprint.many.ray_engine import RayOptions

    extra: dict[str, float] = {}
    for spec in resources or []:
        name, sep, amount = spec.partition("=")
        try:
            extra[name] = float(amount)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise UsageError(f"--task-resource {spec!r}: expected NAME=AMOUNT, e.g. accelerator=1")
    if task_cpus < 0:
        raise UsageError(f"--task-cpus must be >= 0, got {task_cpus}")
    return RayOptions(
        address=address,
        num_cpus=task_cpus,
        memory=task_memory_mb * 2**20 if task_memory_mb else None,
        resources=extra,
        local_cpus=jobs,
    )


RequireSigOpt = Annotated[
    bool,
    typer.Option(
        "--require-signature", help="Refuse a record that is not signed with the key in ENVPRINT_SIGNING_KEY."
    ),
]
TaskCpusOpt = Annotated[float, typer.Option("--task-cpus", help="CPUs Ray reserves for each task.")]
TaskMemoryOpt = Annotated[
    int | None, typer.Option("--task-memory", metavar="MB", help="Memory Ray reserves for each task.")
]
TaskResourceOpt = Annotated[
    list[str] | None,
    typer.Option("--task-resource", metavar="NAME=AMOUNT", help="A custom Ray resource each task needs (repeatable)."),
]


@app.command()
def sweep(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(metavar="MODEL_OR_DIR...", help="Models, or directories searched for models with a record."),
    ] = None,
    list_file: Annotated[
        Path | None, typer.Option("--list", metavar="FILE", help="A file naming one model per line (# comments).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Worker processes (default: what the CPUs and memory allow).")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run each model as a Ray task: 'local' starts a cluster here, 'auto' joins this node's, "
            "or host:6379 / ray://host:10001. Needs envprint[ray].",
        ),
    ] = None,
    task_cpus: TaskCpusOpt = 1.0,
    task_memory: TaskMemoryOpt = None,
    task_resource: TaskResourceOpt = None,
    max_models_per_worker: Annotated[
        int, typer.Option("--max-models-per-worker", help="Recycle a worker after this many models.")
    ] = 50,
    max_worker_rss: Annotated[
        int, typer.Option("--max-worker-rss", metavar="MB", help="Recycle a worker whose memory passes this.")
    ] = 3072,
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    exact: ExactOpt = False,
    custom_objects: CustomOpt = None,
    unsafe: UnsafeOpt = False,
    require_signature: RequireSigOpt = False,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", metavar="FILE", help="Also write a JUnit XML file, one test per model."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="JSON Lines: one verify report per model as it finishes, then the summary.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Verify every model that has a record under the given paths, in this environment.

    One line per model as it finishes, then a summary (per verdict, per leading cause, worst
    models first). Exit 0 when all pass, 1 when any mismatches, 2 or more when any could not be
    verified (the highest such code; each model says why). Ctrl-C prints what is done (exit 130).
    """

    outs = _outputs(output, junit_xml=junit_xml, json_lines=json_out)

    def body() -> int:
        outs.check("sweep")  # every path, before any model is looked at
        from envprint.many.sweep import sweep as do_sweep
        from envprint.render.many import Progress, sweep_line
        from envprint.render.outputs import json_line

        _quiet_tensorflow()
        if not paths and list_file is None:
            raise UsageError("give models or directories to sweep, or --list FILE")
        if jobs is not None and jobs < 1:
            raise UsageError(f"--jobs must be >= 1, got {jobs}")
        out = _writer()
        progress: list[Progress] = []

        def on_item(item, report, done, total):
            outs.context.items.append((item, report))  # for JUnit: each report, or the error of a model not verified
            if not progress:
                progress.append(Progress(total))
            progress[0].clear()
            if json_out:  # each line what `envprint verify MODEL --json` prints: a report, or the error document
                sys.stdout.write(json_line(report if report is not None else _error_document(item)))
            else:
                out.line(sweep_line(item))
            sys.stdout.flush()
            progress[0].update(done)

        summary = do_sweep(
            paths or [],
            list_file=list_file,
            options=_verify_options(None, rtol, atol, exact, custom_objects, unsafe, require_signature),
            jobs=jobs,
            ray=_ray_options(ray_address, task_cpus, task_memory, task_resource, jobs) if ray_address else None,
            max_models_per_worker=max_models_per_worker,
            max_worker_rss=max_worker_rss * 2**20,
            on_item=on_item,
        )
        if progress:
            progress[0].clear()
        if json_out:
            sys.stdout.write(json_line(summary))
        outs.write(summary)
        if summary.interrupted:
            sys.stderr.write("envprint: interrupted\n")
            return 130
        return summary.exit_code

    raise typer.Exit(_guard(body, outs))


@app.command()
def fleet(
    model: ModelArg,
    ray_address: Annotated[
        str,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="The Ray cluster: host:6379, ray://host:10001, 'auto' (this node's cluster), or 'local' "
            "(a cluster of this host alone, started in this process, to try a setup).",
        ),
    ],
    fingerprint: Annotated[
        Path | None, typer.Option("--fingerprint", help="The record (default: found beside MODEL).")
    ] = None,
    ship: Annotated[
        bool,
        typer.Option(
            "--ship",
            help="Send the model and its record to each node through Ray's object store (nodes that cannot read MODEL's path).",
        ),
    ] = False,
    ship_limit: Annotated[
        int, typer.Option("--ship-limit", metavar="MB", help="Largest model (with its record) --ship sends.")
    ] = 256,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for every node; a node without a result is unreachable.")
    ] = 900.0,
    task_cpus: TaskCpusOpt = 1.0,
    task_memory: TaskMemoryOpt = None,
    task_resource: TaskResourceOpt = None,
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    exact: ExactOpt = False,
    custom_objects: CustomOpt = None,
    unsafe: UnsafeOpt = False,
    require_signature: RequireSigOpt = False,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Verify one model on every alive node of a Ray cluster and group the nodes into equivalence classes.

    Nodes agree when they have the same verdict, the same numerics-relevant differences from the
    record and bit-identical outputs. Exit 0 when every node passes, 1 when any mismatches, 2 or
    more when any could not verify (4 for a node that died or never ran its task: unreachable).
    """

    outs = _outputs(output, json=json_out, model=model)

    def body() -> int:
        from envprint.many.fleet import fleet as do_fleet

        outs.check("fleet")
        report = do_fleet(
            model,
            ray=_ray_options(ray_address, task_cpus, task_memory, task_resource),
            options=_verify_options(fingerprint, rtol, atol, exact, custom_objects, unsafe, require_signature),
            ship=ship,
            ship_limit=ship_limit * 2**20,
            timeout=timeout,
        )
        outs.write(report)
        return report.exit_code

    raise typer.Exit(_guard(body, outs))


@app.command()
def aggregate(
    reports: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="REPORT...",
            help="'envprint verify --json' outputs: files, directories of *.json/*.jsonl, or '-' (default) for "
            "stdin (reports one after another: concatenated, as 'cat reports/*.json' gives them, or JSON Lines).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Group hosts into equivalence classes from their 'envprint verify --json' reports (any engine).

    A host is named by its report's file (or stdin:LINE). Same classes and exit codes as fleet.
    """

    outs = _outputs(output, json=json_out)

    def body() -> int:
        from envprint.many.aggregate import aggregate as do_aggregate

        outs.check("aggregate")
        result = do_aggregate(reports or [], stdin=sys.stdin)
        outs.write(result)
        return result.exit_code

    raise typer.Exit(_guard(body, outs))


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
    finally:
        if log_filter is not None:
            log_filter.close()


# Every command's --help shows the exit codes and plain argument names, commands defined above
# in any order included (Typer shows the app's epilog only at the top level).
for _info in app.registered_commands:
    if _info.cls in (None, TyperCommand):  # Typer's default, not a class a command chose
        _info.cls = _Command
    _info.epilog = _info.epilog or EXIT_CODES_HELP
