"""Every JSON document the CLI prints in the test suite is checked against schemas/ (issue 12).

``checked_invoke`` wraps ``CliRunner.invoke``; tests/conftest.py installs it for every test, so
any test that runs a command with ``--json`` also proves that stdout held exactly one JSON
document, valid under the schema of what that command prints (or the error document), and
that ``--json`` never printed nothing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
CHECKED: list[tuple[list[str], str]] = []  # (argv, schema file) of every document checked


def _schema(name: str) -> dict:
    matches = sorted(SCHEMAS.glob(f"{name}.v*.schema.json"))
    assert len(matches) == 1, f"expected one {name} schema in {SCHEMAS}, found {matches}"
    return json.loads(matches[0].read_text())


def schema_for(argv: list[str], document: Any) -> str:
    """Which schema a document printed by ``envprint *argv --json`` must satisfy."""
    if isinstance(document, dict) and document.get("verdict") == "error":
        return "error"
    command = next(a for a in argv if not a.startswith("-"))
    if command == "verify":
        return "diff" if "--preflight" in argv else "report"
    if command == "report":  # a saved verify report drawn again
        return "report"
    if command == "sweep":  # JSON Lines: what verify --json prints per model, then the summary
        return "sweep-summary" if document.get("kind") == "sweep_summary" else "report"
    return {"show": "fingerprint", "diff": "diff", "save": "save", "fleet": "fleet-report",
            "aggregate": "aggregate-report"}[command]  # fmt: skip


def check_json_output(argv: list[str], stdout: str, exit_code: int) -> None:
    assert stdout.strip(), f"envprint {' '.join(argv)} printed no JSON (exit {exit_code})"
    sweep = next(a for a in argv if not a.startswith("-")) == "sweep"
    if sweep and not stdout.startswith("{\n"):  # JSON Lines, unless the sweep could not start (one document)
        lines = stdout.splitlines()
        assert json.loads(lines[-1])["kind"] == "sweep_summary", lines[-1][:200]
        for line in lines:  # one document per line
            _check_document(argv, json.loads(line), exit_code if line is lines[-1] else None)
        return
    _check_document(argv, json.loads(stdout), exit_code)  # one document, nothing before or after it


def _check_document(argv: list[str], document: Any, exit_code: int | None) -> None:
    import jsonschema

    name = schema_for(argv, document)
    jsonschema.validate(document, _schema(name))
    if name == "error" and exit_code is not None:
        assert document["error"]["exit_code"] == exit_code, (document, exit_code)
    CHECKED.append((argv, name))


def checked_invoke(invoke: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(invoke)
    def wrapper(self: Any, app: Any, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        result = invoke(self, app, args, *rest, **kwargs)
        argv = [str(a) for a in (args or [])]
        if "--json" in argv and "--help" not in argv and "-h" not in argv:
            check_json_output(argv, result.stdout, result.exit_code)
        return result

    return wrapper
