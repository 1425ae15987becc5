"""Fail when a module or a function of envprint grows past what one reader can hold.

Limits: a module of more than 400 lines, a function of more than 60 (from its ``def`` line to its
last line). One that must stay whole says why where it stands, in one greppable line:

- a module: ``# size: <reason>`` among the comments before its first import or statement;
- a function: ``# size: <reason>`` on its ``def`` line (or its signature's other lines).

There is no allow-list: the offenders of the day the check came in were listed with their sizes,
the list could only shrink, and by 0.3.0 every one of them had been split.

Usage: python scripts/check_size.py [PATH ...]   (default: envprint)
Prints each offender as ``file:line: ...`` and exits 1; exits 0 when every module and function
is within its limit or marked.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MODULE_LIMIT = 400
FUNCTION_LIMIT = 60
MARKER = re.compile(r"#\s*size:(.*)$")


@dataclass(frozen=True)
class Size:
    path: str
    line: int
    what: str  # "module" or "function NAME"
    lines: int
    limit: int
    marker: str | None  # the reason given, "" when the marker has none, None when there is no marker


def _marker(lines: list[str], first: int, last: int) -> str | None:
    """The reason of the first ``# size:`` marker on lines first..last (1-based), if any."""
    for text in lines[first - 1 : last]:
        found = MARKER.search(text)
        if found:
            return found.group(1).strip()
    return None


def _functions(body: list[ast.stmt], prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        else:  # functions defined under if/try/with at module or class level
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _functions([n for n in inner if isinstance(n, ast.AST)], prefix)


def sizes(path: Path, shown: str) -> Iterator[Size]:
    """Every module and function of one file over its limit."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    tree = ast.parse(text, filename=str(path))
    if len(lines) > MODULE_LIMIT:
        body = tree.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        header_end = body[0].lineno - 1 if body else len(lines)
        yield Size(shown, 1, "module", len(lines), MODULE_LIMIT, _marker(lines, 1, header_end))
    for qualname, node in _functions(tree.body):
        n = (node.end_lineno or node.lineno) - node.lineno + 1
        if n > FUNCTION_LIMIT:
            signature_end = max(node.body[0].lineno - 1, node.lineno)
            yield Size(
                shown,
                node.lineno,
                f"function {qualname}",
                n,
                FUNCTION_LIMIT,
                _marker(lines, node.lineno, signature_end),
            )


def python_files(roots: list[str]) -> Iterator[tuple[Path, str]]:
    for root in roots:
        base = Path(root)
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for f in files:
            yield f, f.as_posix()


def check(roots: list[str]) -> int:
    problems: list[str] = []
    n_marked = 0
    for path, shown in python_files(roots):
        for s in sizes(path, shown):
            where = f"{s.path}:{s.line}: {s.what} has {s.lines} lines (limit {s.limit})"
            if s.marker:
                n_marked += 1
            elif s.marker == "":
                problems.append(f"{where}: its '# size:' marker gives no reason; say why it must stay whole")
            else:
                problems.append(f"{where}: split it, or say why it must stay whole with '# size: <reason>'")
    for p in problems:
        print(p)
    if problems:
        print(f"size: {len(problems)} problem(s); limits: {MODULE_LIMIT} lines a module, {FUNCTION_LIMIT} a function")
        return 1
    print(f"size: within limits ({n_marked} marked '# size:')")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["envprint"])
    args = parser.parse_args(argv)
    return check(args.paths)


if __name__ == "__main__":
    sys.exit(main())
