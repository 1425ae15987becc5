"""Equivalence classes of hosts, from their `envprint verify --json` reports.

Owns: grouping hosts that verified one model into classes by (verdict, the numerics-relevant
differences of their fingerprint from the record, the digest of the outputs they obtained), the
diff between two classes' representatives, and `envprint aggregate`: reading reports from files,
directories or stdin (one report, several concatenated, or JSON Lines) written by any engine (Kubernetes, Slurm, a CI matrix, or
`envprint fleet`'s own tasks). Pure data in, models out; never imports TensorFlow or Ray.

A report holds its host's fingerprint only as its difference from the record
(``Report.environment``). Two hosts that verified the same record can still be compared field
by field: where a host has no entry its value is the record's. That is what ``pair_entries``
does, so no full fingerprint has to travel with a report.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from envprint.errors import ExitCode, UsageError
from envprint.models import AggregateReport, ClassDiff, DiffEntry, EquivalenceClass, FleetReport, HostResult, Report
from envprint.models.base import REPORT_SCHEMA_MINOR, REPORT_SCHEMA_VERSION
from envprint.record.store import parse_report

# A host that never ran its task (node died, never scheduled) could not verify the model there.
UNREACHABLE_EXIT = int(ExitCode.MODEL)
_VERDICT_RANK = {"identical": 0, "within_tolerance": 1, "mismatch": 2}


def numerics_entries(report: Report) -> list[DiffEntry]:
    """The differences of this host from the record that can change numerics."""
    return [e for e in report.environment.entries if e.numerics]


def _outputs_key(report: Report) -> Any:
    if report.outputs_digest is not None:
        return report.outputs_digest
    # A report from an envprint without outputs_digest: its statistics against the record
    # stand in (equal statistics on every output, the same outputs as far as the report can tell).
    return tuple((o.name, o.status, o.n_differ, o.max_abs, o.max_ulp, o.mean_abs) for o in report.outputs)


def class_key(report: Report) -> tuple[Any, ...]:
    env = tuple(sorted((e.path, e.status, json.dumps(e.b, sort_keys=True)) for e in numerics_entries(report)))
    return (report.verdict, env, _outputs_key(report))


def class_name(index: int) -> str:
    """A, B, ..., Z, AA, AB, ..."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def pair_entries(a: Report, b: Report) -> list[DiffEntry]:
    """Numerics-relevant fields whose values differ between host a and host b (both against one record)."""
    ea = {e.path: e for e in numerics_entries(a)}
    eb = {e.path: e for e in numerics_entries(b)}
    out = []
    for path in sorted(ea.keys() | eb.keys()):
        # Where a host has no entry, it has the record's value: the other host's entry's 'a'.
        if path in ea and path in eb:
            va, vb, like = ea[path].b, eb[path].b, ea[path]
        elif path in ea:
            va, vb, like = ea[path].b, ea[path].a, ea[path]
        else:
            va, vb, like = eb[path].a, eb[path].b, eb[path]
        if va == vb:
            continue
        status = "only_in_b" if va is None else "only_in_a" if vb is None else "changed"
        out.append(like.model_copy(update={"a": va, "b": vb, "status": status}))
    return out


def host_result(
    host: str,
    report: Report | None = None,
    *,
    node_id: str | None = None,
    error: str | None = None,
    exit_code: int | None = None,
    unreachable: bool = False,
) -> HostResult:
    if report is not None:
        code = int(ExitCode.DIFFERENT if report.verdict == "mismatch" else ExitCode.OK)
        return HostResult(
            host=host,
            node_id=node_id,
            status="verified",
            verdict=report.verdict,
            exit_code=code,
            outputs_digest=report.outputs_digest,
        )
    if unreachable:
        return HostResult(host=host, node_id=node_id, status="unreachable", exit_code=UNREACHABLE_EXIT, error=error)
    return HostResult(
        host=host, node_id=node_id, status="error", exit_code=exit_code or int(ExitCode.INTERNAL), error=error
    )


def group(model: str, hosts: list[tuple[HostResult, Report | None]], fingerprint: str | None = None) -> FleetReport:
    """Hosts of one model -> a FleetReport: classes largest first, each other class diffed against A."""
    from envprint.many.worker import exit_code_of

    buckets: dict[tuple[Any, ...], list[tuple[HostResult, Report]]] = {}
    for result, report in hosts:
        if report is not None:
            buckets.setdefault(class_key(report), []).append((result, report))
    ordered = sorted(buckets.values(), key=lambda m: (-len(m), _VERDICT_RANK[m[0][1].verdict], m[0][0].host))
    classes: list[EquivalenceClass] = []
    names: dict[str, str] = {}
    for i, members in enumerate(ordered):
        rep_host, rep = members[0]
        name = class_name(i)
        for h, _ in members:
            names[h.host] = name
        classes.append(
            EquivalenceClass(
                name=name,
                verdict=rep.verdict,
                hosts=[h.host for h, _ in members],
                representative=rep_host.host,
                outputs_digest=rep.outputs_digest,
                outputs=rep.outputs,
                environment=numerics_entries(rep),
                explanations=rep.explanations if rep.verdict != "identical" else [],
                variant=rep.variant,
            )
        )
    between = [
        ClassDiff(
            a="A",
            b=classes[i].name,
            host_a=ordered[0][0][0].host,
            host_b=ordered[i][0][0].host,
            entries=pair_entries(ordered[0][0][1], ordered[i][0][1]),
        )
        for i in range(1, len(ordered))
    ]
    results = [r.model_copy(update={"equivalence_class": names.get(r.host)}) for r, _ in hosts]
    status: dict[str, int] = {k: 0 for k in ("identical", "within_tolerance", "mismatch", "error", "unreachable")}
    for r in results:
        status[r.verdict if r.status == "verified" else r.status] += 1  # type: ignore[index]
    return FleetReport(
        model=model,
        fingerprint=fingerprint or next((rep.fingerprint for _, rep in hosts if rep is not None), None),
        hosts=sorted(results, key=lambda r: (r.equivalence_class or "~", r.host)),
        classes=classes,
        between=between,
        by_status=status,
        exit_code=(code := exit_code_of(r.exit_code for r in results)),
        passed=code == 0,
    )


# --------------------------------------------------------------------------- reading reports

_SKIPPED_KINDS = {"sweep_summary", "fleet_report", "aggregate_report"}
_SPACE = re.compile(r"\s*")


def _skip_space(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not white space (``\\s*`` always matches)."""
    m = _SPACE.match(text, pos)
    return m.end() if m else pos


def _documents(text: str, source: str) -> Iterator[tuple[str, Any]]:
    """The JSON documents of one file or stream, one after another: one report (named ``source``),
    or several, concatenated (``cat reports/*.json``, indented as verify writes them), one per
    line (JSON Lines) or a mix, each named ``source:LINE`` by the line it starts on."""
    decoder = json.JSONDecoder()
    found: list[tuple[str, Any]] = []
    pos, line, last, previous_line = _skip_space(text, 0), 1, 0, 0
    while pos < len(text):
        line += text.count("\n", last, pos)
        last = pos
        try:
            doc, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{source}:{exc.lineno}: not JSON ({exc.msg}); aggregate reads the output of 'envprint verify --json', "
                "reports one after another (a file of one, JSON Lines, or files concatenated)"
            ) from None
        name = f"{source}:{line}"
        if line == previous_line:  # a second document on one line: its column too, so hosts keep apart
            name += f":{pos - text.rfind(chr(10), 0, pos)}"
        found.append((name, doc))
        previous_line = line
        pos = _skip_space(text, end)
    if len(found) == 1:
        yield source, found[0][1]
    else:
        yield from found


def _sources(paths: list[Path], stdin: TextIO | None) -> Iterator[tuple[str, str]]:
    if not paths:
        if stdin is None:
            raise UsageError("give report files or directories, or pipe reports on stdin")
        yield "stdin", stdin.read()
        return
    for path in paths:
        if str(path) == "-":
            yield "stdin", (stdin or sys.stdin).read()
            continue
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise UsageError(f"{path}: no such file or directory")
        for f in files:
            try:
                yield str(f), f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{f}: cannot be read ({exc}); check its permissions") from None


def _host_error(doc: dict) -> dict:
    """A host that could not verify, from verify --json's error document ({"error": {"exit_code", "message", ...}})
    or a plain {"error": "...", "exit_code": N, "model": ...} (a sweep item, a hand-made line)."""
    err = doc.get("error")
    if isinstance(err, dict):
        return {"model": doc.get("model"), "exit_code": err.get("exit_code"), "error": err.get("message")}
    return {"model": doc.get("model"), "exit_code": doc.get("exit_code"), "error": err}


def _from_a_newer_envprint(doc: dict) -> bool:
    """Whether a verify report's schema is newer than this envprint's (see record.store.parse_report)."""
    version, minor = doc.get("schema_version"), doc.get("schema_minor", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        return False
    newer_minor = isinstance(minor, int) and not isinstance(minor, bool) and minor > REPORT_SCHEMA_MINOR
    return version > REPORT_SCHEMA_VERSION or (version == REPORT_SCHEMA_VERSION and newer_minor)


def read_reports(paths: Iterable[str | Path], stdin: TextIO | None = None) -> list[tuple[str, Report | dict]]:
    """(source, Report) for each report, (source, {"error", "exit_code", "model"}) for a host that could not verify."""
    out: list[tuple[str, Report | dict]] = []
    for name, text in _sources([Path(p) for p in paths], stdin):
        for source, doc in _documents(text, name):
            if not isinstance(doc, dict) or doc.get("kind") in _SKIPPED_KINDS:
                continue
            if "error" in doc and "verdict" not in doc or doc.get("verdict") == "error":
                out.append((source, _host_error(doc)))
                continue
            if _from_a_newer_envprint(doc):  # refused (newer major) or read tolerantly, with one note
                out.append((source, parse_report(doc, source)))
                continue
            try:
                out.append((source, Report.model_validate(doc)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(top)"
                raise UsageError(
                    f"{source}: not an 'envprint verify --json' report ({where}: {first['msg']}); "
                    "aggregate reads verify reports, one per file or one per line"
                ) from None
    return out


def aggregate(paths: Iterable[str | Path], stdin: TextIO | None = None) -> AggregateReport:
    """Group the hosts of each model (by the model path the reports name) into equivalence classes."""
    read = read_reports(paths, stdin)
    if not read:
        raise UsageError("no reports found; aggregate reads the output of 'envprint verify --json'")
    by_model: dict[str, list[tuple[HostResult, Report | None]]] = {}
    # verify --json's error document does not name the model: with one model among the reports,
    # a host that could not verify is counted against it.
    named = {doc.model for _, doc in read if isinstance(doc, Report)}
    only = next(iter(named)) if len(named) == 1 else None
    for source, doc in read:
        if isinstance(doc, Report):
            by_model.setdefault(doc.model, []).append((host_result(source, doc), doc))
        else:
            model = str(doc.get("model") or only or "(unknown model)")
            code = doc.get("exit_code")
            result = host_result(source, error=str(doc.get("error")), exit_code=code if isinstance(code, int) else None)
            by_model.setdefault(model, []).append((result, None))
    from envprint.many.worker import exit_code_of

    models = [group(model, hosts) for model, hosts in sorted(by_model.items())]
    code = exit_code_of(m.exit_code for m in models)
    return AggregateReport(sources=len(read), models=models, exit_code=code, passed=code == 0)
