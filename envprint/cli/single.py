"""`envprint save`, `verify` and `report`: one model on this host.

Must not import TensorFlow at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from envprint.cli.app import _guard, app, quiet_tensorflow, writer
from envprint.cli.options import (
    AtolOpt,
    CustomOpt,
    ExactOpt,
    FormatOpt,
    HtmlOpt,
    JsonOpt,
    ModelArg,
    RtolOpt,
    SignatureOpt,
    UnsafeOpt,
    env_signing_key,
    load_custom_objects,
    parse_input_shapes,
    parse_tolerance,
    positive,
)
from envprint.cli.streams import emit
from envprint.errors import EnvprintError, ExitCode, UsageError


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
) -> None:
    """Record the model's identity, probe inputs, reference predictions and this host's fingerprint beside it."""

    def body() -> None:
        from envprint.record.store import canonical_json

        if tf_serving_warmup:
            from envprint.integrations.tfserving import save_with_warmup as do_save
        else:
            from envprint.check.saver import save as do_save

        quiet_tensorflow()
        tolerance = parse_tolerance(rtol, atol, exact)
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
            input_shapes=parse_input_shapes(input_shape or []),
            fmt=fmt,
            signature=signature,
            custom_objects=load_custom_objects(custom_objects or []),
            safe_mode=not unsafe,
            seed=seed,
            tolerance=tolerance,
            force=force,
            strict=strict,
            sign_key=env_signing_key(required=True) if sign else None,
            allow_nonfinite=allow_nonfinite,
        )
        for warning in result.warnings:
            sys.stderr.write(f"envprint: WARNING: {warning}\n")
        summary = result.summary()
        if json_out:
            emit(lambda: sys.stdout.write(canonical_json(summary)))
        else:
            from envprint.render.text import render_save

            emit(lambda: render_save(summary, writer()))

    _guard(body, json_out)


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
        typer.Option("--investigate-timeout", callback=positive, help="Seconds each child process may run (> 0)."),
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
) -> None:
    """Recompute the probes on this host and compare them with the saved reference.

    MODEL may also be an MLflow URI, runs:/<run_id>/<path> or models:/<name>/<version>: the model
    and its run's envprint/ record are downloaded (pip install 'envprint[mlflow]').
    Exit 0: identical or within tolerance; 1: mismatch (the report says why); 2 or more:
    could not verify (the exit codes are below). Writes nothing but the --html page.
    """

    def body(model: Path = model, fingerprint: Path | None = fingerprint, relabel=lambda report: report) -> int:
        from envprint.check.verifier import verify as do_verify
        from envprint.record.store import canonical_json

        quiet_tensorflow()
        if html is not None and preflight:
            raise UsageError("--html draws a verify report, which --preflight does not make; drop one of them")
        if html is not None:
            from envprint.render.html import require_matplotlib

            require_matplotlib()  # before the model loads: a missing extra fails fast
        if preflight:
            if investigate:
                raise UsageError("--investigate re-runs a verify's probes; --preflight runs none: drop one of them")
            if junit_xml is not None:
                raise UsageError("--junit-xml reports a verify; --preflight does not verify: drop one of them")
            from envprint.check.verifier import preflight as do_preflight

            result = do_preflight(model, fingerprint=fingerprint, require_signature=require_signature,
                                  signing_key=env_signing_key(required=False))  # fmt: skip
            if json_out:
                emit(lambda: sys.stdout.write(canonical_json(result)))
            else:
                from envprint.render.text import render_diff

                emit(lambda: render_diff(result, writer()))
            return int(ExitCode.DIFFERENT if result.expects_change else ExitCode.OK)
        try:
            report = do_verify(
                model,
                fingerprint=fingerprint,
                tolerance=parse_tolerance(rtol, atol, exact),
                fmt=fmt,
                signature=signature,
                custom_objects=load_custom_objects(custom_objects or []),
                safe_mode=not unsafe,
                signing_key=env_signing_key(required=False),
                require_signature=require_signature,
                investigate=investigate,
                investigate_timeout=investigate_timeout,
                progress=lambda message: sys.stderr.write(f"envprint: {message}\n"),
            )
        except EnvprintError as exc:
            if junit_xml is not None:  # the CI panel shows "could not verify" as an error, not as nothing
                try:
                    _write_junit(junit_xml, model, exc)
                except UsageError as unwritable:  # the error that stopped verify is the one to exit with
                    sys.stderr.write(f"envprint: WARNING: {unwritable}\n")
            raise
        report = relabel(report)
        if junit_xml is not None:
            _write_junit(junit_xml, model, report)
        if html is not None:
            _write_html(report, html)
        if json_out:
            emit(lambda: sys.stdout.write(canonical_json(report)))
        else:
            from envprint.render.text import render_report

            emit(lambda: render_report(report, writer()))
        return int(ExitCode.OK if report.passed else ExitCode.DIFFERENT)

    raise typer.Exit(_guard(lambda: _from_mlflow(model, fingerprint, body), json_out))


def _from_mlflow(model: Path, fingerprint: Path | None, body: Callable[..., int]) -> int:
    """``body()``; for a runs:/ or models:/ MODEL, first download it and its record, and name the URIs in the report."""
    from envprint.integrations.mlflow import is_mlflow_uri, local_copy

    if not is_mlflow_uri(model):
        return body()
    with local_copy(str(model), fingerprint) as copy:
        return body(copy.model, copy.fingerprint, copy.relabel)


def _write_html(report, path: Path) -> None:
    from envprint.render.html import write_html

    write_html(report, path)
    sys.stderr.write(f"envprint: wrote {path}\n")


@app.command("report")
def report_command(
    report_json: Annotated[
        Path, typer.Argument(metavar="REPORT", help="A report saved with: envprint verify MODEL --json > REPORT.json")
    ],
    html: Annotated[Path, typer.Option("--html", help="Write the report as one self-contained HTML page here.")],
) -> None:
    """Draw a saved verify report as one self-contained HTML page with plots (pip install 'envprint[html]')."""

    def body() -> None:
        from envprint.record.store import read_report
        from envprint.render.html import require_matplotlib

        require_matplotlib()
        _write_html(read_report(report_json), html)

    _guard(body)


def _write_junit(path: Path, model: Path, result: Any) -> None:
    """--junit-xml: the report (or the error that stopped verify) as JUnit XML, with this host's facts."""
    from envprint.check.capture import capture
    from envprint.render.junit import error_suite, write_junit_xml

    host = capture(tensorflow=False)  # TensorFlow's facts when verify imported it; never imported for this
    suite = error_suite(str(model), str(result), host) if isinstance(result, EnvprintError) else result
    try:
        write_junit_xml(path, [suite], host)
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write the JUnit XML ({exc.strerror or exc}); pass a writable --junit-xml PATH"
        ) from None
