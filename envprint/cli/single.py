"""`envprint save`, `verify` and `report`: one model on this host.

Must not import TensorFlow at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from envprint.cli.boundary import _guard, outputs, quiet_tensorflow, this_host
from envprint.cli.options import (
    AtolOpt,
    BatchSizeOpt,
    CacertOpt,
    CustomOpt,
    EndpointOpt,
    ExactOpt,
    FormatOpt,
    HeaderEnvOpt,
    HtmlOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    OutputOpt,
    ProtocolOpt,
    RecordOutputOpt,
    RtolOpt,
    SignatureOpt,
    TimeoutOpt,
    UnsafeOpt,
    WaitOpt,
    env_signing_key,
    load_custom_objects,
    parse_header_env,
    parse_input_shapes,
    parse_tolerance,
    positive,
    refuse_endpoint_options,
    refuse_given,
)
from envprint.errors import ExitCode, UsageError


def _say(message: str) -> None:
    """A progress line of a long verify (--investigate), on stderr."""
    sys.stderr.write(f"envprint: {message}\n")


def save(  # size: long only by its option declarations; the body is parse, one library call, emit
    ctx: typer.Context,
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
    layers: Annotated[
        bool,
        typer.Option(
            "--layers",
            help="Also record each layer's output on the probes (a digest, its scale and 32 sampled values per "
            "layer; Keras models), so that verify can name the first layer that departs.",
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
    variants: Annotated[
        bool,
        typer.Option(
            "--variants",
            help="Also predict the probes in child processes under the settings a fleet may have (oneDNN on/off, "
            "oneDNN capped at each lower instruction set, 1 thread, one probe per call, the JAX backend) and record "
            "each variant's digest, error and bit-identical class; verify then names the variant a host matches.",
        ),
    ] = False,
    variant_kind: Annotated[
        list[str] | None,
        typer.Option(
            "--variant-kind",
            metavar="KIND",
            help="Only these kinds of variant (repeatable; implies --variants): onednn, isa, isa_onednn, threads, "
            "batch, jax.",
        ),
    ] = None,
    keep_variant_outputs: Annotated[
        bool, typer.Option("--keep-variant-outputs", help="With --variants: keep their outputs (variants.npz).")
    ] = False,
    tolerance_from_variants: Annotated[
        bool,
        typer.Option(
            "--tolerance-from-variants",
            help="Set the record's tolerance to --margin x the largest drift of any variant (implies --variants).",
        ),
    ] = False,
    json_out: JsonOpt = False,
    output: RecordOutputOpt = None,
) -> None:
    """Record the model's identity, probe inputs, reference predictions and this host's fingerprint beside it."""
    outs = outputs(output, json=json_out)

    def body() -> None:
        if probes is not None:
            refuse_given(ctx, ("num_probes", "probe_seed", "input_shape"),
                         "{flag} applies to generated probes; --probes gives them: drop one of the two")  # fmt: skip
        if tolerance_from is None and not tolerance_from_variants:
            refuse_given(ctx, ("margin",), "--margin is the factor on a measured drift: add --tolerance-from "
                         "REPORT.json or --tolerance-from-variants, or drop --margin")  # fmt: skip
        outs.check("save")
        do_save: Callable[..., Any]
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
            variants=variant_kind or variants,
            keep_variant_outputs=keep_variant_outputs,
            tolerance_from_variants=tolerance_from_variants,
            progress=lambda message: sys.stderr.write(f"envprint: {message}\n"),
            layers=layers,
        )
        for warning in result.warnings:
            sys.stderr.write(f"envprint: WARNING: {warning}\n")
        outs.write(result.summary())

    _guard(body, outs)


def _refuse_mixed_modes(ctx: typer.Context, *, endpoint: bool, preflight: bool, investigate: bool) -> None:
    """verify runs one of three ways (here, preflight, an endpoint): refuse the options of another."""
    if not endpoint:
        refuse_endpoint_options(ctx)
    if not investigate:
        refuse_given(ctx, ("investigate_timeout",),
                     "{flag} applies to --investigate: add --investigate, or drop {flag}")  # fmt: skip
    if endpoint and preflight:
        raise UsageError("--preflight compares this host with the record; an endpoint's host is not here: drop one")
    if endpoint and investigate:
        raise UsageError("--investigate restores settings of this host; an endpoint's host is not here")
    if preflight and investigate:
        raise UsageError("--investigate re-runs a verify's probes; --preflight runs none: drop one of them")


def verify(  # size: long only by its option declarations; the body is parse, one library call, emit
    ctx: typer.Context,
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
    locate: Annotated[
        bool,
        typer.Option(
            "--locate",
            help="Recompute each layer's output (a record saved with --layers) and name the first layer that "
            "departs, and how the error grows; done without asking when such a record's outputs differ.",
        ),
    ] = False,
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
    endpoint: EndpointOpt = None,
    protocol: ProtocolOpt = None,
    model_name: ModelNameOpt = None,
    batch_size: BatchSizeOpt = None,
    wait: WaitOpt = 0.0,
    timeout: TimeoutOpt = 30.0,
    cacert: CacertOpt = None,
    header_env: HeaderEnvOpt = None,
    json_out: JsonOpt = False,
    html: HtmlOpt = None,
    output: OutputOpt = None,
) -> None:
    """Recompute the probes on this host and compare them with the saved reference.

    With --endpoint URL, send the probes to a running model server instead (MODEL, or --fingerprint,
    names the record; the model is not loaded here). Exit 6: the endpoint could not be verified.

    MODEL may also be an MLflow URI, runs:/<run_id>/<path> or models:/<name>/<version>: the model
    and its run's envprint/ record are downloaded (pip install 'envprint[mlflow]').
    Exit 0: identical or within tolerance; 1: mismatch (the report says why); 2 or more:
    could not verify (the exit codes are below). Writes nothing but the outputs asked for (--output).
    """
    outs = outputs(output, json=json_out, html=html, junit_xml=junit_xml, model=model)

    def body() -> int:
        _refuse_mixed_modes(ctx, endpoint=endpoint is not None, preflight=preflight, investigate=investigate)
        # every path and extra, before any work; JUnit's properties: this host, TensorFlow's facts if imported
        outs.check("preflight" if preflight else "report", host=this_host)
        quiet_tensorflow()
        if preflight:
            from envprint.check.verifier import preflight as do_preflight

            result = do_preflight(model, fingerprint=fingerprint, require_signature=require_signature,
                                  signing_key=env_signing_key(required=False))  # fmt: skip
            outs.write(result)
            return int(ExitCode.DIFFERENT if result.expects_change else ExitCode.OK)
        if endpoint is not None:
            from envprint.check.endpoint.verifier import verify_endpoint

            report = verify_endpoint(
                endpoint, model, fingerprint=fingerprint, protocol=protocol, model_name=model_name,
                signature=signature, batch_size=batch_size, wait=wait, timeout=timeout, cacert=cacert,
                header_env=parse_header_env(header_env or []), tolerance=parse_tolerance(rtol, atol, exact),
                signing_key=env_signing_key(required=False), require_signature=require_signature,
            )  # fmt: skip
            outs.write(report)
            return int(ExitCode.OK if report.passed else ExitCode.DIFFERENT)
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
            locate=locate,
            progress=_say,
        )
        # an error that stops it reaches every output through _guard: the CI panel shows "could not verify"
        report = verify_with(model, options)
        outs.write(report)
        return int(ExitCode.OK if report.passed else ExitCode.DIFFERENT)

    raise typer.Exit(_guard(body, outs))


def report_command(
    report_json: Annotated[
        Path, typer.Argument(metavar="REPORT", help="A report saved with: envprint verify MODEL --json > REPORT.json")
    ],
    json_out: JsonOpt = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the report as one self-contained HTML page here.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Draw a saved verify report (or verify's error document) again: an HTML page with plots
    (pip install 'envprint[html]'), Markdown, JUnit XML, JSON, or text."""
    outs = outputs(output, json=json_out, html=html, text_unless_files=True)
    # A report that cannot be read leaves no page behind, but JSON asked on stdout gets the error document.
    json_stdout = json_out or any(spec.strip().lower() in ("json", "json=-") for spec in output or [])

    def body() -> None:
        from envprint.record.store import read_report_or_error

        outs.check("report", host=this_host)  # every output that draws a report draws verify's error document too
        result = read_report_or_error(report_json)
        outs.context.kind = "error" if result.verdict == "error" else "report"
        outs.write(result)

    _guard(body, json_stdout)
