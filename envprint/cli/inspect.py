"""`envprint show`, `diff`, `env-export` and `schema`: fingerprints and records, no model loaded.

Must not import TensorFlow at module level: ``diff`` of two files must start fast on hosts without it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from envprint.cli.boundary import _guard, outputs, quiet_tensorflow
from envprint.cli.options import AllOpt, DiffOutputOpt, JsonOpt, RecordOutputOpt
from envprint.cli.streams import emit
from envprint.errors import ExitCode, UsageError


def show(
    json_out: JsonOpt = False,
    show_all: AllOpt = False,
    no_tensorflow: Annotated[
        bool, typer.Option("--no-tensorflow", help="Do not import TensorFlow; its sections are recorded as absent.")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Declare the seed your training used.")] = None,
    output: RecordOutputOpt = None,
) -> None:
    """Capture this host's fingerprint and print it."""
    outs = outputs(output, json=json_out)

    def body() -> None:
        from envprint.check.capture import capture

        outs.check("fingerprint", show_all=show_all)
        quiet_tensorflow()
        outs.write(capture(tensorflow=not no_tensorflow, seed=seed))

    _guard(body, outs)


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
    output: DiffOutputOpt = None,
) -> None:
    """Show what differs between two fingerprints, numerics-relevant differences first.

    Exit 0 when they are the same, 1 when they differ, 2 or more when they cannot be compared.
    Comparing two files never imports TensorFlow.
    """
    outs = outputs(output, json=json_out)

    def body() -> int:
        from envprint.causes.explain import expect
        from envprint.record.store import read_fingerprint

        outs.check("diff", show_all=show_all)
        if (b is None) == (not current):
            raise UsageError("give either a second fingerprint B or --current, not both and not neither")
        fa = read_fingerprint(a)
        if b is None:  # --current, as checked above
            from envprint.check.capture import capture

            quiet_tensorflow()
            fb, label_b = capture(), "current host"
        else:
            fb, label_b = read_fingerprint(b), str(b)
        result = expect(fa, fb, str(a), label_b)
        recorded = fa.model or fb.model
        outs.context.model_name = recorded.name if recorded else None
        outs.write(result)
        return int(ExitCode.OK if result.identical else ExitCode.DIFFERENT)

    raise typer.Exit(_guard(body, outs))


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
        from envprint.record.schemas import stale_schemas, write_schemas

        if not check:
            for path in write_schemas(out):
                sys.stdout.write(f"wrote {path}\n")
            return int(ExitCode.OK)
        stale = stale_schemas(out)
        if stale:
            names = ", ".join(str(p) for p in stale)
            sys.stderr.write(f"envprint: schemas out of date: {names}; run: envprint schema --out {out}\n")
            return int(ExitCode.DIFFERENT)
        return int(ExitCode.OK)

    raise typer.Exit(_guard(body))
