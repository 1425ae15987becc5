"""The documentation's pages (README.md and docs/**/*.md) and their fenced code blocks, for the tests that run them.

A block's fence gives its language and, after it, an optional name (```python mlflow-flavour).
The last non-blank line above a fence may say who runs the block, which tests/test_docs.py checks:
``<!-- run-by: tests/test_x.py -->`` (that test reads the block through this module, and names
the page), or ``<!-- not-run: why -->`` (used sparingly: a block that cannot run as written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^( *)```(\S*)(?: +(\S+))?\s*$")
MARKER = re.compile(r"^\s*<!-- (run-by|not-run): (.+?) -->\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository's root: README.md, docs/how-to/mlflow.md
    line: int  # of the opening fence, 1-based
    heading: str  # the title of the nearest heading above it, any level
    lang: str
    name: str  # the word after the language, or ""
    code: str  # dedented as far as the fence is indented (a block in a list item)
    marker: tuple[str, str] | None  # ("run-by", "tests/test_x.py") or ("not-run", "why")


def pages() -> list[str]:
    """Every page of the documentation, relative to the repository's root."""
    return ["README.md", *(str(p.relative_to(ROOT)) for p in sorted(DOCS.rglob("*.md")))]


def blocks(page: str) -> list[Block]:
    """The fenced code blocks of ``page`` (README.md or docs/...), in order."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    found, heading, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        match = FENCE.match(line)
        if not match:
            i += 1
            continue
        indent, end = len(match.group(1)), i + 1
        while not re.match(rf"^ {{{indent}}}```\s*$", lines[end]):
            end += 1
        above = next((x for x in reversed(lines[:i]) if x.strip()), "")
        mark = MARKER.match(above)
        code = "".join(x[indent:] + "\n" for x in lines[i + 1 : end])
        found.append(
            Block(page, i + 1, heading, match.group(2), match.group(3) or "", code, mark.groups() if mark else None)
        )
        i = end + 1
    return found


def block(page: str, heading: str, fence: str) -> str:
    """The one block fenced ``fence`` ('bash', 'python mlflow') under the heading titled ``heading`` in ``page``."""
    lang, _, name = fence.partition(" ")
    (found,) = [b.code for b in blocks(page) if (b.heading, b.lang, b.name) == (heading, lang, name)]
    return found
