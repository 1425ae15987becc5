"""Reading and writing records on disk.

Owns: canonical JSON (sorted keys, two-space indent, trailing newline), atomic writes, and the
schema-version check that runs *before* validation, so a record from a newer envprint says
"upgrade" instead of listing fields it does not know. Must not import TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import FingerprintError
from .models import FINGERPRINT_SCHEMA_VERSION, Fingerprint

# Upgraders from an older schema version to the next one: {old_version: function(dict) -> dict}.
# Version 1 is the first; the table grows with each version so old fingerprints stay readable.
MIGRATIONS: dict[int, Any] = {}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_staging_dir(target: Path) -> Path:
    """A temporary directory beside ``target`` with the permissions a plain mkdir would give."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; a serving user must be able to read the record
    return staging


def canonical_json(model: BaseModel | dict) -> str:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers see old or new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the record a plain file's permissions
            os.fchmod(fd, 0o666 & ~_umask())
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


# --------------------------------------------------------------------------- the sidecar

SIDECAR_SUFFIX = ".envprint"
SAVEDMODEL_SIDECAR = Path("assets.extra") / "envprint"
FINGERPRINT_FILE = "fingerprint.json"
PROBES_FILE = "probes.npz"
REFERENCE_FILE = "reference.npz"


def default_sidecar(model_path: Path) -> Path:
    """Where the record lives: beside a file model, inside a SavedModel directory.

    ``model.keras`` -> ``model.keras.envprint/``; ``export/`` -> ``export/assets.extra/envprint/``,
    where TF Serving keeps its warm-up data, so that copying the export carries the record.
    """
    model_path = Path(model_path)
    if model_path.is_dir():
        return model_path / SAVEDMODEL_SIDECAR
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


def sidecar_exclusions(model_path: Path, sidecar: Path) -> list[str]:
    """Paths inside the model directory that are the record, not the model (not digested)."""
    try:
        return [Path(sidecar).resolve().relative_to(Path(model_path).resolve()).as_posix()]
    except ValueError:
        return []


def publish_directory(staging: Path, target: Path, force: bool) -> None:
    """Move a complete staging directory into place; readers see the old record or the new, never a mix.

    Without ``force`` an existing record is never replaced. With it, the old record is moved
    aside, the new one renamed in, and only then the old one removed.
    """
    target = Path(target)
    if target.exists() and not force:
        raise FingerprintError(f"{target}: a fingerprint already exists; pass --force to replace it")
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
    try:
        os.rename(staging, target)
    except OSError as exc:
        if backup is not None:
            os.replace(backup, target)
        if target.exists():  # another save finished first
            raise FingerprintError(
                f"{target}: another envprint save wrote this fingerprint at the same time; rerun with --force to replace it"
            ) from None
        raise FingerprintError(
            f"{target}: cannot write the fingerprint ({exc.strerror or exc}); check the directory"
        ) from None
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
