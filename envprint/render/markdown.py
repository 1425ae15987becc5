"""Markdown: a verify report (and the many-model summaries) for a pull-request comment or a CI job
summary (GitHub's ``$GITHUB_STEP_SUMMARY``). The same words as the text report, in tables.

``envprint verify MODEL --output markdown=$GITHUB_STEP_SUMMARY``
"""

from __future__ import annotations

import html
from typing import Any

from envprint.models import (
    AggregateReport,
    ErrorDocument,
    FingerprintDiff,
    FleetReport,
    OutputComparison,
    Report,
    SweepSummary,
)
from envprint.render.endpoint import fact_rows
from envprint.render.text import (
    VERDICT_WORDS,
    describe_differences,
    file_names,
    first_problem,
    fmt,
    plural,
    summarize,
    weights_words,
)

_ICON = {"identical": "✅", "within_tolerance": "✅", "mismatch": "❌", "error": "⚠️"}


def _cell(value: Any) -> str:
    """A table cell: pipes escaped, one line."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _num(value: float | None, spec: str = ".2e") -> str:
    return "-" if value is None else format(value, spec)


def _tolerance(c: OutputComparison) -> str:
    if c.atol is None or c.rtol is None:
        return "-"
    return "exact" if c.atol == 0 and c.rtol == 0 else f"atol={c.atol:g} rtol={c.rtol:g}"


def _shape(shape: list[int] | None, dtype: str | None) -> str:
    return "-" if shape is None and dtype is None else f"{tuple(shape or ())} {dtype or ''}".strip()


def _outputs_table(report: Report) -> list[str]:
    rows = []
    for c in report.outputs:
        status = VERDICT_WORDS.get(c.status, c.status).removeprefix("PASSED (").removesuffix(")")
        rows.append(
            [
                f"`{c.name}`",
                f"{_ICON[c.status]} {status}",
                _shape(c.expected_shape, c.expected_dtype),
                _shape(c.obtained_shape, c.obtained_dtype),
                "-" if c.problem else f"{c.n_differ} / {c.size}",
                "-" if c.problem else str(c.n_out_of_tolerance),
                _num(c.max_abs),
                _num(c.max_rel),
                fmt(c.max_ulp) if c.max_ulp is not None else "-" if c.max_steps is None else f"{c.max_steps} steps",
                _tolerance(c),
            ]
        )
    header = ["output", "status", "expected", "obtained", "differ", "out of tolerance"]
    return _table([*header, "max abs", "max rel", "max ULP", "tolerance"], rows)


def report_markdown(report: Report) -> str:
    icon = _ICON[report.verdict]
    lines = [f"### {icon} envprint verify: {VERDICT_WORDS[report.verdict]}", ""]
    if not report.passed:
        lines += [f"**{first_problem(report)}**", ""]
    ident = report.identity
    facts = [*fact_rows(report, code=True), ["fingerprint", f"`{report.fingerprint}`"]]
    facts += [["weights", weights_words(ident)], ["record signature", report.record_signature]]
    for label, files in (
        ("files changed", ident.files_changed),
        ("files missing", ident.files_missing),
        ("files added", ident.files_added),
        ("record files edited", ident.sidecar_files_changed),
    ):
        if files:
            facts.append([label, file_names(files, ident.model_name)])
    if ident.differences:
        facts.append(["differs", describe_differences(ident.differences)])
    lines += _table(["identity", ""], facts)
    if report.outputs:
        lines += ["#### Outputs (expected: saved reference, obtained: this host)", ""]
        lines += _outputs_table(report)
        failing = [c for c in report.outputs if c.status == "mismatch" and c.worst]
        for c in failing:
            rows = [[w.index, w.obtained, w.expected, w.difference] for w in c.worst]
            lines += [f"<details><summary>{html.escape(summarize(c))}</summary>", ""]
            lines += [*_table(["Index", "Obtained", "Expected", "Difference"], rows), "</details>", ""]
    else:
        lines += ["No outputs compared: the probes were not run.", ""]
    env = report.environment
    numerics = [e for e in env.entries if e.numerics]
    if env.identical:
        lines += ["Environment: same as at save.", ""]
    else:
        lines += [
            f"Environment: {plural(len(env.entries), 'difference')} from the saved host, "
            f"{len(numerics)} can change numerics.",
            "",
        ]
        if numerics:
            rows = [[f"`{e.path}`", fmt(e.a, e.path), fmt(e.b, e.path), e.topic] for e in numerics]
            lines += _table(["field", "saved", "now", "topic"], rows)
    if report.explanations:
        lines += ["#### Likely causes, most likely first", ""]
        causes: list[list[Any]] = [
            [i, f"**{x.cause}**", f"{x.score:.2f}", x.reasoning, x.remedy] for i, x in enumerate(report.explanations, 1)
        ]
        lines += _table(["#", "cause", "score", "reasoning", "remedy"], causes)
    if report.layers is not None:
        from envprint.render import layers

        lines += [f"#### {layers.headline(report.layers)}", ""]
        lines += _table(layers.HEADER, layers.rows(report.layers)) if report.layers.first is not None else []
    if report.investigation:
        lines += ["#### Investigation (child processes, one saved setting restored at a time)", ""]
        rows = [[r.status, r.cause, r.setting, r.detail] for r in report.investigation]
        lines += _table(["status", "cause", "setting", "detail"], rows)
    return "\n".join(lines).rstrip() + "\n"


def error_markdown(document: ErrorDocument, model: str | None = None) -> str:
    err = document.error
    lines = [f"### {_ICON['error']} envprint: could not verify" + (f" `{model}`" if model else ""), ""]
    return "\n".join([*lines, f"**{err.message}**", "", f"Exit code {err.exit_code} ({err.kind})."]) + "\n"


def diff_markdown(diff: FingerprintDiff, preflight: bool) -> str:
    numerics = [e for e in diff.entries if e.numerics]
    title = "envprint verify --preflight" if preflight else "envprint diff"
    if diff.identical:
        return f"### ✅ {title}: no differences\n"
    lines = [f"### {title}: {plural(len(diff.entries), 'difference')}, {len(numerics)} can change numerics", ""]
    if numerics:
        rows = [[f"`{e.path}`", fmt(e.a, e.path), fmt(e.b, e.path), e.topic] for e in numerics]
        lines += _table(["field", "A", "B", "topic"], rows)
    if diff.expectations:
        rows2: list[list[Any]] = [
            [i, f"**{x.cause}**", f"{x.score:.2f}", x.predicts or "-", x.remedy]
            for i, x in enumerate(diff.expectations, 1)
        ]
        lines += [
            "#### What to expect, most likely first",
            "",
            *_table(["#", "cause", "likelihood", "change", "remedy"], rows2),
        ]
    return "\n".join(lines).rstrip() + "\n"


def sweep_markdown(summary: SweepSummary) -> str:
    v = summary.by_verdict
    icon = _ICON["mismatch" if v.get("mismatch") else "error" if v.get("error") else "identical"]
    lines = [
        f"### {icon} envprint sweep: {summary.done} of {plural(summary.total, 'model')}",
        "",
        f"{v['identical']} identical, {v['within_tolerance']} within tolerance, {v['mismatch']} mismatch, "
        f"{v['error']} could not verify.",
        "",
    ]
    shown = [i for i in summary.models if i.verdict != "identical"]
    if shown:
        rows = [
            [
                f"{_ICON[i.verdict]} {i.verdict}",
                f"`{i.model}`",
                i.leading_cause or (i.error or "-"),
                "-" if i.max_ulp is None else fmt(i.max_ulp),
                _num(i.max_rel, ".1e"),
                i.exit_code,
            ]
            for i in shown
        ]
        lines += _table(["verdict", "model", "leading cause", "max ULP", "max rel", "exit"], rows)
    if summary.not_recorded:
        names = ", ".join(f"`{m}`" for m in summary.not_recorded)
        lines += [f"Without a record, not verified: {names} (`envprint save MODEL` records one).", ""]
    return "\n".join(lines).rstrip() + "\n"


def fleet_markdown(report: FleetReport, title: str = "envprint fleet") -> str:
    lines = [f"### {title}: `{report.model}` on {plural(len(report.hosts), 'host')}", ""]
    rows = [[c.name, c.verdict, len(c.hosts), ", ".join(c.hosts)] for c in report.classes]
    lines += _table(["class", "verdict", "hosts", "which"], rows)
    bad = [h for h in report.hosts if h.status != "verified"]
    if bad:
        lines += _table(
            ["host", "status", "exit", "error"], [[h.host, h.status, h.exit_code, h.error or "-"] for h in bad]
        )
    return "\n".join(lines).rstrip() + "\n"


def aggregate_markdown(report: AggregateReport) -> str:
    parts = [f"## envprint aggregate: {plural(report.sources, 'report')}, {plural(len(report.models), 'model')}\n"]
    return "\n".join(parts + [fleet_markdown(m, title="Model") for m in report.models])


def render(result: Any, context: Any) -> str:
    """The "markdown" entry of the outputs table."""
    if isinstance(result, ErrorDocument):
        return error_markdown(result, context.model)
    if isinstance(result, Report):
        return report_markdown(result)
    if isinstance(result, FingerprintDiff):
        return diff_markdown(result, preflight=context.kind == "preflight")
    if isinstance(result, SweepSummary):
        return sweep_markdown(result)
    if isinstance(result, FleetReport):
        return fleet_markdown(result)
    if isinstance(result, AggregateReport):
        return aggregate_markdown(result)
    raise TypeError(f"no Markdown for {type(result).__name__}")
