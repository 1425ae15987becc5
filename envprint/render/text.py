"""Models -> text for people: the verify report (an endpoint's own lines: render/endpoint.py).

Owns: the verify report's text (``str(report)``), and the ``Writer``, ``Table`` and ``fmt`` every text
renderer shares (``save``, ``show`` and ``diff``: render/fingerprint.py; many models: render/many.py).
Must not import TensorFlow, nor rich (~50 ms of ``diff``'s ~260 ms, for aligned columns only).
"""

from __future__ import annotations

import io
import shlex
import sys
from typing import Any, TextIO

from envprint.causes.registry import absent
from envprint.models import (
    NONFINITE,
    IdentityCheck,
    ModelDifference,
    OutputComparison,
    Report,
    use_wording,
)
from envprint.render.endpoint import environment_same, head_lines, misfit_problem
from envprint.render.layers import lines as layer_lines
from envprint.render.precision import precision_lines
from envprint.render.variants import variant_line
from envprint.render.words import signature_line

STATUS_MARK = {"changed": "~", "only_in_a": "-", "only_in_b": "+"}


def fmt(value: Any, path: str = "") -> str:
    """A value as printed; a missing one as causes.absent words it for ``path``."""
    if value is None:
        return absent(path)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict) and not value:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Table:
    """A title line (unless None), then left-aligned columns two spaces apart, with an optional header row.

    Never wraps or truncates: a long value widens its column, since a path or a version cut in
    two is worse than a wide line in a pipe or a CI log. A cell with newlines spans several lines.
    """

    def __init__(self, title: str | None, *header: str) -> None:
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
        return body if self.title is None else [self.title, *body]


class Writer:
    """Lines of plain text to a stream: all the text renderers need of a terminal.

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


VERDICT_WORDS = {
    "identical": "PASSED (bit-identical)",
    "within_tolerance": "PASSED (within tolerance)",
    "mismatch": "MISMATCH",
}


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 model', '3 models' ('1 equivalence class', '2 equivalence classes' with ``many``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def relative_error_title(h: Any) -> str:
    """The relative-error plot's title: which elements it cannot show, and why, in plain words."""
    return (
        f"Relative error: {plural(h.rel_zero, 'element')} equal to the reference,\n"
        f"{h.rel_skipped} with none (the reference is 0, or a value is not finite)"
    )


def file_names(files: list[str], model_name: str | None) -> str:
    """File lists of a model: '.' is the single-file model itself, so it is named."""
    return ", ".join(model_name or "the model file" if f == "." else f for f in files)


DIFFERENCE_LABELS = {
    "inputs": "inputs", "outputs": "outputs", "parameter_count": "parameters", "layer_classes": "layer classes",
    "format": "format",
}  # fmt: skip


def describe_differences(differences: list[ModelDifference]) -> str:
    """'inputs [x (None, 4) float32] -> [...]; parameters 67 -> 18': how another model differs."""

    def show(v: Any) -> str:
        return "[" + ", ".join(v) + "]" if isinstance(v, list) else str(v)

    return "; ".join(f"{DIFFERENCE_LABELS[d.field]} {show(d.saved)} -> {show(d.current)}" for d in differences)


def _rerun_diff(report: Report) -> str:
    return f"envprint diff {shlex.quote(report.fingerprint)} --current"


def first_problem(report: Report) -> str:
    """Why the report is a mismatch, in one line: what the header and ``raise_for_status`` say first."""
    ident = report.identity
    if misfit := misfit_problem(report):
        return misfit
    if ident.weights == "changed":
        what = f": {describe_differences(ident.differences)}" if ident.differences else ""
        return f"the model's weights differ from the fingerprinted model's: this is not the model that was saved{what}"
    if ident.sidecar_files_changed:
        files = ident.sidecar_files_changed
        verb = "no longer matches" if len(files) == 1 else "no longer match"
        return f"{', '.join(files)} {verb} the sha256 in fingerprint.json: the record was edited after save"
    if report.random_at_inference:
        return (
            f"outputs changed between two identical predictions on this host ({', '.join(report.random_at_inference)})"
            ": a random layer is active at inference"
        )
    for o in report.outputs:
        if o.status == "mismatch":
            if o.problem:
                return summarize(o)
            return f'output "{o.name}": {o.n_out_of_tolerance} of {o.size} elements out of tolerance'
    return "outputs differ from the saved reference"


def _tolerance_needed(c: OutputComparison) -> str | None:
    """What tolerance would have passed this output, for a person choosing one (None: nothing to say)."""
    if c.status == "identical" or c.problem or (c.rtol_needed is None and c.atol_needed is None):
        return None
    options = []
    if c.rtol_needed is not None:
        options.append(
            f"rtol >= {c.rtol_needed:.2e} (with atol={c.atol:g})"
            if c.rtol_needed
            else f"rtol 0 (atol={c.atol:g} covers it)"
        )
    if c.atol_needed is not None:
        options.append(f"atol >= {c.atol_needed:.2e} (with rtol=0)")
    top = [f"top-{k} agreement {v:.1%}" for k, v in ((1, c.top1_agreement), (5, c.top5_agreement)) if v is not None]
    return "  would pass at " + ", or ".join(options) + (f"; {', '.join(top)}" if top else "")


def random_at_inference_line(o: OutputComparison) -> str:
    """An output that changed between two identical predictions on this host."""
    if o.status == "identical":
        return (
            f'output "{o.name}": the first prediction is bit-identical to the reference ({o.size} elements); '
            "a second, identical prediction differed from it: random at inference"
        )
    return f'output "{o.name}": a second, identical prediction differed from the first: random at inference'


def weights_words(ident: IdentityCheck) -> str:
    """The weights row of the report (text, HTML and Markdown alike): same, CHANGED, or not comparable and why."""
    weights = {
        "same": "same as saved",
        "changed": "CHANGED: this is not the model that was saved",
        "unknown": "not comparable",
    }[ident.weights]
    if ident.weights == "unknown" and ident.weights_digest_scheme_now != ident.weights_digest_scheme_saved:
        weights += (
            f" (saved as {ident.weights_digest_scheme_saved}, this model gives {ident.weights_digest_scheme_now})"
        )
    elif (
        ident.weights == "changed"
        and ident.weights_digest_scheme_saved == "named-v1" != ident.weights_digest_scheme_now
    ):
        weights += (
            " (the record's digest uses envprint 0.1.0's scheme named-v1, which also hashed weight names; if this "
            f"model was only rebuilt or re-saved, re-save the record to get scheme {ident.weights_digest_scheme_now})"
        )
    elif ident.weights == "same" and any(d.field == "format" for d in ident.differences):
        weights += " (another format of the same weights)"
    elif ident.weights == "same" and (ident.files_changed or ident.files_missing or ident.files_added):
        weights += " (the files were rewritten, the weights are identical)"
    return weights


def render_report(report: Report, out: Writer) -> None:
    """The verify report: verdict first, then identity, outputs, environment, explanations."""
    head = VERDICT_WORDS[report.verdict]
    out.line(f"envprint verify: {head}" + (f": {first_problem(report)}" if not report.passed else ""))
    for line in head_lines(report):
        out.line(line)
    _render_identity(report, out)
    out.line()
    _render_outputs(report, out)
    for text in [*precision_lines(report), *(layer_lines(report.layers) if report.layers else [])]:
        out.line(text)
    if report.outputs:  # the header already ends with a blank line
        out.line()
    _render_environment(report, out)
    _render_investigation(report, out)
    _render_explanations(report, out)


def _render_identity(report: Report, out: Writer) -> None:
    """The header's facts: the weights, the files, how this model differs, positions, casts, seed, signature."""
    ident = report.identity
    out.line(f"  weights:     {weights_words(ident)}")
    for label in ("changed", "missing", "added"):
        if files := getattr(ident, f"files_{label}"):
            out.line(f"  files {label}: {file_names(files, ident.model_name)}")
    if ident.differences:
        out.line(f"  differs:     {describe_differences(ident.differences)}")
    for label, mapping in (("input", report.inputs_by_position), ("output", report.outputs_by_position)):
        for recorded, now in sorted(mapping.items()):
            out.line(f"  {label} by position: the recorded {label} {recorded!r} is {now!r} in this model")
    for name, how in sorted(report.probe_casts.items()):
        out.line(f"  probe cast:  input {name!r} cast {how} for this model (the record's cast rule)")
    if not report.probes_run:
        out.line("  probes:      not run: this model does not take the recorded inputs")
    if report.seed_applied is not None:
        out.line(f"  seed:        {report.seed_applied} applied before loading, as at save (the model may be random)")
    if ident.sidecar_files_changed:
        out.line(f"  record edited: {', '.join(ident.sidecar_files_changed)} (sha256 differs from fingerprint.json)")
    for label, said in (("signature:  ", signature_line(report)), ("variant:    ", variant_line(report))):
        if said:
            out.line(f"  {label} {said}")


def _render_outputs(report: Report, out: Writer) -> None:
    """Each output: its summary line, its worst elements, and the tolerance that would have passed it."""
    for o in report.outputs:
        if o.name in report.random_at_inference and o.status == "identical":
            out.line(random_at_inference_line(o))
            continue
        out.line(
            summarize(o) + (" | changed between identical predictions" if o.name in report.random_at_inference else "")
        )
        if o.worst:
            out.table(worst_table(o))
        # An edited record or other weights: no tolerance is the answer, so none is offered.
        tampered = report.identity.sidecar_files_changed or report.identity.weights == "changed"
        needed = None if tampered else _tolerance_needed(o)
        if needed:
            out.line(needed)


def _render_environment(report: Report, out: Writer) -> None:
    """The host's differences from the saved one: the first ten that can change numerics, or why none is listed."""
    env = report.environment
    numerics = [e for e in env.entries if e.numerics]
    differences = plural(len(env.entries), "difference")
    if env.identical:
        out.line(environment_same(report))
    elif report.verdict == "identical":
        out.line(
            f"Environment: {differences} from the saved host ({len(numerics)} can change numerics), "
            f"and the outputs did not change; {_rerun_diff(report)} lists them"
        )
    elif not numerics:
        out.line(
            f"Environment: {differences} from the saved host, none of which can change numerics; "
            f"{_rerun_diff(report)} lists them"
        )
    else:
        out.line(f"Environment: {differences} from the saved host, {len(numerics)} can change numerics:")
        for e in numerics[:10]:
            out.line(f"  {STATUS_MARK[e.status]} {e.path}: {fmt(e.a, e.path)} -> {fmt(e.b, e.path)}  [{e.topic}]")
        if len(numerics) > 10:
            out.line(f"  ... {len(numerics) - 10} more; {_rerun_diff(report)} lists them")


def _render_investigation(report: Report, out: Writer) -> None:
    """verify --investigate: each child run's finding, with its remedy where it confirmed a cause."""
    if not report.investigation:
        return
    out.line()
    out.line("Investigation (child processes, one saved setting restored at a time):")
    for r in report.investigation:
        out.line(f"  {r.status:<14} {r.cause:<20} {r.setting}: {r.detail}")
        if r.remedy and r.status in ("confirmed", "untestable"):
            out.line(f"  {'':<14} remedy: {r.remedy}")


def _render_explanations(report: Report, out: Writer) -> None:
    """The likely causes, ranked, each with its remedy."""
    if not report.explanations:
        return
    out.line("\nLikely causes, most likely first:")
    for i, x in enumerate(report.explanations, 1):
        out.line(f"  {i}. {x.cause} (score {x.score:.2f}): {x.reasoning}")
        out.line(f"     remedy: {x.remedy}")


def report_text(report: Report) -> str:
    """``render_report`` as one string: what ``str(report)`` and ``report.to_text()`` return."""
    buffer = io.StringIO()
    render_report(report, Writer(buffer))
    return buffer.getvalue()


use_wording(report_text, first_problem)  # str(report), report.to_text(), report.raise_for_status()


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
    stats += [f"max {n} {unit}" for n, unit in ((c.max_ulp, "ULP"), (c.max_steps, "steps")) if n is not None]
    stats += [f"top-1 agreement {c.top1_agreement:.1%}"] if c.top1_agreement is not None else []
    if stats:
        parts.append(", ".join(stats))
    parts.append("exact" if c.atol == 0 and c.rtol == 0 else f"atol={c.atol:g} rtol={c.rtol:g}")
    return head + " | ".join(parts)


def worst_table(c: OutputComparison) -> Table:
    """The worst elements as an aligned ``Index  Obtained  Expected  Difference`` table (no rows if none)."""
    table = Table(None, "Index", "Obtained", "Expected", "Difference")
    for w in c.worst:
        table.add_row(str(w.index), w.obtained, w.expected, w.difference)
    return table
