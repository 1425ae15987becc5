"""Reading and writing records on disk.

Owns: canonical JSON (sorted keys, two-space indent, trailing newline), atomic writes, and the
schema-version check that runs *before* validation, so a record from a newer envprint says
"upgrade" instead of listing fields it does not know. Must not import TensorFlow.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import FingerprintError
from .models import FINGERPRINT_SCHEMA_VERSION, Fingerprint

# Upgraders from an older schema version to the next one: {old_version: function(dict) -> dict}.
# Version 1 is the first; the table grows with each version so old fingerprints stay readable.
MIGRATIONS: dict[int, Any] = {}


def canonical_json(model: BaseModel | dict) -> str:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers see old or new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def describe_validation_error(exc: ValidationError) -> str:
    """First failing field as a dotted path, plus how many more: one line."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"field '{where}': {first['msg']}{more}"


def parse_fingerprint(data: Any, source: str) -> Fingerprint:
    """Validate a decoded JSON document as a Fingerprint, migrating older schema versions."""
    if not isinstance(data, dict):
        raise FingerprintError(f"{source}: not a fingerprint (expected a JSON object, got {type(data).__name__})")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FingerprintError(
            f"{source}: not a fingerprint (no integer 'schema_version'); point envprint at a fingerprint.json it wrote"
        )
    if version > FINGERPRINT_SCHEMA_VERSION:
        raise FingerprintError(
            f"{source}: schema_version {version} is newer than this envprint reads ({FINGERPRINT_SCHEMA_VERSION}); "
            "upgrade envprint: pip install -U envprint"
        )
    while version < FINGERPRINT_SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise FingerprintError(f"{source}: schema_version {version} is not one envprint ever wrote")
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    try:
        return Fingerprint.model_validate(data)
    except ValidationError as exc:
        raise FingerprintError(f"{source}: invalid fingerprint: {describe_validation_error(exc)}") from None


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FingerprintError(f"{path}: no such file; give the path of a fingerprint.json") from None
    except IsADirectoryError:
        raise FingerprintError(f"{path}: is a directory; give the path of a fingerprint.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FingerprintError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FingerprintError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def read_fingerprint(path: Path) -> Fingerprint:
    return parse_fingerprint(read_json(path), str(path))


def write_fingerprint(path: Path, fingerprint: Fingerprint) -> None:
    atomic_write_text(path, canonical_json(fingerprint))
