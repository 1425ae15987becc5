"""Fingerprints -> text for people: what ``save`` says it wrote, ``show``'s tables and ``diff``'s differences.

Owns: the text of ``save`` (the record written), ``show`` (one fingerprint, section by section),
``diff`` (two fingerprints' differences) and ``verify --preflight`` (what to expect on B); the verify
report and the shared ``Writer``, ``Table`` and ``fmt`` are render/text.py's.
Must not import TensorFlow, nor rich (see render/text.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from envprint import formats
from envprint.causes.diff import flatten
from envprint.models import DiffEntry, Explanation, Fingerprint, FingerprintDiff, SaveSummary
from envprint.render.text import STATUS_MARK, Table, Writer, fmt
from envprint.render.variants import variants_lines

SECTION_TITLES = {
    "python": "Python", "platform": "Platform", "cpu": "CPU", "packages": "Packages", "tensorflow": "TensorFlow",
    "devices": "Devices", "threads": "Threads", "seeds": "Seeds", "env": "Environment variables",
}  # fmt: skip
STATUS_WORDS = {"changed": "changed", "only_in_a": "only in A", "only_in_b": "only in B"}
JIT_WORDS = {"": "off (no XLA auto-clustering)", "autoclustering": "autoclustering (XLA compiles clusters of ops)"}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)  # pragma: no cover


def render_fingerprint(fp: Fingerprint, out: Writer, show_all: bool = False) -> None:
    data = fp.model_dump(mode="json")
    out.line(
        f"envprint fingerprint (schema {fp.schema_version}, envprint {fp.envprint_version}, "
        f"captured {fp.created_at.isoformat()})"
    )
    said: dict[str, str] = {}  # a reason shown in full -> where; later rows point back to it
    for section, title in SECTION_TITLES.items():
        value = data[section]
        table = Table(title)
        if value is None:
            table.add_row("(absent)", fp.unavailable.get(section, ""))
            said.setdefault(fp.unavailable.get(section, ""), f"{title} above")
            out.line()
            out.table(table)
            continue
        installed = value.pop("installed", None) if section == "packages" else None
        reasons = value.pop("unavailable", {}) if isinstance(value, dict) else {}
        for path, leaf in flatten(value):
            if path.endswith(".unavailable") or ".unavailable." in path:
                continue
            shown = _size(leaf) if path.endswith("memory_bytes") and isinstance(leaf, int) else fmt(leaf)
            if section == "tensorflow" and path == "jit" and leaf in JIT_WORDS:
                shown = JIT_WORDS[leaf]
            if leaf is None and path in reasons:
                why = reasons[path]
                shown = f"(absent: as {said[why]})" if why in said else f"(absent: {why})"
                said.setdefault(why, path)
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


def render_diff(diff: FingerprintDiff, out: Writer, show_all: bool = False, model_name: str | None = None) -> None:
    """The diff, section by section; ``model_name`` names the file a single-file model's digest is of."""
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
            if field == "files..":  # the digest of a single-file model, kept under the key "."
                field = f"files[{model_name or 'the model file'}]"
            table.add_row(
                STATUS_MARK[e.status], field, fmt(e.a, e.path), fmt(e.b, e.path), e.topic if e.numerics else ""
            )
        out.line()
        out.table(table)
    if folded:
        out.line()
        out.line(_folded(folded))
    out.line()
    out.line("~ changed   - only in A   + only in B")
    render_expectations(diff.expectations, out)


# What a preflight expectation predicts; only a change beyond tolerance can fail verify --preflight.
PREDICTS_WORDS = {
    "noise": "ULP-level noise, within tolerance",
    "precision": "a precision change, beyond tolerance",
    "semantic": "changed results or a load failure",
}


def render_expectations(expectations: list[Explanation], out: Writer) -> None:
    if not expectations:
        return
    out.line()
    out.line("What to expect on B, most likely first:")
    for i, x in enumerate(expectations, 1):
        kind = f", {PREDICTS_WORDS[x.predicts]}" if x.predicts else ""
        out.line(f"  {i}. {x.cause} (likelihood {x.score:.2f}{kind}): {x.reasoning}")
        out.line(f"     remedy: {x.remedy}")


FORMAT_WORDS = {f.id: f.described for f in formats.FORMATS}


def render_save(summary: SaveSummary, out: Writer) -> None:
    """What ``envprint save`` prints: where the record went and what it holds."""
    ident = summary.model
    random = "" if summary.self_check.deterministic else " (NOT deterministic: see the warning)"
    out.line(
        f"saved {summary.sidecar}/fingerprint.json: {FORMAT_WORDS[ident.format]}, {summary.probes.num_probes} probes, "
        f"outputs {', '.join(o.name for o in ident.outputs)}{random}"
    )
    tol = summary.tolerance
    if tol.margin is not None:
        atol = "the per-dtype default" if tol.atol is None else f"{tol.atol:g}"
        drift = f"{tol.margin:g} x the largest relative error measured in {tol.derived_from}"
        if tol.rtol is None:
            out.line(f"tolerance: rtol the per-dtype default ({drift} is below it), atol {atol}")
        else:
            out.line(f"tolerance: rtol={tol.rtol:g} ({drift}, never below the per-dtype default), atol {atol}")
    for line in variants_lines(summary.variants):
        out.line(line)
