"""The record verify and preflight read: located after the model, read from one snapshot, and checked.

Owns: where the record is (``locate_after_model``: the model's path checked first, then its record
and the format to load), the fingerprint read with its signature judged on the exact bytes parsed
(``read_record``), and the sidecar's arrays checked against the fingerprint (``sidecar_arrays``:
names, shapes, sha256). ``read_checked`` reads all of it, with the layer samples, from one snapshot
(``sidecar.read_consistent``); ``check/endpoint/`` reads the record through it too. A record that
cannot be trusted (a bad signature, arrays that do not match the fingerprint) is a FingerprintError;
a sidecar file whose bytes fit but differ from their sha256 is reported as edited. TensorFlow-free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint import formats
from envprint.errors import FingerprintError, ModelError, one_line
from envprint.models import Fingerprint, ModelIdentity
from envprint.record import sidecar, signing, store


def _describe_arrays(arrays: Mapping[str, Any]) -> str:
    return ", ".join(f"{one_line(str(k), 40)} {tuple(v)}" for k, v in sorted(arrays.items())) or "nothing"


_HOST_ONLY = (
    "{fp_path}: a fingerprint of a host, not of a model (no probes recorded); "
    "verify needs the fingerprint.json that 'envprint save MODEL' wrote"
)


def recorded_model(fp: Fingerprint, fp_path: Path) -> ModelIdentity:
    """The model a record was saved from; a fingerprint of a host alone has none to verify."""
    if fp.model is None:
        raise FingerprintError(_HOST_ONLY.format(fp_path=fp_path))
    return fp.model


def sidecar_arrays(
    fp: Fingerprint, fp_path: Path, reader: sidecar.RecordReader
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Probe inputs and reference outputs, and the names of sidecar files whose digest changed.

    A file that is missing, unreadable, corrupt, or whose arrays are not the names and shapes the
    fingerprint records is a FingerprintError: there is nothing to compare against. Bytes that load
    and fit but differ from the recorded sha256 are reported as edited (a mismatch, not an error).
    """
    from envprint.record.npz import load_arrays

    recorded_model(fp, fp_path)
    if fp.probe_arrays is None or fp.reference_arrays is None:
        raise FingerprintError(_HOST_ONLY.format(fp_path=fp_path))
    changed, arrays = [], []
    for field, record in (("probe_arrays", fp.probe_arrays), ("reference_arrays", fp.reference_arrays)):
        if not sidecar.plain_file_name(record.file):
            raise FingerprintError(
                f"{fp_path}: field '{field}.file' is {one_line(repr(record.file), 80)}, not a file name inside "
                "the sidecar; the record was edited: re-save it on the training host"
            )
        path = fp_path.parent / record.file
        data = reader.read(record.file)
        if data is None:
            raise FingerprintError(f"{path}: missing from the sidecar; copy the whole {fp_path.parent.name}/ directory")
        if hashlib.sha256(data).hexdigest() != record.sha256:
            changed.append(record.file)
        loaded = load_arrays(path, data)
        obtained = {k: list(v.shape) for k, v in loaded.items()}
        if obtained != record.arrays:
            raise FingerprintError(
                f"{path}: arrays do not match {fp_path.name}: expected {_describe_arrays(record.arrays)}, "
                f"obtained {_describe_arrays(obtained)}; copy the whole {fp_path.parent.name}/ directory again "
                "or re-save the record"
            )
        arrays.append(loaded)
    kept = fp.variants.arrays if fp.variants is not None else None
    if kept is not None:  # save --keep-variant-outputs: checked like the rest, not loaded
        data = reader.read(kept.file) if sidecar.plain_file_name(kept.file) else None
        if data is None or hashlib.sha256(data).hexdigest() != kept.sha256:
            changed.append(kept.file)
    return arrays[0], arrays[1], changed


def read_record(
    fp_path: Path, reader: sidecar.RecordReader, *, signing_key: bytes | str | None, require_signature: bool
) -> tuple[Fingerprint, signing.SignatureCheck]:
    """The fingerprint at ``fp_path``, its signature judged on the exact bytes that are then parsed."""
    raw = reader.read(fp_path.name, limit=store.MAX_FINGERPRINT_BYTES)
    if raw is None:
        raise FingerprintError(f"{fp_path}: no such file; give the path of a fingerprint.json")
    if signing_key or require_signature:
        signature = reader.read(signing.SIGNATURE_FILE, limit=signing.MAX_SIGNATURE_BYTES)
    else:  # not checked: only whether there is one, for the report's note
        signature = b"" if reader.exists(signing.SIGNATURE_FILE) else None
    checked = signing.check(raw, signature, signing_key, required=require_signature, fingerprint_path=fp_path)
    return store.parse_fingerprint_bytes(raw, str(fp_path)), checked


def locate_after_model(
    model_path: Path | None, fmt: str | None, fingerprint: str | Path | None
) -> tuple[Path, str | None]:
    """The model's format, then its record: (fingerprint.json, the format to load, None for the record's).

    The model is checked first, so that a path verify could never load is a ModelError (exit 4)
    whatever the record: missing, a directory without saved_model.pb, a file whose suffix names
    no format. The format is the one given, else the one the path says (as for save); a file of
    an unusual name (``model.bin``) takes the format its first bytes say, else its record's, if it
    has a record. TensorFlow-free (``detect_format`` reads names and first bytes only), so
    ``preflight`` may call it.
    """
    from envprint._tf import loading

    if model_path is not None:
        sidecar.require_model(model_path)  # before the record, even with --fingerprint given
    if model_path is None or fmt is not None:
        return sidecar.locate_fingerprint(model_path, fingerprint), fmt
    try:
        detected: str | None = loading.detect_format(model_path)
    except ModelError as unknown:
        if not model_path.is_file():
            raise
        try:
            fp_path = sidecar.locate_fingerprint(model_path, fingerprint)
        except FingerprintError:  # no record beside it: nothing says what the file is
            raise unknown from None
        if not fp_path.exists():
            raise
        # An unusual name: the file's first bytes say its format (an HDF5 file called model.bin
        # is loaded as one, whatever the record's format); failing that, the record's format.
        content = formats.by_content(model_path)
        detected = content.id if content is not None else None
    return sidecar.locate_fingerprint(model_path, fingerprint), detected


def read_checked(fp_path: Path, signing_key: bytes | str | None = None, require_signature: bool = False):
    """(fingerprint, signature check, probes, reference, edited sidecar files, layer samples or None), from one
    snapshot of the record."""
    from envprint.check.locate import read_samples

    def read(reader: sidecar.RecordReader):  # one snapshot, even if a save replaces the record meanwhile
        saved, trust = read_record(fp_path, reader, signing_key=signing_key, require_signature=require_signature)
        probes, reference, changed = sidecar_arrays(saved, fp_path, reader)
        samples, layers_edited = read_samples(saved, fp_path, reader)
        if layers_edited and saved.layer_trace is not None:  # edited implies traced: read_samples says so
            changed.append(saved.layer_trace.arrays.file)
        return saved, trust, probes, reference, changed, samples

    return sidecar.read_consistent(fp_path.parent, read)


def read_fingerprint_only(fp_path: Path, signing_key: bytes | str | None, require_signature: bool) -> Fingerprint:
    def read(reader: sidecar.RecordReader) -> Fingerprint:
        return read_record(fp_path, reader, signing_key=signing_key, require_signature=require_signature)[0]

    return sidecar.read_consistent(fp_path.parent, read)
