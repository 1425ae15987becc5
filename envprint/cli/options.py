"""Options the commands share: their declarations (``Annotated`` types) and how their values are parsed.

Owns: --json, --output, tolerance (--rtol/--atol/--exact), custom objects, the signing key from the environment,
--format, --input-shape, the Ray options and a sweep's or fleet's verify options. Must not import
TensorFlow at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.models import OptionInfo

from envprint import formats
from envprint.errors import UsageError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (canonical, sorted keys) instead of tables.")]
# Where FORMAT without a path goes, when it is not stdout (render.outputs.OUTPUTS: the defaults).
_OUTPUT_FILES = {"html": "envprint-report.html", "junit": "envprint-junit.xml"}


def _output_option(*formats: str) -> OptionInfo:
    """--output for a command whose result these formats draw (render.outputs.OUTPUTS says which; tests check it)."""
    files = [f"{name} to {path}" for name, path in _OUTPUT_FILES.items() if name in formats]
    alone = f"FORMAT alone goes to stdout, but {' and '.join(files)}. " if files else "FORMAT alone goes to stdout. "
    return typer.Option(
        "--output",
        "-o",
        metavar="FORMAT[=PATH]",
        help=f"Also write the result as FORMAT ({', '.join(formats)}) to PATH ('-': stdout; repeatable). "
        f"{alone}Every PATH is checked before any work.",
    )


# verify, report: a verify report (or the error that stopped it)
OutputOpt = Annotated[list[str] | None, _output_option("text", "json", "html", "junit", "markdown")]
# show, save: a fingerprint, a save's summary
RecordOutputOpt = Annotated[list[str] | None, _output_option("text", "json")]
# diff, fleet, aggregate: a diff or the classes of hosts
DiffOutputOpt = Annotated[list[str] | None, _output_option("text", "json", "markdown")]
# sweep: one verdict per model
SweepOutputOpt = Annotated[list[str] | None, _output_option("text", "json", "junit", "markdown")]
AllOpt = Annotated[bool, typer.Option("--all", help="List every installed package instead of a count.")]


def parse_input_shapes(specs: list[str]) -> dict[str, tuple[int, ...]]:
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


def parse_tolerance(rtol: float | None, atol: float | None, exact: bool):
    from envprint.models import Tolerance

    if exact and (rtol is not None or atol is not None):
        raise UsageError("--exact demands bit equality; drop --rtol/--atol, or drop --exact")
    for name, value in (("--rtol", rtol), ("--atol", atol)):
        if value is not None and not value >= 0:
            raise UsageError(f"{name} must be a number >= 0, got {value}")
    if not (exact or rtol is not None or atol is not None):
        return None
    return Tolerance(exact=exact, rtol=rtol, atol=atol)


def load_custom_objects(specs: list[str]) -> dict:
    if not specs:
        return {}
    from envprint._tf.loading import parse_custom_objects

    return parse_custom_objects(specs)


def env_signing_key(required: bool) -> bytes | None:
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


def positive(value: float) -> float:
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


def verify_options(fingerprint, rtol, atol, exact, custom_objects, unsafe, require_signature):
    from envprint.check.options import VerifyOptions

    return VerifyOptions(
        fingerprint=str(fingerprint) if fingerprint else None,
        tolerance=parse_tolerance(rtol, atol, exact),
        custom_objects=tuple(custom_objects or ()),
        safe_mode=not unsafe,
        require_signature=require_signature,
    )


def ray_options(address: str, task_cpus: float, task_memory_mb: int | None, resources: list[str] | None, jobs=None):
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


# verify --endpoint: the server's options. The protocols' ids are the registry's
# (envprint.check.endpoint.registry.PROTOCOLS), named here for --help and checked against it by
# tests/test_cli_misuse.py: importing the registry here would cost `envprint --help` NumPy.
PROTOCOL_IDS = ("tfserving-rest", "tfserving-grpc", "kserve-v1", "kserve-v2", "kserve-v2-binary", "mlflow",
                "mlflow-dataframe")  # fmt: skip


def _protocol_choice(value: str | None) -> str | None:
    if value is not None and value not in PROTOCOL_IDS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(PROTOCOL_IDS)}")
    return value


EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        metavar="URL",
        help="Verify the model served at URL instead of loading MODEL (MODEL or --fingerprint names the record): "
        "TF Serving REST http://HOST:8501/v1/models/NAME, gRPC grpc://HOST:8500/NAME, and the other protocols "
        "of docs/how-to/endpoints.md.",
    ),
]
ProtocolOpt = Annotated[
    str | None,
    typer.Option(
        "--protocol",
        metavar="PROTOCOL",
        help=f"The serving protocol (default: recognised from the URL): {', '.join(PROTOCOL_IDS)}.",
        callback=_protocol_choice,
    ),
]
ModelNameOpt = Annotated[
    str | None, typer.Option("--model-name", help="The served model's name, when the URL does not name it.")
]
BatchSizeOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Probes per request (default: all in one request).")
]
WaitOpt = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to retry, with backoff, while the server is not ready.")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", callback=positive, help="Seconds one request may wait for an answer (> 0).")
]
CacertOpt = Annotated[Path | None, typer.Option("--cacert", help="CA bundle to check the server's TLS certificate.")]
HeaderEnvOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header-env",
        metavar="HEADER=ENVVAR",
        help="Send HEADER with the value of the environment variable ENVVAR (repeatable): never printed or recorded.",
    ),
]


# The options that only speak to a server: without --endpoint they would do nothing, so they are refused.
ENDPOINT_ONLY = ("protocol", "model_name", "batch_size", "wait", "timeout", "cacert", "header_env")


def refuse_given(ctx: typer.Context, names: tuple[str, ...], why: str) -> None:
    """A UsageError for the first of these options typed on the command line: ``why`` (with ``{flag}``) says
    what it needs. For an option that would otherwise do nothing, silently."""
    for param in ctx.command.params:
        if param.name not in names:
            continue
        source = ctx.get_parameter_source(param.name)  # Click's ParameterSource (Typer may bundle its own Click)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            raise UsageError(why.format(flag=max(param.opts, key=len)))


def refuse_endpoint_options(ctx: typer.Context) -> None:
    """A UsageError naming the first endpoint-only option given on this command line (verify without --endpoint)."""
    refuse_given(ctx, ENDPOINT_ONLY, "{flag} applies to a served model only; add --endpoint URL, or drop {flag}")


def parse_header_env(items: list[str]) -> dict[str, str]:
    """``["Authorization=TOKEN_VAR"]`` as {header: variable}; a malformed item is a UsageError."""
    out = {}
    for item in items:
        name, sep, var = item.partition("=")
        if not sep or not name or not var:
            raise UsageError(f"--header-env {item!r}: expected HEADER=ENVVAR, e.g. Authorization=SERVING_TOKEN")
        out[name] = var
    return out
