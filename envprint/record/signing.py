"""Signing a record: who wrote this fingerprint.json, and has it changed since?

Owns: ``signature.json`` in the sidecar, ``sign()`` that makes it and ``check()`` that judges it.
Standard library only (no NumPy, no pydantic, no TensorFlow): the signature is checked on the
exact bytes of fingerprint.json before anything parses them.

What is signed: HMAC-SHA256 over the bytes of fingerprint.json. That file holds the sha256 of
probes.npz, reference.npz and every model file, so one signature covers the whole record and
the model it describes; ``verify`` checks those digests against the files.

signature.json::

    {"algorithm": "hmac-sha256", "envprint_version": "0.1.0", "key_id": "1a2b3c4d",
     "signature": "<64 hex>", "signature_version": 1, "signed_file": "fingerprint.json"}

``key_id`` is the first 8 hex digits of sha256(key): it names a wrong key without revealing it
(anyone holding the record can already test guesses against the HMAC, so it gives nothing more).

Limits:
- A shared secret: whoever can check a signature can also make one. Keep the key in a secret
  store and give it to the training job and the deployment gate only; use 32 random bytes
  (``python -c "import secrets; print(secrets.token_hex(32))"``), never a password.
- It proves the record came from a holder of the key and is unchanged, not that the model is
  good, and not when it was signed; replaying an older signed record of the same model passes.
- Public-key signing (sigstore, minisign, an X.509 key) would fit here behind the same two
  functions: ``sign(payload, key) -> signature.json text`` and ``check(payload, signature, key,
  required=...)``, with ``algorithm`` telling the formats apart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from envprint._version import __version__
from envprint.errors import FingerprintError, UsageError

ALGORITHM = "hmac-sha256"
SIGNATURE_FILE = "signature.json"
SIGNATURE_VERSION = 1
KEY_ENV = "ENVPRINT_SIGNING_KEY"
MIN_KEY_BYTES = 16
MAX_SIGNATURE_BYTES = 64 << 10

SignatureStatus = Literal["verified", "unchecked", "unsigned"]
_FIELDS = {"algorithm", "envprint_version", "key_id", "signature", "signature_version", "signed_file"}


@dataclass(frozen=True)
class SignatureCheck:
    """What ``check`` found, for the report: its ``status``, and the id of the key it was checked with."""

    status: SignatureStatus
    key_id: str | None = None


def key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key from ``ENVPRINT_SIGNING_KEY`` (its UTF-8 bytes); None when unset or empty."""
    value = (os.environ if environ is None else environ).get(KEY_ENV)
    return value.encode("utf-8") if value else None


def _as_key(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def key_id(key: bytes | str) -> str:
    """First 8 hex digits of sha256(key): names a key without revealing it."""
    return hashlib.sha256(_as_key(key)).hexdigest()[:8]


def _mac(payload: bytes, key: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def signing_key(key: bytes | str) -> bytes:
    """``key`` as bytes, or UsageError when it is too short to sign with (check it before any work)."""
    key = _as_key(key)
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(
            f"the signing key is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes, e.g. "
            f"{KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


def sign(payload: bytes, key: bytes | str, signed_file: str = "fingerprint.json") -> str:
    """The text of signature.json for ``payload`` (the bytes of ``signed_file``), signed with ``key``."""
    key = signing_key(key)
    document = {
        "algorithm": ALGORITHM,
        "envprint_version": __version__,
        "key_id": key_id(key),
        "signature": _mac(payload, key),
        "signature_version": SIGNATURE_VERSION,
        "signed_file": signed_file,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _parse(raw: bytes, where: Path) -> dict:
    bad = f"{where}: not an envprint signature"
    fix = "re-save the record on the training host with --sign"
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FingerprintError(f"{bad} (not JSON); {fix}") from None
    if not isinstance(document, dict):
        raise FingerprintError(f"{bad} (expected a JSON object); {fix}")
    version = document.get("signature_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SIGNATURE_VERSION:
        raise FingerprintError(
            f"{where}: signature_version {version} is newer than this envprint reads ({SIGNATURE_VERSION}); "
            "upgrade envprint: pip install -U envprint"
        )
    if set(document) != _FIELDS or version != SIGNATURE_VERSION:
        raise FingerprintError(f"{bad} (expected the fields {', '.join(sorted(_FIELDS))}); {fix}")
    if document["algorithm"] != ALGORITHM:
        algorithm = str(document["algorithm"])[:40]
        raise FingerprintError(
            f"{where}: algorithm {algorithm!r} is not one this envprint checks ({ALGORITHM}); upgrade envprint"
        )
    for name in ("key_id", "signature", "signed_file"):
        if not isinstance(document[name], str):
            raise FingerprintError(f"{bad} (field {name!r} is not a string); {fix}")
    return document


def _same(a: str, b: str) -> bool:
    # compare_digest refuses non-ASCII str, and a hostile signature.json may hold any text.
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def check(
    payload: bytes,
    signature: bytes | None,
    key: bytes | str | None,
    *,
    required: bool = False,
    fingerprint_path: Path,
) -> SignatureCheck:
    """Judge ``signature`` (the bytes of signature.json, None when absent) over ``payload``.

    ``payload`` is the bytes of ``fingerprint_path``; signature.json sits beside it. A record
    that fails its signature cannot be trusted, so it cannot be verified: FingerprintError. With
    a key, a bad signature is an error even when not ``required``; without a key and not
    ``required``, a signature is left unchecked and the result says so. ``required`` without a
    key is a UsageError.
    """
    fingerprint_path = Path(fingerprint_path)
    where = fingerprint_path.with_name(SIGNATURE_FILE)
    if required and not key:
        raise UsageError(f"a signed record is required but no key was given; set {KEY_ENV} to the signing key")
    if signature is None:
        if required:
            raise FingerprintError(
                f"{where}: missing: the record is not signed and a signed record is required; "
                f"sign it on the training host: {KEY_ENV}=... envprint save --sign --force MODEL"
            )
        return SignatureCheck("unsigned", key_id(_as_key(key)) if key else None)
    if not key:
        return SignatureCheck("unchecked")
    document = _parse(signature, where)
    key = _as_key(key)
    if not _same(document["key_id"], key_id(key)):
        raise FingerprintError(
            f"{where}: signed with key {document['key_id'][:16]!r}, but the key given is {key_id(key)!r} "
            f"({KEY_ENV}); use the key the record was signed with"
        )
    if not _same(document["signature"], _mac(payload, key)):
        raise FingerprintError(
            f"{fingerprint_path}: does not match its signature (key {key_id(key)}): the record was changed "
            "after it was signed; do not deploy it: re-save it on the training host with --sign"
        )
    return SignatureCheck("verified", key_id(key))
