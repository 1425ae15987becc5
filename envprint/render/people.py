"""The "text" entry of the outputs table: every result a command makes, in words for people.

Dispatches to ``render.text`` (verify's report), ``render.fingerprint`` (save, show, diff) and
``render.many`` (sweep, fleet, aggregate); kept apart from them so that none imports its caller.
"""

from __future__ import annotations

import io
from typing import Any

from envprint.render import many
from envprint.render.fingerprint import render_diff, render_fingerprint, render_save
from envprint.render.text import Writer, render_report


def render(result: Any, context: Any) -> str:
    """The "text" entry of the outputs table: what people read, for any result a command makes."""
    buffer = io.StringIO()
    out = Writer(buffer)
    kind = context.kind
    if kind == "report":
        render_report(result, out)
    elif kind in ("diff", "preflight"):
        render_diff(result, out, show_all=context.show_all, model_name=context.model_name)
    elif kind == "save":
        render_save(result, out)
    elif kind == "fingerprint":
        render_fingerprint(result, out, show_all=context.show_all)
    elif kind == "sweep":
        many.render_sweep_summary(result, out)
    elif kind == "fleet":
        many.render_fleet(result, out)
    elif kind == "aggregate":
        many.render_aggregate(result, out)
    elif kind == "error":
        out.line(f"envprint: error: {result.error.message}")
    else:
        raise ValueError(f"no text for {kind!r}")
    return buffer.getvalue()
