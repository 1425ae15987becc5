"""verify_endpoint(): a record's probes replayed to a running server, its answers judged like a local verify.

Owns: the order of an endpoint verify — the record (read and checked as verify does), the
protocol (named, or recognised from the URL and confirmed by the server), readiness (retried
while ``wait`` lasts), the metadata against the recorded request (a misfit is settled before any
probe is sent: verdict mismatch, cause request_misfit), the probes in batches (each batch's
latency timed), the outputs compared under the record's tolerance, the transport evidence from
the numbers, and the explanations. The model is not loaded here and the server's host is not
fingerprinted: the report's environment diff is empty and says so. A check that could not run
raises EndpointError (exit 6) and the like; one that ran returns a Report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint.check import compare, histogram
from envprint.check.endpoint.base import ServedModel, ServedTensor, Target, TransportOptions, public_url
from envprint.check.endpoint.evidence import transport_evidence
from envprint.check.endpoint.registry import open_protocol
from envprint.check.endpoint.transport import wait_for
from envprint.errors import EndpointError, FingerprintError, ModelError, UsageError
from envprint.models import (
    EndpointFacts,
    EndpointMisfit,
    Fingerprint,
    FingerprintDiff,
    IdentityCheck,
    Report,
    Tolerance,
)
from envprint.record import sidecar
from envprint.render import text as _words  # noqa: F401  (registers str(report))


def record_path(model: str | Path | None, fingerprint: str | Path | None) -> Path:
    """The fingerprint.json MODEL names: ``fingerprint`` if given, else beside MODEL (or MODEL itself, a record)."""
    if fingerprint is None and model is not None:
        path = Path(model)
        if path.name == sidecar.FINGERPRINT_FILE or (path.is_dir() and (path / sidecar.FINGERPRINT_FILE).is_file()
                                                     and not (path / "saved_model.pb").exists()):  # fmt: skip
            return path if path.is_file() else path / sidecar.FINGERPRINT_FILE
    try:
        return sidecar.locate_fingerprint(model, fingerprint)
    except ModelError:
        raise FingerprintError(
            f"{model}: no such model here, so no record beside it; pass --fingerprint PATH (the record's sidecar "
            "directory or its fingerprint.json): the model itself is not needed to verify an endpoint"
        ) from None


def verify_endpoint(  # size: the options a user gives, one per line; the body is the checks in their order
    url: str,
    model: str | Path | None = None,
    *,
    fingerprint: str | Path | None = None,
    protocol: str | None = None,
    model_name: str | None = None,
    version: str | None = None,
    signature: str | None = None,
    batch_size: int | None = None,
    wait: float = 0.0,
    timeout: float = 30.0,
    cacert: str | Path | None = None,
    header_env: Mapping[str, str] | None = None,
    max_bytes: int = 64 << 20,
    tolerance: Tolerance | None = None,
    signing_key: bytes | str | None = None,
    require_signature: bool = False,
) -> Report:
    """Verify the model served at ``url`` against its record: the same Report, tolerance and causes as ``verify``.

    ``model`` or ``fingerprint`` names the record (the model itself is not loaded). ``protocol`` is
    one of ``registry.PROTOCOLS`` (default: recognised from the URL, confirmed by the server);
    ``model_name``/``version``/``signature`` complete what the URL names (the signature defaults to
    the record's). ``wait`` seconds of retries while the server is not ready; ``timeout`` bounds
    each request (and 4x it the whole of one); ``header_env`` maps a header to the environment
    variable holding its value (never recorded or printed). Raises EndpointError (exit 6) when the
    server cannot be verified.
    """
    from envprint.check.record_read import read_checked

    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: give 1 or more")
    fp_path = record_path(model, fingerprint)
    saved, trust, probes, reference, sidecar_changed, _ = read_checked(fp_path, signing_key, require_signature)
    options = TransportOptions(
        connect_timeout=min(timeout, 10.0), read_timeout=timeout, deadline=4 * timeout, max_bytes=max_bytes,
        cacert=str(cacert) if cacert else None, header_env=dict(header_env or {}), wait=wait,
    )  # fmt: skip
    sig = signature or (saved.model.signature if saved.model else None)
    proto = wait_for(lambda: open_protocol(url, options, protocol, Target(model_name, version, None, sig)), wait)
    try:
        if not proto.metadata_implies_ready:
            wait_for(proto.ready, wait)
        served = wait_for(proto.metadata, wait)
        facts = EndpointFacts(
            protocol=proto.id, url=public_url(url), served_model=served.name or None,
            served_version=served.version, requested_version=proto.target.version or proto.target.label,
            signature=served.signature, exact_encoding=proto.exact,
        )  # fmt: skip
        feed, misfits = fit_request(saved, served, probes, sig)
        if misfits:
            facts = facts.model_copy(update={"misfits": misfits})
            return _report(saved, fp_path, trust, sidecar_changed, facts, [], None, tolerance)
        obtained, seconds, size = _predict_all(proto, feed, _with_record_dtypes(served, reference), batch_size)
    finally:
        proto.close()
    obtained = _by_position(reference, obtained)
    digits, wide = transport_evidence(reference, obtained)
    facts = facts.model_copy(update=_latency(seconds) | {"batch_size": size, "batches": len(seconds),
                                                         "rounded_digits": digits, "widened": wide})  # fmt: skip
    return _report(saved, fp_path, trust, sidecar_changed, facts, (reference, obtained), obtained, tolerance)


def fit_request(saved: Fingerprint, served: ServedModel, probes: dict[str, np.ndarray],
                signature: str | None) -> tuple[dict[str, np.ndarray], list[EndpointMisfit]]:  # fmt: skip
    """The probes keyed by the served input names, or the misfits that keep them from being sent."""
    if served.signature is None:
        offered = ", ".join(served.signatures) or "none"
        return {}, [EndpointMisfit(field="signature", recorded=signature or "serving_default", served=offered)]
    if not served.inputs:  # the server does not say: send the record's names
        return dict(probes), []
    names = [t.name for t in served.inputs]
    if set(probes) == set(names):
        feed = dict(probes)
    elif len(probes) == 1 and len(names) == 1:
        feed = {names[0]: next(iter(probes.values()))}
    else:
        return {}, [EndpointMisfit(field="input_names", recorded=sorted(probes), served=sorted(names))]
    misfits = []
    for t in served.inputs:
        arr = feed[t.name]
        if t.dtype is not None and t.dtype != arr.dtype.name and not (t.dtype == "object" and arr.dtype.kind in "SO"):
            misfits.append(EndpointMisfit(field="input_dtype", name=t.name, recorded=arr.dtype.name, served=t.dtype))
        if t.shape is not None and not _fits(t.shape, arr.shape):
            misfits.append(EndpointMisfit(field="input_shape", name=t.name, recorded=str(list(arr.shape[1:])),
                                          served=str([d if d is not None else -1 for d in t.shape[1:]])))  # fmt: skip
    outputs = {t.name for t in served.outputs}
    recorded = [s.name for s in saved.model.outputs] if saved.model else []
    if outputs and set(recorded) != outputs and not (len(recorded) == len(outputs) == 1):
        misfits.append(EndpointMisfit(field="output_names", recorded=sorted(recorded), served=sorted(outputs)))
    return feed, misfits


def _fits(served: tuple[int | None, ...], probe: tuple[int, ...]) -> bool:
    return len(served) == len(probe) and all(d is None or d == p for d, p in zip(served[1:], probe[1:], strict=True))


def _with_record_dtypes(served: ServedModel, reference: Mapping[str, np.ndarray]) -> ServedModel:
    """Outputs the metadata leaves untyped are decoded as the record's dtype (a single output by position)."""
    only = next(iter(reference.values())) if len(reference) == 1 else None

    def typed(t: ServedTensor) -> ServedTensor:
        known = reference.get(t.name, only)
        return t if t.dtype or known is None else ServedTensor(t.name, known.dtype.name, t.shape)

    outs = tuple(typed(t) for t in served.outputs)
    if not outs:
        outs = tuple(ServedTensor(k, v.dtype.name, None) for k, v in reference.items())
    return ServedModel(served.name, served.version, served.signature, served.inputs, outs, served.signatures)


def _predict_all(proto: Any, feed: dict[str, np.ndarray], served: ServedModel,
                 batch_size: int | None) -> tuple[dict[str, np.ndarray], list[float], int]:  # fmt: skip
    """Every probe predicted in batches of ``batch_size`` (default: all at once), concatenated; each batch timed."""
    n = len(next(iter(feed.values())))
    size = min(batch_size or n, n)
    parts: dict[str, list[np.ndarray]] = {}
    seconds = []
    for start in range(0, n, size):
        batch = {k: v[start : start + size] for k, v in feed.items()}
        rows = len(next(iter(batch.values())))
        begin = time.perf_counter()
        answer = proto.predict(batch, served)
        seconds.append(time.perf_counter() - begin)
        if not answer:
            raise EndpointError(f"{proto.where}: the answer holds no outputs")
        for name, arr in answer.items():
            if arr.ndim == 0 or arr.shape[0] != rows:
                got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
                raise EndpointError(f"{proto.where}: output {name!r} has {got} for a batch of {rows} probes")
            parts.setdefault(name, []).append(arr)
    return {k: np.concatenate(v) for k, v in parts.items()}, seconds, size


def _by_position(reference: Mapping[str, np.ndarray], obtained: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if set(obtained) != set(reference) and len(obtained) == len(reference) == 1:
        return {next(iter(reference)): next(iter(obtained.values()))}
    return obtained


def _latency(seconds: list[float]) -> dict[str, Any]:
    ms = [round(s * 1000, 3) for s in seconds]
    if not ms:
        return {}
    return {
        "latency_ms": ms,
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p95": float(np.percentile(ms, 95)),
    }


def _report(saved: Fingerprint, fp_path: Path, trust: Any, sidecar_changed: list[str], facts: EndpointFacts,
            pair: Any, obtained: dict[str, np.ndarray] | None, tolerance: Tolerance | None) -> Report:  # fmt: skip
    from envprint.causes.explain import explain
    from envprint.check.verifier import outputs_digest

    identity = IdentityCheck(weights="unknown", model_name=saved.model.name if saved.model else None,
                             sidecar_files_changed=sidecar_changed)  # fmt: skip
    outputs = []
    if pair:
        reference, got = pair
        policy = tolerance or saved.tolerance or Tolerance()
        outputs = histogram.with_histograms(compare.compare_outputs(reference, got, policy), reference, got)
    # The server's host is not fingerprinted: nothing to diff, and the words say so (render/).
    environment = FingerprintDiff(a=str(fp_path), b=facts.url, identical=True, entries=[], passed=True)
    mismatch = bool(facts.misfits or sidecar_changed or any(o.status == "mismatch" for o in outputs))
    verdict = (
        "mismatch" if mismatch else "identical" if all(o.status == "identical" for o in outputs) else "within_tolerance"
    )
    return Report(
        verdict=verdict, passed=verdict != "mismatch", record_signature=trust.status, signing_key_id=trust.key_id, model=facts.url,
        fingerprint=str(fp_path), identity=identity, probes_run=obtained is not None, outputs=outputs,
        environment=environment, endpoint=facts,
        explanations=explain(saved, environment, identity, outputs, endpoint=facts),
        outputs_digest=None if obtained is None else outputs_digest(obtained),
    )  # fmt: skip
