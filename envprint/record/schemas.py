"""The JSON Schema files of every record envprint persists or emits, written or checked in a folder.

Owns ``write_schemas`` (what ``envprint schema --out DIR`` writes) and ``stale_schemas`` (what
``--check`` compares). The schemas themselves come from the pydantic models (``models.json_schemas``).
"""

from __future__ import annotations

from pathlib import Path

from envprint.errors import UsageError


def _documents() -> dict[str, str]:
    from envprint.models import json_schemas
    from envprint.record.store import canonical_json

    return {name: canonical_json(document) for name, document in json_schemas().items()}


def write_schemas(out: str | Path) -> list[Path]:
    """Write each schema into ``out`` (created if needed), atomically; the files written, in order."""
    from envprint.record.atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in _documents().items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written


def stale_schemas(out: str | Path) -> list[Path]:
    """The schema files in ``out`` that are missing or differ from the models (empty: up to date). Writes nothing."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(
            f"{out}: no such folder, so nothing to check; run 'envprint schema --check' in a checkout of "
            "envprint, or pass --out DIR"
        )
    return [
        out / name
        for name, text in _documents().items()
        if not (out / name).exists() or (out / name).read_text(encoding="utf-8") != text
    ]
