"""The record format: fingerprint.json as bytes, JSON and a validated model.

Owns: canonical JSON (sorted keys, two-space indent, trailing newline), the schema-version check
that runs *before* validation, so a record from a newer envprint says "upgrade" instead of
listing fields it does not know, and the migrations of older versions. Where a record lives and
how its directory is written and read as a whole is ``sidecar``'s job.
Must not import TensorFlow.

Every input here may be hostile (a record copied from elsewhere, edited, truncated): whatever
the bytes, reading ends in a FingerprintError of one line or a valid record, never another
exception, and a size cap keeps a runaway file (``/dev/zero``) from reading forever.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from envprint import formats
from envprint.errors import FingerprintError, one_line, open_user_file
from envprint.models import FINGERPRINT_SCHEMA_VERSION, REPORT_SCHEMA_VERSION, Fingerprint, Report
from envprint.record.sidecar import (
    FINGERPRINT_FILE,
    SAVEDMODEL_SIDECAR,
    atomic_write_text,
    default_sidecar,
    locate_fingerprint,
)

# Upgraders from an older schema version to the next one: {old_version: function(dict) -> dict}.
# Version 1 is the first; the table grows with each version so old fingerprints stay readable.
MIGRATIONS: dict[int, Any] = {}


def canonical_json(model: BaseModel | dict) -> str:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# A fingerprint is a few hundred KiB at most (the installed-package list); anything far larger
# is not one, and reading it whole could exhaust memory (or never end: /dev/zero).
MAX_FINGERPRINT_BYTES = 64 << 20


def describe_validation_error(exc: ValidationError) -> str:
    """First failing field as a dotted path, plus how many more: one line."""
    errors = exc.errors()
    first = errors[0]
    # Keys come from the file: a hostile one may hold a newline or be a megabyte long.
    where = ".".join(one_line(str(p), 60) for p in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"field '{where}': {one_line(first['msg'], 200)}{more}"


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


def _binary_kind(raw: bytes, source: str) -> str | None:
    """What a binary file given for a record is, from its first bytes: a model or NumPy data (None: unknown)."""
    if raw.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    fmt = formats.sniff(raw[:16])
    if raw.startswith(b"PK\x03\x04"):  # a zip: .keras models and .npz archives both are
        if source.endswith(".npz"):
            return "a NumPy .npz archive (probes or reference outputs)"
        return fmt.described if fmt is not None and source.endswith(fmt.suffixes) else None
    return fmt.described if fmt is not None else None


def decode_json(raw: bytes, source: str) -> Any:
    """The JSON document in ``raw``, or FingerprintError (one line) whatever the bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = _binary_kind(raw, source)
        if kind and "model" in kind:
            raise FingerprintError(
                f"{source}: {kind}, not a fingerprint; a model's record is MODEL.envprint/fingerprint.json "
                "(MODEL/assets.extra/envprint/ in a SavedModel), written by 'envprint save MODEL'"
            ) from None
        if kind:
            raise FingerprintError(
                f"{source}: {kind}, not a fingerprint; give the fingerprint.json of the same record"
            ) from None
        raise FingerprintError(
            f"{source}: not UTF-8 text (byte {exc.start}); give the path of a fingerprint.json"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FingerprintError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise FingerprintError(f"{source}: not a fingerprint (JSON nested too deeply)") from None
    except ValueError as exc:  # an integer of more than sys.get_int_max_str_digits() digits
        raise FingerprintError(f"{source}: not valid JSON ({one_line(str(exc), 120)})") from None


def read_json(path: Path) -> Any:
    path = Path(path)
    with open_user_file(path, FingerprintError, "give the path of a fingerprint.json") as fh:
        try:
            raw = fh.read(MAX_FINGERPRINT_BYTES + 1)
        except OSError as exc:
            raise FingerprintError(f"{path}: cannot be read ({one_line(exc.strerror or exc)})") from None
    if len(raw) > MAX_FINGERPRINT_BYTES:
        raise FingerprintError(f"{path}: larger than {MAX_FINGERPRINT_BYTES >> 20} MiB, not a fingerprint")
    return decode_json(raw, str(path))


def record_path(path: Path) -> Path:
    """Where a record given as ``path`` is: a fingerprint.json, its sidecar, or a model with its record.

    ``diff`` and ``env-export`` take a record; given the model instead (a .keras file with
    MODEL.envprint/ beside it, a SavedModel with assets.extra/envprint/ inside), they read its record.
    """
    path = Path(path)
    inside = path / SAVEDMODEL_SIDECAR / FINGERPRINT_FILE
    if path.is_dir() and not (path / FINGERPRINT_FILE).exists():
        if inside.exists():
            return inside
        fmt = formats.of_directory(path)
        if fmt is not None:
            raise FingerprintError(
                f"{path}: {fmt.described} without a record ({inside} is missing); run 'envprint save {path}' "
                "on the training host"
            )
    beside = default_sidecar(path) / FINGERPRINT_FILE
    if path.is_file() and path.name != FINGERPRINT_FILE and beside.exists():
        return beside
    return path


def read_fingerprint(path: Path) -> Fingerprint:
    """The fingerprint at ``path``: a fingerprint.json, the sidecar directory that holds one, or its model."""
    path = locate_fingerprint(None, record_path(path))
    return parse_fingerprint(read_json(path), str(path))


def parse_fingerprint_bytes(raw: bytes, source: str) -> Fingerprint:
    """A fingerprint from the exact bytes of a fingerprint.json (the bytes a signature covers)."""
    return parse_fingerprint(decode_json(raw, source), source)


def write_fingerprint(path: Path, fingerprint: Fingerprint) -> None:
    atomic_write_text(path, canonical_json(fingerprint))


def read_report(path: Path) -> Report:
    """A report that ``envprint verify --json`` wrote, validated (``save --tolerance-from`` reads one)."""
    path = Path(path)
    with open_user_file(
        path, FingerprintError, "give a report saved with: envprint verify MODEL --json > REPORT.json"
    ) as fh:
        raw = fh.read(MAX_FINGERPRINT_BYTES + 1)
    data = decode_json(raw, str(path))
    if not isinstance(data, dict) or "verdict" not in data or "outputs" not in data:
        raise FingerprintError(f"{path}: not an envprint verify report (expected the JSON of verify --json)")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != REPORT_SCHEMA_VERSION:
        raise FingerprintError(
            f"{path}: not a verify report of schema version {REPORT_SCHEMA_VERSION} (found {one_line(repr(version), 40)}); "
            "write one with: envprint verify MODEL --json > report.json"
        )
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        raise FingerprintError(f"{path}: invalid report: {describe_validation_error(exc)}") from None
