"""`envprint save`, `verify` and `report`: one model on this host.

Must not import TensorFlow at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from envprint.cli.boundary import _guard, quiet_tensorflow, writer
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


def save(  # size: long only by its option declarations; the body is parse, one library call, emit
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
        if tf_serving_warmup:
            from envprint.integrations.tfserving import save_with_warmup as do_save
        else:
            from envprint.check.saver import save as do_save

        quiet_tensorflow()
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
            tolerance=parse_tolerance(rtol, atol, exact),
            tolerance_from=tolerance_from,
            margin=margin,
            force=force,
            strict=strict,
            sign_key=env_signing_key(required=True) if sign else None,
            allow_nonfinite=allow_nonfinite,
        )
        _print_save(result, json_out)

    _guard(body, json_out)


def _print_save(result: Any, json_out: bool) -> None:
    """The save's warnings on stderr, and what it wrote on stdout: canonical JSON, or text for people."""
    for warning in result.warnings:
        sys.stderr.write(f"envprint: WARNING: {warning}\n")
    summary = result.summary()
    if json_out:
        from envprint.record.store import canonical_json

        emit(lambda: sys.stdout.write(canonical_json(summary)))
    else:
        from envprint.render.text import render_save

        emit(lambda: render_save(summary, writer()))


def verify(  # size: long only by its option declarations; the body is parse, one library call, emit
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

    def body() -> int:
        quiet_tensorflow()
        _refuse_combinations(preflight, investigate, junit_xml, html)
        if preflight:
            return _preflight(model, fingerprint, require_signature, json_out)
        from envprint.check.options import VerifyOptions
        from envprint.check.verifier import verify_with

        options = VerifyOptions(
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
        try:
            report = verify_with(model, options)
        except EnvprintError as exc:
            _junit_of_error(junit_xml, model, exc)
            raise
        _write_files(report, model, junit_xml, html)
        _print_report(report, json_out)
        return int(ExitCode.OK if report.passed else ExitCode.DIFFERENT)

    raise typer.Exit(_guard(body, json_out))


def _refuse_combinations(preflight: bool, investigate: bool, junit_xml: Path | None, html: Path | None) -> None:
    """Options that cannot go together, and a missing extra, refused before any work."""
    if html is not None and preflight:
        raise UsageError("--html draws a verify report, which --preflight does not make; drop one of them")
    if html is not None:
        from envprint.render.html import require_matplotlib

        require_matplotlib()  # before the model loads: a missing extra fails fast
    if preflight and investigate:
        raise UsageError("--investigate re-runs a verify's probes; --preflight runs none: drop one of them")
    if preflight and junit_xml is not None:
        raise UsageError("--junit-xml reports a verify; --preflight does not verify: drop one of them")


def _preflight(model: Path, fingerprint: Path | None, require_signature: bool, json_out: bool) -> int:
    from envprint.check.verifier import preflight

    result = preflight(model, fingerprint=fingerprint, require_signature=require_signature,
                       signing_key=env_signing_key(required=False))  # fmt: skip
    if json_out:
        from envprint.record.store import canonical_json

        emit(lambda: sys.stdout.write(canonical_json(result)))
    else:
        from envprint.render.text import render_diff

        emit(lambda: render_diff(result, writer()))
    return int(ExitCode.DIFFERENT if result.expects_change else ExitCode.OK)


def _junit_of_error(junit_xml: Path | None, model: Path, exc: EnvprintError) -> None:
    """--junit-xml when verify could not run: the CI panel shows "could not verify" as an error, not as nothing."""
    if junit_xml is None:
        return
    from envprint.check.reports import write_junit

    try:
        write_junit(junit_xml, model, exc)
    except UsageError as unwritable:  # the error that stopped verify is the one to exit with
        sys.stderr.write(f"envprint: WARNING: {unwritable}\n")


def _write_files(report: Any, model: Path, junit_xml: Path | None, html: Path | None) -> None:
    """The files a verify writes besides stdout: --junit-xml and --html."""
    if junit_xml is not None:
        from envprint.check.reports import write_junit

        write_junit(junit_xml, model, report)
    if html is not None:
        _write_html(report, html)


def _print_report(report: Any, json_out: bool) -> None:
    """The verify report on stdout: canonical JSON, or text for people."""
    if json_out:
        from envprint.record.store import canonical_json

        emit(lambda: sys.stdout.write(canonical_json(report)))
    else:
        from envprint.render.text import render_report

        emit(lambda: render_report(report, writer()))


def _write_html(report: Any, path: Path) -> None:
    from envprint.check.reports import write_html

    write_html(report, path)
    sys.stderr.write(f"envprint: wrote {path}\n")


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
