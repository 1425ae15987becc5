"""Endpoint causes: what only a served model's answers can show (``envprint verify --endpoint``).

Owns: request_misfit, transport_precision, another_model_served, server_numerics: their entries,
the evidence rules they are scored by (from the report's endpoint facts and the outputs, never
from a fingerprint difference: the server's host is not fingerprinted), the words their
reasonings and remedies name. None is a setting of this host: nothing to predict or restore.
Pure: must not import TensorFlow, Keras or NumPy; the numbers (which outputs match the reference
rounded to k significant digits, which came back widened) are measured in
``check/endpoint/evidence.py``.
"""

from __future__ import annotations

from envprint.causes.base import Cannot, Cause, DiffEntry, Family, Scoring

NOT_FROM_A_DIFF = "endpoint evidence (the server's metadata and answers), not a fingerprint difference"
NO_PREFLIGHT = "preflight reads two fingerprints; a server's host has none: its answers are the evidence"
NOT_HERE = Cannot("the server is another process, on a host envprint cannot fingerprint or set", "explanation")


def _transport(c: Scoring) -> bool:
    e = c.endpoint
    return e is not None and bool(e.rounded_digits or e.widened)


def _misfit(c: Scoring) -> bool:
    return c.endpoint is not None and bool(c.endpoint.misfits)


def _semantic(c: Scoring) -> bool:
    return c.observed in ("semantic", "dtype")


def endpoint_words(c: Scoring) -> dict[str, str]:
    """The words the endpoint reasonings name (empty strings for a local verify)."""
    e = c.endpoint
    if e is None:
        return {"misfits": "", "transport": "", "served": "", "encoding": "", "batching": ""}
    misfits = "; ".join(
        f"{m.field.replace('_', ' ')}{f' {m.name!r}' if m.name else ''}: recorded {m.recorded}, served {m.served}"
        for m in e.misfits
    )
    parts = [
        f"{name}: every differing value equals the reference rounded to {k} significant digits"
        for name, k in sorted(e.rounded_digits.items())
    ]
    parts += [f"{name}: answered as float64 holding exactly the float32 values" for name in e.widened]
    served = f"{e.served_model or 'the model'} version {e.served_version or '(not said)'}"
    encoding = "binary tensors" if e.exact_encoding else "decimal JSON"
    batching = (
        f"; the probes went in batches of {e.batch_size}, and another batch size than save's runs other kernels"
        if e.batches > 1
        else ""
    )
    return {"misfits": misfits, "transport": "; ".join(parts), "served": served, "encoding": encoding,
            "batching": batching}  # fmt: skip


def _exact_encoding(c: Scoring, _: list[DiffEntry]) -> str:
    e = c.endpoint
    if e is not None and e.widened and not e.rounded_digits:
        return "have the server answer float32 (the serving signature's output dtype), or cast back only after verify"
    return (
        "read the outputs over an exact encoding: gRPC (--protocol tfserving-grpc), the Open Inference Protocol's "
        "binary tensor extension, or JSON printed at full precision (TF Serving after tensorflow/serving#1336)"
    )


# fmt: off
FAMILY = Family(
    causes={
        "request_misfit": Cause(
            "the request does not fit the served model", "identity", NOT_FROM_A_DIFF,
            ("send the request the record was made with: serve the recorded signature and inputs, or name the "
             "signature with --signature and the model with --model-name; if the served model's interface changed "
             "on purpose, re-save its record",),
            NO_PREFLIGHT, NOT_HERE),
        "transport_precision": Cause(
            "the transport lost precision", "precision", NOT_FROM_A_DIFF, ("{exact_encoding}",), NO_PREFLIGHT, NOT_HERE),
        "another_model_served": Cause(
            "another model is served", "semantic", NOT_FROM_A_DIFF,
            ("deploy the model the record was saved from ({model_digest}), or pin the version in the URL "
             "(/versions/V); if the served version is the new reference, re-save its record",),
            NO_PREFLIGHT, NOT_HERE),
        "server_numerics": Cause(
            "the server's own numerics", "reduction_order", NOT_FROM_A_DIFF,
            ("envprint cannot fingerprint the server's host, so it cannot say which of its TensorFlow build, "
             "compiler flags, oneDNN or CPU moved the last bits; run envprint verify MODEL (not --endpoint) in the "
             "server's image to pin it down, or widen the tolerance to the drift measured here "
             "(envprint save --tolerance-from REPORT.json)",),
            NO_PREFLIGHT, NOT_HERE),
    },
    values={"exact_encoding": _exact_encoding},
    # (cause, score, applies, reasoning). First match per cause; misfit and transport are decisive.
    identity_rules=(
        ("request_misfit", 1.0, _misfit,
         "the server's metadata does not take the recorded request ({misfits}): the probes were not sent, so "
         "nothing was judged on numerics"),
        ("transport_precision", 0.95, _transport,
         "{transport}: the error pattern of the encoding ({encoding}), not of arithmetic"),
        ("another_model_served", 0.9, lambda c: c.endpoint is not None and not _misfit(c) and not _transport(c)
         and _semantic(c),
         "the server ({served}) answers differently at the semantic level: top-1 flips, NaN or a changed output, "
         "which a TensorFlow build does not do to the same weights"),
        ("server_numerics", 0.6, lambda c: c.endpoint is not None and not _misfit(c) and not _transport(c)
         and c.observed in ("reduction_order", "precision"),
         "the server ({served}) answers with the last bits moved and top-1 unchanged, the drift of another "
         "TensorFlow build, CPU or batch size; the server's host is not fingerprinted, so which one cannot be said"
         "{batching}"),
    ),
)
# fmt: on
