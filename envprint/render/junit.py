"""JUnit XML for CI test panels: one testsuite per verified model, one testcase per check.

Owns: turning verify Reports into the JUnit XML that CI panels (GitHub Actions reporters,
GitLab, Jenkins) read. Each report is a ``<testsuite>`` with the testcases ``identity`` (weights
and the record's own files), ``output NAME`` (one per output) and ``self-check`` (outputs that
change between identical calls), a ``<failure>`` carrying the report's text where a check
failed, and the environment as ``<properties>``: this host's key facts when a fingerprint of it
is given, then each numerics-relevant difference from the saved host. A model that could not be
verified at all is one testcase with an ``<error>`` (``error_suite``).

Stdlib only (xml.etree), no TensorFlow: the sweep and fleet commands reuse ``junit_xml`` for many
reports at once.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from envprint.models import ErrorDocument, Fingerprint, Report, SweepItem, SweepSummary
from envprint.record.atomic import write_output
from envprint.render.endpoint import fact_rows

# This host's facts worth seeing beside a red test in a CI panel (dotted paths in the fingerprint).
HOST_FACTS = (
    "python.version",
    "platform.system",
    "platform.machine",
    "cpu.model",
    "tensorflow.version",
    "tensorflow.keras_flavor",
    "tensorflow.keras_version",
    "tensorflow.build.is_cuda_build",
    "tensorflow.onednn.enabled",
    "tensorflow.dtype_policy",
    "packages.key.numpy",
    "devices.driver_version",
)


@dataclass
class Case:
    """One testcase: a check's name, and when it failed, a one-line message and the text to show."""

    name: str
    failure: str | None = None
    text: str = ""
    error: str | None = None


@dataclass
class Suite:
    """One testsuite: what was verified, its checks, the environment as properties, the full report."""

    name: str
    model: str
    cases: list[Case]
    properties: list[tuple[str, str]] = field(default_factory=list)
    system_out: str = ""
    seconds: float | None = None  # wall time of the verification, when it was measured


def _identity_case(report: Report) -> Case:
    from envprint.render.text import first_problem

    ident = report.identity
    failed = ident.weights == "changed" or bool(ident.sidecar_files_changed)
    # first_problem names the model's identity first whenever it failed.
    return Case("identity", failure=first_problem(report) if failed else None)


def _output_case(report: Report, index: int) -> Case:
    from envprint.render.text import summarize, worst_table

    o = report.outputs[index]
    if o.status != "mismatch":
        return Case(f"output {o.name}")
    table = worst_table(o).lines() if o.worst else []
    return Case(f"output {o.name}", failure=summarize(o), text="\n".join([summarize(o), *table]))


def _self_check_case(report: Report) -> Case:
    if not report.random_at_inference:
        return Case("self-check")
    outputs = ", ".join(report.random_at_inference)
    return Case("self-check", failure=f"outputs changed between two identical predictions on this host: {outputs}")


def host_properties(host: Fingerprint) -> list[tuple[str, str]]:
    """``host.<path>`` = value for each of HOST_FACTS that was read (absent facts are left out)."""
    from envprint.causes.diff import flatten

    values = dict(flatten(host.model_dump(mode="json")))
    return [(f"host.{path}", str(values[path])) for path in HOST_FACTS if values.get(path) is not None]


def report_suite(report: Report, host: Fingerprint | None = None, seconds: float | None = None) -> Suite:
    """The testsuite of one verify report."""
    cases = [
        _identity_case(report),
        *(_output_case(report, i) for i in range(len(report.outputs))),
        _self_check_case(report),
    ]
    text = report.to_text()
    for case in cases:
        if case.failure and not case.text:
            case.text = text
    props = [("verdict", report.verdict), *((k, v) for k, v in fact_rows(report)), ("fingerprint", report.fingerprint)]
    props += host_properties(host) if host is not None else []
    props += [(f"changed.{e.path}", f"{e.a} -> {e.b}") for e in report.environment.entries if e.numerics]
    return Suite(f"envprint verify {report.model}", report.model, cases, props, system_out=text, seconds=seconds)


def error_suite(model: str, message: str, host: Fingerprint | None = None, seconds: float | None = None) -> Suite:
    """The testsuite of a model that could not be verified (an EnvprintError): one testcase in error."""
    props = [("model", model)] + (host_properties(host) if host is not None else [])
    cases = [Case("verify", error=message, text=message)]
    return Suite(f"envprint verify {model}", model, cases, props, seconds=seconds)


def item_suite(item: SweepItem, report: Report | None) -> Suite:
    """The testsuite of one model of a sweep, timed with the seconds its worker measured."""
    if report is None:
        return error_suite(item.model, item.error or "could not verify", seconds=item.seconds)
    return report_suite(report, seconds=item.seconds)


def _seconds(value: float | None) -> str:
    return "0" if value is None else f"{value:.3f}"


def _suite_element(suite: Suite, timestamp: str, hostname: str) -> ET.Element:
    failures = sum(c.failure is not None for c in suite.cases)
    errors = sum(c.error is not None for c in suite.cases)
    element = ET.Element(
        "testsuite",
        name=suite.name,
        tests=str(len(suite.cases)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=_seconds(suite.seconds),
        timestamp=timestamp,
        hostname=hostname,
    )
    if suite.properties:
        props = ET.SubElement(element, "properties")
        for name, value in suite.properties:
            ET.SubElement(props, "property", name=name, value=value)
    # The checks of one verify are not timed apart: the whole verification is the suite's time,
    # carried by its first testcase so that panels summing testcases show it too.
    for i, case in enumerate(suite.cases):
        seconds = _seconds(suite.seconds if i == 0 else None)
        tc = ET.SubElement(element, "testcase", classname=suite.model, name=case.name, time=seconds)
        if case.error is not None:
            ET.SubElement(tc, "error", message=case.error, type="EnvprintError").text = case.text
        elif case.failure is not None:
            ET.SubElement(tc, "failure", message=case.failure, type="mismatch").text = case.text
    if suite.system_out:
        ET.SubElement(element, "system-out").text = suite.system_out
    return element


def junit_xml(reports: Sequence[Report | Suite], host: Fingerprint | None = None, *, name: str = "envprint") -> str:
    """One JUnit XML document: a ``<testsuites>`` holding one ``<testsuite>`` per report (or Suite).

    ``host`` is the fingerprint of the host the reports were made on (``envprint.capture()``);
    its key facts become properties of every suite. Suites from ``error_suite`` mix in for models
    that could not be verified.
    """
    timestamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    hostname = socket.gethostname()
    suites = [r if isinstance(r, Suite) else report_suite(r, host) for r in reports]
    root = ET.Element(
        "testsuites",
        name=name,
        tests=str(sum(len(s.cases) for s in suites)),
        failures=str(sum(c.failure is not None for s in suites for c in s.cases)),
        errors=str(sum(c.error is not None for s in suites for c in s.cases)),
        time=_seconds(
            sum(s.seconds for s in suites if s.seconds is not None) if any(s.seconds for s in suites) else None
        ),
    )
    for suite in suites:
        root.append(_suite_element(suite, timestamp, hostname))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit_xml(
    path: str | Path, reports: Sequence[Report | Suite], host: Fingerprint | None = None, *, name: str = "envprint"
) -> None:
    """``junit_xml`` written atomically to ``path`` (a CI step reading it sees the old file or the new);
    into a device or a pipe as it is, and through a symbolic link to its target."""
    write_output(Path(path), junit_xml(reports, host, name=name))


def render(result: Report | ErrorDocument | SweepSummary, context: Any) -> str:
    """The "junit" entry of the outputs table: a verify report, the error that stopped verify, or a sweep
    (one testsuite per model, from the reports the sweep collected in ``context.items``)."""
    if isinstance(result, SweepSummary):
        return junit_xml([item_suite(item, report) for item, report in context.items], name="envprint sweep")
    # This host's facts as properties: TensorFlow's when verify imported it; never imported for this.
    host = context.host() if context.host is not None else None
    if isinstance(result, ErrorDocument):
        model = context.model or "model"
        return junit_xml([error_suite(model, result.error.message, host)], host)
    return junit_xml([result], host)
