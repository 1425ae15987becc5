"""Text for people from sweep, fleet and aggregate results: one line per model, summaries, classes.

Owns: the wording of `envprint sweep`, `envprint fleet` and `envprint aggregate` (render.py owns
the single-model reports; this module reuses its Writer, Table and value formatting). A
progress bar on a terminal. Must not import TensorFlow or Ray.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from envprint.models import AggregateReport, FleetReport, SweepItem, SweepSummary
from envprint.render.text import STATUS_MARK, Table, Writer, fmt, plural, summarize
from envprint.render.variants import match_words

ITEM_WORDS = {
    "identical": "identical",
    "within_tolerance": "within tolerance",
    "mismatch": "MISMATCH",
    "error": "could not verify",
}


def _seconds(s: float | None) -> str:
    return "" if s is None else f"{s:.1f} s"


DIFFERENCE_WORDS = {
    "weights_changed": "the model's weights differ from the fingerprinted model's: this is not the model that was saved",
    "record_edited": "probes or reference no longer match the sha256 in fingerprint.json: the record was edited after save",
    "random_at_inference": "outputs changed between two identical predictions on this host: a random layer is active "
    "at inference",
}


def difference_words(item: SweepItem) -> str:
    """What differs first in one model of a sweep, from its code and numbers (a 0.1 document: its note)."""
    if item.difference == "output" and item.output is not None:
        o = item.output
        if o.status == "mismatch" and not o.problem:
            return f'output "{o.name}": {o.n_out_of_tolerance} of {o.size} elements out of tolerance'
        return summarize(o)
    return DIFFERENCE_WORDS.get(item.difference or "", item.note or "outputs differ")


def sweep_line(item: SweepItem) -> str:
    """One model's result, as it finishes."""
    head = f"{ITEM_WORDS[item.verdict]:<17} {item.model}"
    if item.verdict == "error":
        return f"{head}  (exit {item.exit_code}) {item.error}"
    tail = []
    if item.leading_cause:
        tail.append(f"leading cause: {item.leading_cause}")
    if item.difference or item.note:
        tail.append(difference_words(item))
    if item.attempts > 1:
        tail.append("after a worker crash, retried in a fresh worker")
    tail.append(_seconds(item.seconds))
    return f"{head}  " + " | ".join(t for t in tail if t)


def render_sweep_summary(summary: SweepSummary, out: Writer) -> None:
    v = summary.by_verdict
    out.line()
    head = "Sweep interrupted" if summary.interrupted else "Sweep"
    out.line(
        f"{head}: {summary.done} of {plural(summary.total, 'model')} "
        f"({summary.engine}, {plural(summary.jobs, 'worker') if summary.engine == 'local' else plural(summary.jobs, 'CPU') + ' in the cluster'}): "
        f"{v['identical']} identical, {v['within_tolerance']} within tolerance, {v['mismatch']} mismatch, "
        f"{v['error']} could not verify"
    )
    if summary.by_cause:
        t = Table("By leading cause (models whose outputs differ):", "cause", "models")
        for cause, n in summary.by_cause.items():
            t.add_row(cause, str(n))
        out.table(t)
    shown = [i for i in summary.models if i.verdict != "identical"]
    if shown:
        t = Table("Worst models first:", "verdict", "model", "leading cause", "max ULP", "max rel", "exit")
        for i in shown:
            t.add_row(
                ITEM_WORDS[i.verdict],
                i.model,
                i.leading_cause or ("-" if i.verdict != "error" else (i.error or "")[:80]),
                fmt(i.max_ulp) if i.max_ulp is not None else "-",
                f"{i.max_rel:.1e}" if i.max_rel is not None else "-",
                str(i.exit_code),
            )
        out.table(t)
    if summary.not_recorded:
        n = len(summary.not_recorded)
        out.line(
            f"{plural(n, 'model')} without a record, not verified: {', '.join(summary.not_recorded)}; "
            "envprint save MODEL records one"
        )
    if summary.interrupted:
        n = summary.total - summary.done
        out.line(f"{plural(n, 'model')} {'was' if n == 1 else 'were'} not verified (interrupted).")


class Progress:
    """models done / total and an ETA on one rewritten line of a terminal; nothing otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.stream = total, stream or sys.stderr
        self.start = time.monotonic()
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else 0.0
        width = 30
        filled = int(width * done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} models, ETA {int(eta // 60)}:{int(eta % 60):02d} ")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()


def render_fleet(report: FleetReport, out: Writer, title: str = "envprint fleet") -> None:
    s = report.by_status
    out.line(f"{title}: {report.model}")
    if report.fingerprint:
        out.line(f"  record: {report.fingerprint}")
    out.line(
        f"  {plural(len(report.hosts), 'host')}: {s['identical']} identical, {s['within_tolerance']} within tolerance, "
        f"{s['mismatch']} mismatch, {s['error']} could not verify, {s['unreachable']} unreachable; "
        f"{plural(len(report.classes), 'equivalence class', 'equivalence classes')}"
    )
    for c in report.classes:
        out.line()
        out.line(
            f"Class {c.name}: {plural(len(c.hosts), 'host')}, {ITEM_WORDS[c.verdict]}, outputs {(c.outputs_digest or 'n/a')[:12]}"
        )
        out.line(f"  hosts: {', '.join(c.hosts)}")
        if c.variant is not None:
            out.line(f"  variant: {match_words(c.variant)}")
        for o in c.outputs:
            if o.status != "identical":
                from envprint.render.text import summarize

                out.line(f"  {summarize(o)}")
        if c.environment:
            out.line("  differs from the record in:")
            for e in c.environment[:10]:
                out.line(f"    {STATUS_MARK[e.status]} {e.path}: {fmt(e.a, e.path)} -> {fmt(e.b, e.path)}  [{e.topic}]")
            if len(c.environment) > 10:
                out.line(f"    ... {len(c.environment) - 10} more")
        else:
            out.line("  same numerics-relevant environment as the record")
        for i, x in enumerate(c.explanations[:3], 1):
            out.line(f"  {i}. {x.cause} (score {x.score:.2f}): {x.reasoning}")
            out.line(f"     remedy: {x.remedy}")
    for d in report.between:
        out.line()
        out.line(f"Class {d.a} ({d.host_a}) vs class {d.b} ({d.host_b}):")
        if not d.entries:
            out.line("  no numerics-relevant difference in their fingerprints: the outputs differ all the same")
        for e in d.entries:
            out.line(f"  {STATUS_MARK[e.status]} {e.path}: {fmt(e.a, e.path)} -> {fmt(e.b, e.path)}  [{e.topic}]")
    bad = [h for h in report.hosts if h.status != "verified"]
    if bad:
        out.line()
        t = Table("Hosts that could not verify:", "host", "status", "exit", "why")
        for h in bad:
            t.add_row(h.host, h.status, str(h.exit_code), h.error or "")
        out.table(t)


def render_aggregate(report: AggregateReport, out: Writer) -> None:
    out.line(f"envprint aggregate: {plural(report.sources, 'report')}, {plural(len(report.models), 'model')}")
    for m in report.models:
        out.line()
        render_fleet(m, out, title="Model")
