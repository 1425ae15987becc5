"""The record format: fingerprint.json as bytes, JSON and a validated model.

Owns: canonical JSON (sorted keys, two-space indent, trailing newline), the schema-version check
that runs *before* validation (a newer major is refused with the install that reads it; a newer
minor is read for what this envprint knows, its unknown fields kept and named in one warning),
and the migrations of older versions. Where a record lives and
how its directory is written and read as a whole is ``sidecar``'s job.
Must not import TensorFlow.

Every input here may be hostile (a record copied from elsewhere, edited, truncated): whatever
the bytes, reading ends in a FingerprintError of one line or a valid record, never another
exception, and a size cap keeps a runaway file (``/dev/zero``) from reading forever.
"""

from __future__ import annotations

import json
import types
import typing
import warnings
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from envprint import formats
from envprint.errors import FingerprintError, one_line, open_user_file
from envprint.models import FINGERPRINT_SCHEMA_VERSION, REPORT_SCHEMA_VERSION, ErrorDocument, Fingerprint, Report
from envprint.models.base import FINGERPRINT_SCHEMA_MINOR, REPORT_SCHEMA_MINOR, Record
from envprint.record.atomic import atomic_write_text
from envprint.record.sidecar import FINGERPRINT_FILE, SAVEDMODEL_SIDECAR, default_sidecar, locate_fingerprint

# Upgraders from an older schema version to the next one: {old_version: function(dict) -> dict}.
# Version 1 is the first; the table grows with each version so old fingerprints stay readable.
MIGRATIONS: dict[int, Any] = {}


def canonical_json(model: BaseModel | dict) -> str:
    """The document as envprint writes it; a newer-minor document read here keeps the fields it did not know."""
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    if isinstance(model, Record) and model._unknown:
        data = _with_unknown(data, model._unknown)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class NewerSchemaWarning(UserWarning):
    """A document written by a newer minor schema was read: the fields it added were not checked.

    The message is one line; the command line prints it on stderr, a library caller may turn it
    into an error with ``warnings.simplefilter("error", NewerSchemaWarning)``.
    """


# Reading across releases (README: "Compatibility between envprint releases"). A document names
# its schema as schema_version (major) and schema_minor (0 when absent: written before 0.2.0).
# Newer major: refused, naming both versions. Newer minor: the keys this envprint does not know
# are set aside, the rest is validated as strictly as ever (a known field of the wrong type is
# still invalid), the set-aside keys ride on the model (Record._unknown) so writing it again
# keeps them, and one NewerSchemaWarning names them. Same or older minor: strict, as always.
M = TypeVar("M", bound=Record)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (X, X | None, list[X], dict[str, X], ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None or origin is typing.Literal:
        return []
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        args = args[:1]
    elif origin is dict:
        args = args[1:]
    return [m for a in args for m in _models_in(a)]


def _container(annotation: Any) -> type | None:
    """list or dict where a field holds its models in one (``list[X] | None`` too), else None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _container(inner[0]) if len(inner) == 1 else None
    return origin if origin in (list, dict) else None


KeyPath = tuple[str | int, ...]  # where a key sits in a document: keys and list indices


def _split_unknown(model: type[BaseModel], data: Any, at: KeyPath, unknown: dict[KeyPath, Any]) -> Any:
    """``data`` without the keys ``model`` does not know, each moved into ``unknown`` by where it was."""
    if not isinstance(data, dict):
        return data
    known: dict[str, Any] = {}
    for key, value in data.items():
        where = (*at, key)
        field = model.model_fields.get(key)
        if field is None:
            unknown[where] = value
            continue
        inner = _models_in(field.annotation)
        # Only where a field holds one kind of model is it clear which of its keys are unknown.
        if len(inner) == 1:
            container = _container(field.annotation)
            if container is list and isinstance(value, list):
                value = [_split_unknown(inner[0], v, (*where, i), unknown) for i, v in enumerate(value)]
            elif container is dict and isinstance(value, dict):
                value = {k: _split_unknown(inner[0], v, (*where, k), unknown) for k, v in value.items()}
            elif container is None:
                value = _split_unknown(inner[0], value, where, unknown)
        known[key] = value
    return known


def _with_unknown(data: dict, unknown: dict[KeyPath, Any]) -> dict:
    """``data`` (a model dumped as JSON) with the set-aside keys put back where they were."""
    data = json.loads(json.dumps(data))  # a deep copy: the dump may share objects
    for (*parents, last), value in unknown.items():
        node: Any = data
        for part in parents:
            if isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            elif isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            else:
                node = None
            if node is None:
                break
        if isinstance(node, dict) and isinstance(last, str):
            node[last] = value
    return data


def _newer_minor_note(source: str, found: str, reads: str, unknown: dict[KeyPath, Any]) -> str:
    names = sorted(".".join(str(p) for p in where) for where in unknown)
    shown = ", ".join(one_line(n, 60) for n in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    many = len(names) > 1
    return (
        f"{source} was written by a newer envprint (schema {found}, this one reads {reads}): "
        f"field{'s' if many else ''} {shown} {'were' if many else 'was'} not checked; pip install -U envprint to check them"
    )


def _minor_of(data: dict, source: str, what: str) -> int:
    minor = data.get("schema_minor", 0)
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        raise FingerprintError(f"{source}: invalid {what}: field 'schema_minor': expected a whole number >= 0")
    return minor


def validate_versioned(model: type[M], data: dict, source: str, what: str, major: int, minor: int) -> M:
    """``data`` (whose major is ``major``) as ``model``: strict up to minor ``minor``, tolerant above it."""
    found = _minor_of(data, source, what)
    data = {**data, "schema_minor": found}
    unknown: dict[KeyPath, Any] = {}
    if found > minor:
        data = _split_unknown(model, data, (), unknown)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise FingerprintError(f"{source}: invalid {what}: {describe_validation_error(exc)}") from None
    if unknown:  # a newer minor that holds only what this envprint knows was checked in full
        result._unknown = unknown
        warnings.warn(
            _newer_minor_note(source, f"{major}.{found}", f"{major}.{minor}", unknown), NewerSchemaWarning, stacklevel=3
        )
    return result


def _version_text(data: dict) -> str:
    minor = data.get("schema_minor", 0)
    return f"{data.get('schema_version')}.{minor if isinstance(minor, int) else '?'}"


def newer_major_message(source: str, what: str, found: str, major: int, minor: int, writer: Any = None) -> str:
    """One line refusing a document of a newer major schema, with the install that reads it."""
    return (
        f"{source}: {what} written by a newer envprint (schema {one_line(found, 30)}, this one reads "
        f"{major}.{minor}); read it with a newer envprint: {_install_for(writer)}"
    )


def _install_for(writer: Any) -> str:
    """``pip install 'envprint>=WRITER'`` when the writer's release is known and newer than this one."""
    from packaging.version import InvalidVersion, Version

    from envprint._version import __version__

    try:
        if isinstance(writer, str) and len(writer) <= 40 and Version(writer) > Version(__version__):
            return f"pip install 'envprint>={Version(writer).public}'"
    except InvalidVersion:
        pass
    return "pip install -U envprint"


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
            newer_major_message(
                source,
                "a fingerprint",
                _version_text(data),
                FINGERPRINT_SCHEMA_VERSION,
                FINGERPRINT_SCHEMA_MINOR,
                data.get("envprint_version"),
            )
        )
    while version < FINGERPRINT_SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise FingerprintError(f"{source}: schema_version {version} is not one envprint ever wrote")
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return validate_versioned(
        Fingerprint, data, source, "fingerprint", FINGERPRINT_SCHEMA_VERSION, FINGERPRINT_SCHEMA_MINOR
    )


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
    return parse_report(data, str(path))


def parse_report(data: dict, source: str) -> Report:
    """A decoded verify report (a dict with its verdict) validated across releases, as fingerprints are."""
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > REPORT_SCHEMA_VERSION:
        raise FingerprintError(
            newer_major_message(
                source,
                "a verify report",
                _version_text(data),
                REPORT_SCHEMA_VERSION,
                REPORT_SCHEMA_MINOR,
                data.get("envprint_version"),
            )
        )
    if version != REPORT_SCHEMA_VERSION:
        raise FingerprintError(
            f"{source}: not a verify report of schema version {REPORT_SCHEMA_VERSION} (found {one_line(repr(version), 40)}); "
            "write one with: envprint verify MODEL --json > report.json"
        )
    return validate_versioned(Report, data, source, "report", REPORT_SCHEMA_VERSION, REPORT_SCHEMA_MINOR)


def read_report_or_error(path: Path) -> Report | ErrorDocument:
    """``read_report``, or the error document ``envprint verify --json`` writes when it could not verify."""
    path = Path(path)
    with open_user_file(
        path, FingerprintError, "give a report saved with: envprint verify MODEL --json > REPORT.json"
    ) as fh:
        raw = fh.read(MAX_FINGERPRINT_BYTES + 1)
    data = decode_json(raw, str(path))
    if isinstance(data, dict) and data.get("verdict") == "error" and "error" in data:
        try:
            return ErrorDocument.model_validate(data)
        except ValidationError as exc:
            raise FingerprintError(f"{path}: invalid error document: {describe_validation_error(exc)}") from None
    return read_report(path)
