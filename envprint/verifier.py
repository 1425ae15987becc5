"""verify(): recompute a model's probes on this host and judge them against its saved record.

Owns: the order of the checks — signature, record integrity, model files, weights, outputs,
inference randomness, environment — and the verdict. A check that ran and failed returns a Report
with verdict 'mismatch'; a check that could not run raises an EnvprintError, and so does a record
that cannot be trusted (a bad signature, arrays that do not match the fingerprint). Holds no
TensorFlow code, and writes nothing: a deployment host may be read-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from . import compare, digests, signing, store
from .errors import FingerprintError
from .models import Fingerprint, IdentityCheck, OutputComparison, Report, Tolerance


def _describe_arrays(arrays: Mapping[str, Any]) -> str:
    return ", ".join(f"{store.one_line(str(k), 40)} {tuple(v)}" for k, v in sorted(arrays.items())) or "nothing"


def sidecar_arrays(
    fp: Fingerprint, fp_path: Path, reader: store.RecordReader
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Probe inputs and reference outputs, and the names of sidecar files whose digest changed.

    A file that is missing, unreadable, corrupt, or whose arrays are not the names and shapes the
    fingerprint records is a FingerprintError: there is nothing to compare against. Bytes that load
    and fit but differ from the recorded sha256 are reported as edited (a mismatch, not an error).
    """
    from .probes import load_arrays

    if fp.probe_arrays is None or fp.reference_arrays is None or fp.model is None:
        raise FingerprintError(
            f"{fp_path}: a fingerprint of a host, not of a model (no probes recorded); "
            "verify needs the fingerprint.json that 'envprint save MODEL' wrote"
        )
    changed, arrays = [], []
    for field, record in (("probe_arrays", fp.probe_arrays), ("reference_arrays", fp.reference_arrays)):
        if not store.plain_file_name(record.file):
            raise FingerprintError(
                f"{fp_path}: field '{field}.file' is {store.one_line(repr(record.file))}, not a file name inside "
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
    return arrays[0], arrays[1], changed


def read_record(
    fp_path: Path, reader: store.RecordReader, *, signing_key: bytes | str | None, require_signature: bool
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


def _file_changes(saved: Mapping[str, str], now: Mapping[str, str]) -> tuple[list[str], list[str], list[str]]:
    changed = sorted(k for k in saved if k in now and now[k] != saved[k])
    missing = sorted(k for k in saved if k not in now)
    added = sorted(k for k in now if k not in saved)
    return changed, missing, added


def _verdict(outputs: list[OutputComparison], identity: IdentityCheck, stochastic_now: bool) -> str:
    if identity.weights == "changed" or identity.sidecar_files_changed or stochastic_now:
        return "mismatch"
    if any(o.status == "mismatch" for o in outputs):
        return "mismatch"
    if all(o.status == "identical" for o in outputs):
        return "identical"
    return "within_tolerance"


def outputs_digest(outputs: Mapping[str, Any]) -> str:
    """sha256 over every output's name, dtype, shape and bytes, by name: equal means bit-identical."""
    h = hashlib.sha256()
    for name in sorted(outputs):
        a = np.ascontiguousarray(outputs[name])
        h.update(f"{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_and_hash(model_path: Path, exclude: list[str], **load_options: Any) -> tuple[Any, dict[str, str]]:
    """Load the model and digest its files at once: (LoadedModel, {relative path: sha256}).

    The files are hashed on a second core while TensorFlow loads the model on the first:
    sha256 releases the GIL and Keras' load is mostly single-threaded, so the check is nearly
    free (scripts/bench.py measures it against the load alone).
    """
    from ._tf import loading

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="envprint-digest") as pool:
        hashing = pool.submit(digests.tree_digests, model_path, exclude=exclude)
        loaded = loading.load_model(model_path, **load_options)
        return loaded, hashing.result()


def verify(
    model: Any,
    *,
    fingerprint: str | Path | None = None,
    tolerance: Tolerance | None = None,
    fmt: str | None = None,
    signature: str | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
    check_stochastic: bool = True,
    signing_key: bytes | str | None = None,
    require_signature: bool = False,
) -> Report:
    """Verify ``model`` (a path, or a Keras model already loaded) against its fingerprint.

    Returns a Report; ``report.raise_for_status()`` raises MismatchError on 'mismatch'.
    Raises FingerprintError / ModelError / DependencyError when the check cannot run.
    Never writes anything: a deployment host may be read-only.

    ``signing_key`` (the CLI reads it from ENVPRINT_SIGNING_KEY) checks the record's
    signature.json: a wrong key or a changed fingerprint.json is a FingerprintError. With
    ``require_signature`` an unsigned record is one too (and a missing key a UsageError). With
    neither, a signature is not checked and the report notes it.
    """
    from ._tf import loading
    from ._tf.identity import model_identity
    from .capturer import capture
    from .diff import diff_fingerprints
    from .explain import explain

    model_path = Path(model) if isinstance(model, (str, Path)) else None
    fp_path = store.locate_fingerprint(model_path, fingerprint)

    def read(reader: store.RecordReader):  # one snapshot, even if a save replaces the record meanwhile
        saved, trust = read_record(fp_path, reader, signing_key=signing_key, require_signature=require_signature)
        return saved, trust, *sidecar_arrays(saved, fp_path, reader)

    saved, trust, probes, reference, sidecar_changed = store.read_consistent(fp_path.parent, read)
    notes: list[str] = []
    for name in sidecar_changed:
        notes.append(f"{name} differs from the digest in {fp_path.name}: the record was edited after save")

    files_changed = files_missing = files_added = []
    files_identical = False
    if model_path is not None:
        loaded, now = load_and_hash(
            model_path,
            exclude=store.sidecar_exclusions(model_path, fp_path.parent),
            fmt=fmt or saved.model.format,
            signature=signature or saved.model.signature,
            custom_objects=dict(custom_objects or {}),
            safe_mode=safe_mode,
        )
        files_changed, files_missing, files_added = _file_changes(saved.model.files, now)
        files_identical = not (files_changed or files_missing or files_added)
        label = str(model_path)
    else:
        loaded = loading.wrap_model(model, saved.model.format)
        label = f"<in-memory {type(model).__name__}>"

    # Byte-identical files hold identical weights: the weights digest is needed only when the
    # files changed (rewritten, or another model) or the model came from memory.
    ident = {} if files_identical else model_identity(loaded)
    if files_identical and saved.model.weights_digest is not None:
        weights = "same"
    elif saved.model.weights_digest is None or ident.get("weights_digest") is None:
        weights = "unknown"
    elif ident.get("weights_digest_scheme") != saved.model.weights_digest_scheme:
        weights = "unknown"
        notes.append(
            f"weights digest not comparable: saved as {saved.model.weights_digest_scheme}, "
            f"this {ident.get('format')} model gives {ident.get('weights_digest_scheme')}"
        )
    else:
        weights = "same" if ident["weights_digest"] == saved.model.weights_digest else "changed"
    if weights == "changed":
        notes.insert(
            0, "the model's weights differ from the fingerprinted model's: this is not the model that was saved"
        )
    elif weights == "same" and (files_changed or files_added or files_missing):
        notes.append("model files were rewritten but the weights are identical")
    identity = IdentityCheck(
        weights=weights,
        files_changed=files_changed,
        files_missing=files_missing,
        files_added=files_added,
        sidecar_files_changed=sidecar_changed,
    )

    obtained = loaded.predict(probes)
    policy = tolerance or saved.tolerance or Tolerance()
    outputs = compare.compare_outputs(reference, obtained, policy)
    # A second prediction can only disagree if something random runs at inference; a model that
    # was deterministic at save and has no random layers is not predicted twice.
    may_be_random = bool(saved.model.stochastic_layers) or (
        saved.self_check is None or not saved.self_check.deterministic
    )
    stochastic_now = check_stochastic and may_be_random and not compare.bit_identical(obtained, loaded.predict(probes))
    if stochastic_now:
        notes.append(
            "outputs changed between two identical predictions on this host: a random layer is active at inference"
        )
    for o in outputs:
        if o.status != "identical":
            notes.append(compare.summarize(o))

    if trust.note:
        notes.append(trust.note)
    environment = diff_fingerprints(saved, capture(), str(fp_path), "current host")
    return Report(
        verdict=_verdict(outputs, identity, stochastic_now),
        record_signature=trust.status,
        model=label,
        fingerprint=str(fp_path),
        identity=identity,
        outputs=outputs,
        notes=notes,
        environment=environment,
        explanations=explain(saved, environment, identity, outputs, stochastic_now=stochastic_now),
        outputs_digest=outputs_digest(obtained),
    )
