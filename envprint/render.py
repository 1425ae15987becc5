"""Models -> text for people. All user-facing wording lives here.

Owns: the readable tables of ``show`` and ``diff``. JSON for machines is ``store.canonical_json``.
Must not import TensorFlow; imports rich (Typer's own dependency) only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from .diff import flatten
from .models import DiffEntry, Explanation, Fingerprint, FingerprintDiff, Report

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


def _table(title: str, *columns: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        show_header=bool(columns),
        box=None,
        pad_edge=False,
        padding=(0, 2, 0, 0),
        min_width=len(title),  # never wrap the title
    )
    for col in columns or ("field", "value"):
        table.add_column(col, overflow="fold")
    return table


def render_fingerprint(fp: Fingerprint, console: Console, show_all: bool = False) -> None:
    data = fp.model_dump(mode="json")
    console.print(
        f"envprint fingerprint (schema {fp.schema_version}, envprint {fp.envprint_version}, "
        f"captured {fp.created_at.isoformat()})"
    )
    for section, title in SECTION_TITLES.items():
        value = data[section]
        table = _table(title)
        if value is None:
            table.add_row("(absent)", fp.unavailable.get(section, ""))
            console.print(table)
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
        if not table.row_count and installed is None:
            table.add_row("(none)", "")
        if installed is not None:
            if show_all:
                for name, version in installed.items():
                    table.add_row(f"installed.{name}", version)
            else:
                table.add_row("installed", f"{len(installed)} distributions; --all to list")
        console.print()
        console.print(table)


def _folded(entries: Iterable[DiffEntry]) -> str:
    counts = {"changed": 0, "only_in_a": 0, "only_in_b": 0}
    for e in entries:
        counts[e.status] += 1
    total = sum(counts.values())
    parts = [f"{n} {STATUS_WORDS[s]}" for s, n in counts.items() if n]
    return f"{total} other package{'s' if total != 1 else ''} changed ({', '.join(parts)}); --all to list"


def render_diff(diff: FingerprintDiff, console: Console, show_all: bool = False) -> None:
    console.print(f"A: {diff.a}")
    console.print(f"B: {diff.b}")
    if diff.identical:
        console.print("No differences.")
        return
    numerics = sum(e.numerics for e in diff.entries)
    console.print(
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
        table = _table(SECTION_TITLES.get(section, section), "", "field", "A", "B", "topic")
        for e in sorted(entries, key=lambda e: (order[e.status], not e.numerics)):
            field = e.path[len(section) + 1 :] if e.path.startswith(section + ".") else e.path
            table.add_row(STATUS_MARK[e.status], field, fmt(e.a), fmt(e.b), e.topic if e.numerics else "")
        console.print()
        console.print(table)
    if folded:
        console.print()
        console.print(_folded(folded))
    console.print()
    console.print("~ changed   - only in A   + only in B")
    render_expectations(diff.expectations, console)


def render_expectations(expectations: list[Explanation], console: Console) -> None:
    if not expectations:
        return
    console.print()
    console.print("What to expect on B, most likely first:")
    for i, x in enumerate(expectations, 1):
        console.print(f"  {i}. {x.cause} (likelihood {x.score:.2f}): {x.reasoning}")
        console.print(f"     remedy: {x.remedy}")


VERDICT_WORDS = {
    "identical": "PASSED (bit-identical)",
    "within_tolerance": "PASSED (within tolerance)",
    "mismatch": "MISMATCH",
}


def render_report(report: Report, console: Console) -> None:
    """The verify report: verdict first, then identity, outputs, environment, explanations."""
    from .compare import summarize, worst_table

    console.print(f"envprint verify: {VERDICT_WORDS[report.verdict]}")
    console.print(f"  model:       {report.model}")
    console.print(f"  fingerprint: {report.fingerprint}")
    ident = report.identity
    weights = {
        "same": "same as saved",
        "changed": "CHANGED: this is not the model that was saved",
        "unknown": "not comparable",
    }[ident.weights]
    console.print(f"  weights:     {weights}")
    for label, files in (
        ("changed", ident.files_changed),
        ("missing", ident.files_missing),
        ("added", ident.files_added),
        ("edited in the record", ident.sidecar_files_changed),
    ):
        if files:
            console.print(f"  files {label}: {', '.join(files)}")
    console.print()
    for o in report.outputs:
        console.print(summarize(o))
        if o.worst:
            console.print(worst_table(o))
    other = [n for n in report.notes if not n.startswith("output ")]
    if other:
        console.print()
        for note in other:
            console.print(f"note: {note}")
    env = report.environment
    console.print()
    if env.identical:
        console.print("Environment: same as at save.")
    elif report.verdict == "identical":
        numerics = sum(e.numerics for e in env.entries)
        console.print(f"Environment: {len(env.entries)} differences from the saved host ({numerics} can change "
                      "numerics) did not change the probes; envprint diff FINGERPRINT --current to list them")
    else:
        numerics = [e for e in env.entries if e.numerics]
        console.print(
            f"Environment: {len(env.entries)} differences from the saved host, {len(numerics)} can change numerics:"
        )
        for e in numerics[:10]:
            console.print(f"  {STATUS_MARK[e.status]} {e.path}: {fmt(e.a)} -> {fmt(e.b)}  [{e.topic}]")
        if len(numerics) > 10:
            console.print(f"  ... {len(numerics) - 10} more; envprint diff FINGERPRINT --current to list")
    if report.investigation:
        console.print()
        console.print("Investigation (child processes, one saved setting restored at a time):")
        for r in report.investigation:
            console.print(f"  {r.status:<14} {r.cause:<20} {r.setting}: {r.detail}")
            if r.remedy and r.status in ("confirmed", "untestable"):
                console.print(f"  {'':<14} remedy: {r.remedy}")
    if report.explanations:
        console.print()
        console.print("Likely causes, most likely first:")
        for i, x in enumerate(report.explanations, 1):
            console.print(f"  {i}. {x.cause} (score {x.score:.2f}): {x.reasoning}")
            console.print(f"     remedy: {x.remedy}")
