"""Models -> text for people. All user-facing wording lives here.

Owns: the readable tables of ``show``, ``diff`` and ``verify``, and the plain-text ``Writer`` and
``Table`` they are written with. JSON for machines is ``store.canonical_json``.
Must not import TensorFlow, nor rich: ``diff`` of two files must start fast, and rich (import,
console set-up, layout) cost ~50 ms of its ~260 ms for tables that need only aligned columns.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from .diff import flatten
from .models import NONFINITE, DiffEntry, Explanation, Fingerprint, FingerprintDiff, OutputComparison, Report

SECTION_TITLES = {
    "python": "Python", "platform": "Platform", "cpu": "CPU", "packages": "Packages", "tensorflow": "TensorFlow",
    "devices": "Devices", "threads": "Threads", "seeds": "Seeds", "env": "Environment variables",
}  # fmt: skip
STATUS_MARK = {"changed": "~", "only_in_a": "-", "only_in_b": "+"}
STATUS_WORDS = {"changed": "changed", "only_in_a": "only in A", "only_in_b": "only in B"}


def fmt(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict) and not value:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)  # pragma: no cover


class Table:
    """A title line, then left-aligned columns two spaces apart, with an optional header row.

    Never wraps or truncates: a long value widens its column, since a path or a version cut in
    two is worse than a wide line in a pipe or a CI log. A cell with newlines spans several lines.
    """

    def __init__(self, title: str, *header: str) -> None:
        self.title = title
        self.header = header
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def lines(self) -> list[str]:
        rows = [self.header, *self.rows] if self.header else self.rows
        ncols = max(map(len, rows), default=0)
        # A cell with newlines makes its whole row taller: one physical line per line of the cell.
        physical: list[list[str]] = []
        for row in rows:
            cells = [cell.split("\n") for cell in row] + [[""]] * (ncols - len(row))
            for i in range(max(map(len, cells), default=1)):
                physical.append([parts[i] if i < len(parts) else "" for parts in cells])
        widths = [max(len(line[i]) for line in physical) for i in range(ncols)]
        body = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in physical]
        return [self.title, *body]


class Writer:
    """Lines of plain text to a stream: all the renderers below need of a terminal.

    The stream is looked up at each write when none is given, so output follows ``sys.stdout``
    when a caller (Typer's CliRunner, pytest's capsys) swaps it after the writer was made.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def line(self, text: str = "") -> None:
        (self._stream or sys.stdout).write(text + "\n")

    def table(self, table: Table) -> None:
        for text in table.lines():
            self.line(text)


def render_fingerprint(fp: Fingerprint, out: Writer, show_all: bool = False) -> None:
    data = fp.model_dump(mode="json")
    out.line(
        f"envprint fingerprint (schema {fp.schema_version}, envprint {fp.envprint_version}, "
        f"captured {fp.created_at.isoformat()})"
    )
    for section, title in SECTION_TITLES.items():
        value = data[section]
        table = Table(title)
        if value is None:
            table.add_row("(absent)", fp.unavailable.get(section, ""))
            out.table(table)
            continue
        installed = value.pop("installed", None) if section == "packages" else None
        reasons = value.pop("unavailable", {}) if isinstance(value, dict) else {}
        for path, leaf in flatten(value):
            if path.endswith(".unavailable") or ".unavailable." in path:
                continue
            shown = _size(leaf) if path.endswith("memory_bytes") and isinstance(leaf, int) else fmt(leaf)
            if leaf is None and path in reasons:
                shown = f"(absent: {reasons[path]})"
            table.add_row(path, shown)
        if not table.rows and installed is None:
            table.add_row("(none)", "")
        if installed is not None:
            if show_all:
                for name, version in installed.items():
                    table.add_row(f"installed.{name}", version)
            else:
                table.add_row("installed", f"{len(installed)} distributions; --all to list")
        out.line()
        out.table(table)


def _folded(entries: Iterable[DiffEntry]) -> str:
    counts = {"changed": 0, "only_in_a": 0, "only_in_b": 0}
    for e in entries:
        counts[e.status] += 1
    total = sum(counts.values())
    parts = [f"{n} {STATUS_WORDS[s]}" for s, n in counts.items() if n]
    return f"{total} other package{'s' if total != 1 else ''} changed ({', '.join(parts)}); --all to list"


def render_diff(diff: FingerprintDiff, out: Writer, show_all: bool = False) -> None:
    out.line(f"A: {diff.a}")
    out.line(f"B: {diff.b}")
    if diff.identical:
        out.line("No differences.")
        return
    numerics = sum(e.numerics for e in diff.entries)
    out.line(
        f"{len(diff.entries)} difference{'s' if len(diff.entries) != 1 else ''}, "
        f"{numerics} of them can change numerics."
    )
    folded = [e for e in diff.entries if e.path.startswith("packages.installed.") and not show_all]
    sections: dict[str, list[DiffEntry]] = {}
    for e in diff.entries:
        if e not in folded:
            sections.setdefault(e.section, []).append(e)
    order = {"changed": 0, "only_in_a": 1, "only_in_b": 2}
    for section, entries in sections.items():
        table = Table(SECTION_TITLES.get(section, section), "", "field", "A", "B", "topic")
        for e in sorted(entries, key=lambda e: (order[e.status], not e.numerics)):
            field = e.path[len(section) + 1 :] if e.path.startswith(section + ".") else e.path
            table.add_row(STATUS_MARK[e.status], field, fmt(e.a), fmt(e.b), e.topic if e.numerics else "")
        out.line()
        out.table(table)
    if folded:
        out.line()
        out.line(_folded(folded))
    out.line()
    out.line("~ changed   - only in A   + only in B")
    render_expectations(diff.expectations, out)


def render_expectations(expectations: list[Explanation], out: Writer) -> None:
    if not expectations:
        return
    out.line()
    out.line("What to expect on B, most likely first:")
    for i, x in enumerate(expectations, 1):
        out.line(f"  {i}. {x.cause} (likelihood {x.score:.2f}): {x.reasoning}")
        out.line(f"     remedy: {x.remedy}")


VERDICT_WORDS = {
    "identical": "PASSED (bit-identical)",
    "within_tolerance": "PASSED (within tolerance)",
    "mismatch": "MISMATCH",
}


def render_report(report: Report, out: Writer) -> None:
    """The verify report: verdict first, then identity, outputs, environment, explanations."""
    out.line(f"envprint verify: {VERDICT_WORDS[report.verdict]}")
    out.line(f"  model:       {report.model}")
    out.line(f"  fingerprint: {report.fingerprint}")
    ident = report.identity
    weights = {
        "same": "same as saved",
        "changed": "CHANGED: this is not the model that was saved",
        "unknown": "not comparable",
    }[ident.weights]
    out.line(f"  weights:     {weights}")
    for label, files in (
        ("changed", ident.files_changed),
        ("missing", ident.files_missing),
        ("added", ident.files_added),
        ("edited in the record", ident.sidecar_files_changed),
    ):
        if files:
            out.line(f"  files {label}: {', '.join(files)}")
    out.line()
    for o in report.outputs:
        out.line(summarize(o))
        if o.worst:
            out.line(worst_table(o))
    other = [n for n in report.notes if not n.startswith("output ")]
    if other:
        out.line()
        for note in other:
            out.line(f"note: {note}")
    env = report.environment
    out.line()
    if env.identical:
        out.line("Environment: same as at save.")
    elif report.verdict == "identical":
        numerics = sum(e.numerics for e in env.entries)
        out.line(
            f"Environment: {len(env.entries)} differences from the saved host ({numerics} can change "
            "numerics) did not change the probes; envprint diff FINGERPRINT --current to list them"
        )
    else:
        numerics = [e for e in env.entries if e.numerics]
        out.line(
            f"Environment: {len(env.entries)} differences from the saved host, {len(numerics)} can change numerics:"
        )
        for e in numerics[:10]:
            out.line(f"  {STATUS_MARK[e.status]} {e.path}: {fmt(e.a)} -> {fmt(e.b)}  [{e.topic}]")
        if len(numerics) > 10:
            out.line(f"  ... {len(numerics) - 10} more; envprint diff FINGERPRINT --current to list")
    if report.investigation:
        out.line()
        out.line("Investigation (child processes, one saved setting restored at a time):")
        for r in report.investigation:
            out.line(f"  {r.status:<14} {r.cause:<20} {r.setting}: {r.detail}")
            if r.remedy and r.status in ("confirmed", "untestable"):
                out.line(f"  {'':<14} remedy: {r.remedy}")
    if report.explanations:
        out.line()
        out.line("Likely causes, most likely first:")
        for i, x in enumerate(report.explanations, 1):
            out.line(f"  {i}. {x.cause} (score {x.score:.2f}): {x.reasoning}")
            out.line(f"     remedy: {x.remedy}")


def _label(key: str) -> str:
    return key.replace("nan", "NaN").replace("inf", "Inf").replace("_", " ")


def _pct(n: int, size: int) -> str:
    p = 100.0 * n / size if size else 0.0
    return f"{p:.1f}%" if p == 0 or p >= 0.1 else f"{p:.1g}%"


def summarize(c: OutputComparison) -> str:
    """One line, pytest-regressions style: counts | non-finite changes | statistics | tolerance."""
    head = f'output "{c.name}": '
    if c.problem:
        return head + c.problem
    if c.status == "identical":
        return head + f"bit-identical ({c.size} elements)"
    verdict = "all within tolerance" if c.status == "within_tolerance" else f"{c.n_out_of_tolerance} out of tolerance"
    parts = [f"{c.n_differ} / {c.size} differ ({_pct(c.n_differ, c.size)}), {verdict}"]
    nonfinite = [f"{_label(key)} {getattr(c, key)}" for key in NONFINITE if getattr(c, key)]
    if nonfinite:
        parts.append(", ".join(nonfinite))
    stats = [f"max abs {c.max_abs:.1e}"] if c.max_abs is not None else []
    stats += [f"max rel {c.max_rel:.1e}"] if c.max_rel is not None else []
    stats += [f"max {c.max_ulp} ULP"] if c.max_ulp is not None else []
    stats += [f"top-1 agreement {c.top1_agreement:.1%}"] if c.top1_agreement is not None else []
    if stats:
        parts.append(", ".join(stats))
    parts.append("exact" if c.atol == 0 and c.rtol == 0 else f"atol={c.atol:g} rtol={c.rtol:g}")
    return head + " | ".join(parts)


def worst_table(c: OutputComparison) -> str:
    """The worst elements as an aligned ``Index  Obtained  Expected  Difference`` table ('' if none)."""
    if not c.worst:
        return ""
    rows = [("Index", "Obtained", "Expected", "Difference")]
    rows += [(str(w.index), w.obtained, w.expected, w.difference) for w in c.worst]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
