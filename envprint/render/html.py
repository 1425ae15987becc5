"""A verify report as one self-contained HTML page with plots: ``verify --html``, ``envprint report``.

Owns: the page (verdict, per output the error histograms in ULP and relative terms with the
tolerance drawn on them, obtained vs expected, the worst elements, the ranked causes with their
evidence, the environment differences) and reading a saved JSON report back.
Part of the render layer: the page's own wording lives here; what it shares with the text report, in text.py.

Plots are matplotlib figures inlined as SVG. Not plotly: its JavaScript, inlined to work offline,
is 4.8 MB per file (plotly 7.1), while a static SVG needs no script and weighs tens of KiB per output;
the page runs no code, and its Content-Security-Policy forbids every fetch (scripts, fonts,
images, styles from anywhere), so a browser opening it offline shows exactly what CI saw.
matplotlib is an optional extra (``envprint[html]``), imported only here, only when a page is
written; pyplot is never imported, so no global figure state or backend is touched.
Must not import TensorFlow or Keras.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import Any

from envprint.errors import DependencyError
from envprint.models import ErrorDocument, ErrorHistogram, Explanation, OutputComparison, Report
from envprint.render.endpoint import fact_rows
from envprint.render.text import relative_error_title

# No fetch of any kind: a page that tried one would show an error in the console (the test looks).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# Machine epsilon by dtype (spacing of 1.0): a relative tolerance of rtol is about rtol / eps ULP.
_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
_COLORS = {"identical": "#1a7f37", "within_tolerance": "#1a7f37", "mismatch": "#cf222e"}

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1f2328; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.verdict { display: inline-block; color: #fff; padding: .15em .6em; border-radius: 6px; font-weight: 600; }
table { border-collapse: collapse; margin: .5em 0 1em; } td, th { border: 1px solid #d0d7de; padding: .25em .6em;
  text-align: left; vertical-align: top; } th { background: #f6f8fa; }
code, .mono { font-family: ui-monospace, monospace; font-size: 90%; } .muted { color: #656d76; }
figure { margin: .5em 0; } svg { max-width: 100%; height: auto; }
table.wide { width: 100%; table-layout: fixed; } td { overflow-wrap: break-word; }
table.causes th:nth-child(1) { width: 1.5em; } table.causes th:nth-child(2) { width: 8em; }
table.causes th:nth-child(3) { width: 3em; } table.causes th:nth-child(5) { width: 24%; }
"""


def require_matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (the object API: no pyplot, no global state)
    except ImportError:
        raise DependencyError(
            "the HTML report needs matplotlib, which is not installed; install it: pip install 'envprint[html]'"
        ) from None
    return matplotlib


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _svg(fig: Any) -> str:
    """The figure as an inline <svg> element: text kept as text (small, selectable), ids deterministic."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: not valid inside HTML


def _ulp_tolerance(c: OutputComparison) -> float | None:
    eps = _EPS.get(c.expected_dtype or "")
    return c.rtol / eps if eps and c.rtol is not None else None


def _plot_output(c: OutputComparison, h: ErrorHistogram) -> str:
    """The four plots of one output: error in ULP, relative error, obtained vs expected, difference vs tolerance."""
    mpl = require_matplotlib()
    from matplotlib.figure import Figure

    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "envprint", "font.size": 9}):
        fig = Figure(figsize=(11, 7.2), layout="constrained")
        (ax_ulp, ax_rel), (ax_oe, ax_diff) = fig.subplots(2, 2)
        _plot_ulp(ax_ulp, c, h)
        _plot_relative(ax_rel, c, h)
        _plot_obtained(ax_oe, h)
        _plot_difference(ax_diff, c, h)
        return _svg(fig)


def _plot_ulp(ax: Any, c: OutputComparison, h: ErrorHistogram) -> None:
    """The error in ULP, binned by powers of two, with the tolerance's rtol drawn where it falls."""
    # Each bin labelled by its lower edge, short (4k, 1M): ranges such as "65536-1048575" piled up.
    labels = [_short(lo) for lo in h.ulp_edges[:-1]]
    ax.bar(range(len(h.ulp_counts)), h.ulp_counts, color="#4c72b0")
    step = max(1, math.ceil(len(labels) / 16))  # at most 16 labels, whatever the spread
    ax.set_xticks(
        range(0, len(labels), step),
        labels[::step],
        rotation=45 if len(labels) > 8 else 0,
        ha="right" if len(labels) > 8 else "center",
    )
    _headroom(ax, h.ulp_counts)
    ax.set_xlabel("error in ULP (units in the last place), bins from this many up")
    ax.set_ylabel("elements")
    ax.set_title("Error in ULP")
    tol_ulp, exact = _ulp_tolerance(c), c.rtol == 0 and c.atol == 0
    if exact or tol_ulp:  # an atol alone has no fixed width in ULP: nothing to draw
        # Bins are powers of two: draw the tolerance where log2 puts it among them.
        pos = 0.5 + math.log2(tol_ulp) if tol_ulp and tol_ulp >= 1 else 0.5
        label = "exact: any ULP fails" if exact else f"rtol ≈ {tol_ulp:.3g} ULP (rtol / eps)"
        ax.axvline(pos, color="#cf222e", linestyle="--", label=label)
        ax.legend(loc="upper right")


def _plot_relative(ax: Any, c: OutputComparison, h: ErrorHistogram) -> None:
    """The relative error on a log scale, with rtol drawn, zoomed to the bins that hold elements."""
    ax.stairs(h.rel_counts, h.rel_edges, fill=True, color="#4c72b0")
    ax.set_xscale("log")
    ax.set_xlabel("relative error |obtained - expected| / |expected|")
    ax.set_ylabel("elements")
    ax.set_title(relative_error_title(h))
    _headroom(ax, h.rel_counts)
    if c.rtol:
        ax.axvline(c.rtol, color="#cf222e", linestyle="--", label=f"rtol = {c.rtol:g} (+ atol / |expected|)")
        ax.legend(loc="upper right")
    nonzero = [i for i, n in enumerate(h.rel_counts) if n]
    if nonzero:
        lo = min(h.rel_edges[nonzero[0]], c.rtol or math.inf)
        hi = max(h.rel_edges[nonzero[-1] + 1], c.rtol or 0)
        ax.set_xlim(lo / 10, hi * 10)


def _plot_obtained(ax: Any, h: ErrorHistogram) -> None:
    """The sampled elements, obtained against expected, beside the line where they are equal."""
    xs, ys = h.sample_expected, h.sample_obtained
    ax.scatter(xs, ys, s=8, color="#4c72b0", alpha=0.7)
    if xs:
        lo, hi = min(xs + ys), max(xs + ys)
        ax.plot([lo, hi], [lo, hi], color="#656d76", linewidth=0.8, label="obtained = expected")
        ax.legend(loc="best")
    ax.set_xlabel("expected")
    ax.set_ylabel("obtained")
    ax.set_title(f"Obtained vs expected ({len(xs)} sampled elements)")


def _plot_difference(ax: Any, c: OutputComparison, h: ErrorHistogram) -> None:
    """The sampled elements' differences, inside or outside the band atol + rtol · |expected|."""
    xs, ys = h.sample_expected, h.sample_obtained
    diffs = [y - x for x, y in zip(xs, ys, strict=True)]
    ax.scatter(xs, diffs, s=8, color="#4c72b0", alpha=0.7)
    if xs and c.atol is not None and c.rtol is not None:
        grid = sorted(xs)
        band = [c.atol + c.rtol * abs(x) for x in grid]
        ax.plot(grid, band, color="#cf222e", linestyle="--", label="± (atol + rtol · |expected|)")
        ax.plot(grid, [-b for b in band], color="#cf222e", linestyle="--")
        ax.legend(loc="best")
    ax.axhline(0, color="#656d76", linewidth=0.8)
    ax.set_xlabel("expected")
    ax.set_ylabel("obtained - expected")
    ax.set_title("Difference against the tolerance")


def _short(n: int) -> str:
    """1048576 -> '1M', 4096 -> '4k': a tick label that stays short."""
    for size, suffix in ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


def _headroom(ax: Any, counts: list[int]) -> None:
    """Room above the tallest bar for the legend (upper right), so that it never covers a bar."""
    ax.set_ylim(0, max([*counts, 1]) * 1.35)


def _table(header: list[str] | None, rows: list[list[str]], raw: bool = False, cls: str = "") -> str:
    """A table; cells are escaped unless ``raw`` (cells already HTML); class 'wide' spans the page, wrapping text."""
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}>{head}{body}</table>"


def _output_section(c: OutputComparison, random: bool = False) -> str:
    """One output; ``random``: a second, identical prediction on this host differed from the first."""
    from envprint.render.text import random_at_inference_line, summarize

    parts = [f"<h3>Output <code>{_e(c.name)}</code></h3>", f"<p class='mono'>{_e(summarize(c))}</p>"]
    if random:
        parts.append(f"<p><b>{_e(random_at_inference_line(c))}</b></p>")
    if c.error_histogram is not None:
        parts.append(f"<figure>{_plot_output(c, c.error_histogram)}</figure>")
    elif c.status == "identical" and not random:
        parts.append("<p class='muted'>Bit-identical: no error to plot.</p>")
    elif c.problem is None:
        parts.append("<p class='muted'>No error distribution in this report (not a floating output).</p>")
    if c.worst:
        parts.append("<p>Worst elements:</p>")
        parts.append(
            _table(
                ["Index", "Obtained", "Expected", "Difference"],
                [[str(w.index), w.obtained, w.expected, w.difference] for w in c.worst],
            )
        )
    return "\n".join(parts)


def _evidence(x: Explanation) -> str:
    return "<br>".join(
        f"<code>{_e(f.path)}</code>: {_e(_fmt(f.a, f.path))} → {_e(_fmt(f.b, f.path))}" for f in x.fields
    )


def _fmt(value: Any, path: str = "") -> str:
    from envprint.render.text import fmt

    return fmt(value, path)


def render_html(report: Report) -> str:
    """The report as one HTML document (str): no script, no fetch, plots inline."""
    from envprint.render.text import VERDICT_WORDS, first_problem

    require_matplotlib()  # fail before any work when the extra is missing
    verdict = VERDICT_WORDS[report.verdict]
    badge = f"<span class='verdict' style='background:{_COLORS[report.verdict]}'>{_e(verdict)}</span>"
    reason = "" if report.passed else f"<p><b>{_e(first_problem(report))}</b></p>"
    outputs = [_output_section(c, c.name in report.random_at_inference) for c in report.outputs]
    body = [
        f"<h1>envprint verify: {badge}</h1>",
        reason,
        _table(None, _facts(report)),
        "<h2>Outputs</h2>",
        *(outputs or ["<p class='muted'>None compared: the probes were not run.</p>"]),
    ]
    # Everything the CLI prints, for what the page does not draw (positions, casts, signature, ...).
    body += ["<details><summary>The report as text</summary>", f"<pre>{_e(report.to_text())}</pre>", "</details>"]
    body += _causes_section(report)
    body += _investigation_section(report)
    body += [*_layers_section(report), *_environment_section(report)]
    return _page(f"envprint verify: {verdict}: {report.model}", body)


def _facts(report: Report) -> list[list[str]]:
    """The page's header table: the endpoint's facts, the record, the weights, the files, how the model differs."""
    from envprint.render.text import describe_differences, file_names, weights_words

    facts = [
        *fact_rows(report),
        ["fingerprint", report.fingerprint],
        ["weights", weights_words(report.identity)],
        ["record signature", report.record_signature],
    ]
    ident = report.identity
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
    if not report.probes_run:
        facts.append(["probes", "not run: this model does not take the recorded inputs"])
    return facts


def _causes_section(report: Report) -> list[str]:
    """The likely causes, ranked, with the evidence (saved → now) and the remedy of each."""
    body = ["<h2>Likely causes, most likely first</h2>"]
    if report.explanations:
        rows = [
            [str(i), f"<b>{_e(x.cause)}</b>", f"{x.score:.2f}", _e(x.reasoning), _evidence(x), _e(x.remedy)]
            for i, x in enumerate(report.explanations, 1)
        ]
        header = ["#", "cause", "score", "reasoning", "evidence (saved → now)", "remedy"]
        body.append(_table(header, rows, raw=True, cls="wide causes"))
    else:
        body.append("<p class='muted'>None: nothing to explain.</p>")
    return body


def _investigation_section(report: Report) -> list[str]:
    """verify --investigate: each child run's finding (none without it)."""
    if not report.investigation:
        return []
    rows = [[r.status, r.cause, r.setting, r.detail, r.remedy or ""] for r in report.investigation]
    return [
        "<h2>Investigation (child processes, one saved setting restored at a time)</h2>",
        _table(["status", "cause", "setting", "detail", "remedy"], rows, cls="wide"),
    ]


def _environment_section(report: Report) -> list[str]:
    """The environment's differences: those that can change numerics, the rest folded away."""
    from envprint.render.text import STATUS_MARK

    body = ["<h2>Environment differences (saved host → this host)</h2>"]
    env = report.environment
    if env.identical:
        return [*body, "<p>Same as at save.</p>"]
    numerics = [e for e in env.entries if e.numerics]
    rest = [e for e in env.entries if not e.numerics]

    def diff_rows(entries):
        return [[STATUS_MARK[e.status], e.path, _fmt(e.a, e.path), _fmt(e.b, e.path), e.topic] for e in entries]

    body.append(f"<p>{len(env.entries)} differences, {len(numerics)} can change numerics.</p>")
    if numerics:
        body.append(_table(["", "field", "saved", "now", "topic"], diff_rows(numerics)))
    if rest:
        body.append(
            f"<details><summary>{len(rest)} more that cannot change numerics</summary>"
            + _table(["", "field", "saved", "now", "topic"], diff_rows(rest))
            + "</details>"
        )
    return body


def _layers_section(report: Report) -> list[str]:
    """verify --locate: the first layer to depart, the error per layer drawn, and the table."""
    from envprint.render import layers

    if report.layers is None:
        return []
    drawn = layers.plot(report.layers, require_matplotlib())
    table = _table(layers.HEADER, layers.rows(report.layers), cls="wide") if report.layers.first is not None else ""
    return [
        "<h2>Layers</h2>",
        f"<p>{_e(layers.headline(report.layers))}</p>",
        f"<figure>{drawn}</figure>" if drawn else "",
        table,
    ]


def write_html(report: Report, path: str | Path) -> Path:
    """Write ``report`` as a self-contained HTML page at ``path`` (atomically); returns the path."""
    from envprint.record.atomic import write_output

    path = Path(path)
    text = render_html(report)
    try:
        write_output(path, text)
    except OSError as exc:
        from envprint.errors import UsageError

        raise UsageError(
            f"{path}: cannot write the HTML report ({exc.strerror or exc}); give a writable path"
        ) from None
    return path


def _page(title: str, body: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def render_error_html(document: ErrorDocument, model: str | None = None) -> str:
    """A page for a verify that could not run (verify's own error document): what stopped it, never no page."""
    err = document.error
    badge = "<span class='verdict' style='background:#9a6700'>could not verify</span>"
    facts = [["model", model or "(not named in the error document)"], ["exit code", f"{err.exit_code} ({err.kind})"]]
    body = [f"<h1>envprint verify: {badge}</h1>", f"<p><b>{_e(err.message)}</b></p>", _table(None, facts)]
    body.append("<p class='muted'>No outputs were compared: the verification did not run to the end.</p>")
    return _page(f"envprint verify: could not verify: {model or err.message}", body)


def render(result: Report | ErrorDocument, context: Any) -> str:
    """The "html" entry of the outputs table: a verify report, or the error that stopped verify."""
    if isinstance(result, ErrorDocument):
        return render_error_html(result, context.model)
    return render_html(result)
