"""verify --locate in words: the first layer to depart, and a small table of how the error grows.

Owns the sentences and the rows that text, Markdown and HTML share (``headline``, ``rows``) and the
HTML plot of the error per layer. Imports no other renderer (text.py and html.py import this one).
"""

from __future__ import annotations

import math
from typing import Any

from envprint.models import LayerLocation, LayerStep

NOT_TRACED_WORDS = {
    "not_recorded": "the record has no layer trace: re-save it with envprint save MODEL --layers",
    "not_keras": "the model verified is not a Keras model: its layers cannot be traced (a SavedModel without Keras "
    "metadata, TFLite); verify the .keras model to locate",
    "no_probes": "the probes were not run: nothing to trace",
    "layers_changed": "the model's layers are not the record's (names or order differ): nothing to compare layer by "
    "layer",
}
HEADER = ["#", "layer", "class", "op", "error / scale", "note"]
MAX_ROWS = 12


def _named(loc: LayerLocation, i: int) -> str:
    step = loc.steps[i]
    op = loc.ops.get(step.name)
    return f"{step.name} ({step.class_name}{f', op {op}' if op else ''})"


def headline(loc: LayerLocation) -> str:
    """One line: where the outputs first depart, or why the layers were not compared."""
    if loc.status == "not_traced":
        return f"Layers: not compared: {NOT_TRACED_WORDS.get(loc.not_traced or '', loc.not_traced)}"
    n = len(loc.steps)
    if loc.first is None:
        return f"Layers: all {n} bit-identical to the record"
    over = "none" if loc.first_over_budget is None else _named(loc, loc.first_over_budget)
    text = (
        f"Layers: first to depart: {_named(loc, loc.first)}, layer {loc.first + 1} of {n}; {loc.departed} of {n} depart"
    )
    branches = [_named(loc, i) for i in loc.origins if i != loc.first]
    if branches:
        text += f"; each branch's first besides: {', '.join(branches)}"
    return f"{text}; first over budget (error / scale > {loc.budget_rtol:g}): {over}"


def _note(loc: LayerLocation, s: LayerStep) -> str:
    notes = ["first"] if s.index == loc.first else ["branch first"] if s.index in loc.origins else []
    notes += ["weights changed"] if s.weights_changed else []
    notes += ["preprocessing"] if s.preprocessing else []
    notes += ["over budget"] if s.over_budget else []
    return ", ".join(notes)


def _error(s: LayerStep) -> str:
    if s.identical:
        return "identical"
    return "differs (not numeric)" if s.rel_error is None else f"{s.rel_error:.2e}"


def shown(loc: LayerLocation) -> list[LayerStep]:
    """The rows worth a table: the layer before the first, the first, each branch's first, then evenly to the end."""
    if loc.first is None:
        return []
    keep = {max(loc.first - 1, 0), loc.first, *loc.origins, len(loc.steps) - 1}
    if loc.first_over_budget is not None:
        keep.add(loc.first_over_budget)
    after = range(loc.first + 1, len(loc.steps))
    room = max(MAX_ROWS - len(keep), 0)
    keep.update(after[:: max(1, math.ceil(len(after) / room))] if room and after else [])
    return [loc.steps[i] for i in sorted(keep)]


def rows(loc: LayerLocation) -> list[list[str]]:
    return [
        [str(s.index + 1), s.name, s.class_name, loc.ops.get(s.name, ""), _error(s), _note(loc, s)] for s in shown(loc)
    ]


def lines(loc: LayerLocation) -> list[str]:
    """The headline, then the table as aligned text (two spaces between columns)."""
    table = [HEADER, *rows(loc)]
    if len(table) == 1:
        return ["", headline(loc)]
    widths = [max(len(r[c]) for r in table) for c in range(len(HEADER))]
    out = ["", headline(loc)]
    out += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return out


def plot(loc: LayerLocation, mpl: Any) -> str | None:
    """The error / scale of every layer, log scale, the budget dashed; an <svg> (None: nothing departs)."""
    from matplotlib.figure import Figure

    points = [(s.index + 1, s.rel_error) for s in loc.steps if s.rel_error]
    if loc.first is None or not points:
        return None
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "envprint", "font.size": 9}):
        fig = Figure(figsize=(11, 3.6), layout="constrained")
        ax = fig.subplots()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", color="#4c72b0", linewidth=0.8)
        ax.set_yscale("log")
        if loc.budget_rtol:
            ax.axhline(loc.budget_rtol, color="#cf222e", linestyle="--", label=f"budget {loc.budget_rtol:g}")
        ax.axvline(loc.first + 1, color="#656d76", linestyle=":", label=f"first to depart: {loc.steps[loc.first].name}")
        ax.legend(loc="lower right")
        ax.set_xlabel("layer (topological order)")
        ax.set_ylabel("sampled |error| / layer's scale")
        ax.set_title(f"Error per layer ({loc.departed} of {len(loc.steps)} depart)")
        import io

        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
        text = buf.getvalue()
        return text[text.index("<svg") :]
