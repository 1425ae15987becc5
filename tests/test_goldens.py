"""Golden files of what envprint renders (pytest-regressions): text, Markdown and the HTML page's
structure, from reports built of fixed data (tests/golden_reports.py), so nothing depends on the
host, the clock or a path. After an intended change of wording, rewrite them with
``python -m pytest tests/test_goldens.py --force-regen`` and review the diff of tests/test_goldens/."""

from __future__ import annotations

import re

import pytest
from golden_reports import identical_report, mismatch_report

from envprint.models import ErrorDocument, ErrorInfo
from envprint.render import markdown
from envprint.render.outputs import Context, canonical_json

REPORTS = {"mismatch": mismatch_report, "identical": identical_report}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_text_report(name, file_regression):
    file_regression.check(REPORTS[name]().to_text(), basename=f"text_{name}", extension=".txt")


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_markdown_report(name, file_regression):
    file_regression.check(markdown.report_markdown(REPORTS[name]()), basename=f"markdown_{name}", extension=".md")


def test_markdown_error(file_regression):
    document = ErrorDocument(error=ErrorInfo(exit_code=4, kind="model", message="m.keras: no such file"))
    file_regression.check(
        markdown.render(document, Context(model="m.keras")), basename="markdown_error", extension=".md"
    )


def test_json_report(file_regression):
    file_regression.check(canonical_json(mismatch_report()), basename="json_mismatch", extension=".json")


def _structure(page: str) -> str:
    """The page without what matplotlib draws (its SVG differs by version): tags, text and tables stay."""
    page = re.sub(r"<svg.*?</svg>", "<svg>…</svg>", page, flags=re.S)
    return re.sub(r"<style>.*?</style>", "<style>…</style>", page, flags=re.S)


def test_html_structure(file_regression):
    pytest.importorskip("matplotlib")
    from envprint.render.html import render_error_html, render_html

    file_regression.check(_structure(render_html(mismatch_report())), basename="html_mismatch", extension=".html")
    document = ErrorDocument(error=ErrorInfo(exit_code=4, kind="model", message="m.keras: no such file"))
    file_regression.check(render_error_html(document, "m.keras"), basename="html_error", extension=".html")


def test_the_docs_show_the_markdown_golden():
    from pathlib import Path

    root = Path(__file__).resolve().parent
    page = (root.parent / "docs" / "concepts" / "reports.md").read_text(encoding="utf-8")
    assert (root / "test_goldens" / "markdown_mismatch.md").is_file()
    # pymdownx.snippets embeds the golden file itself when the site is built (mkdocs build --strict
    # fails on a snippet whose file is missing): the page cannot drift from it.
    assert '```markdown\n--8<-- "tests/test_goldens/markdown_mismatch.md"\n```\n' in page
