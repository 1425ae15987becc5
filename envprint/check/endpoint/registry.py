"""PROTOCOLS: the one list of serving protocols; URL detection, the docs and ``--protocol``'s choices come from it.

The command line names the ids again (``cli/options.PROTOCOL_IDS``) so that ``envprint --help``
does not import this package's NumPy; ``tests/test_cli_misuse.py`` holds the two equal.

Order matters only for a URL two protocols claim equally (TF Serving REST and KServe V1 share
``/v1/models/NAME:predict``): each one's ``confirms()`` asks the server, in this order.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from envprint.check.endpoint.base import Protocol, Target, TransportOptions, public_url
from envprint.check.endpoint.kserve_v1 import KServeV1
from envprint.check.endpoint.kserve_v2 import KServeV2, KServeV2Binary
from envprint.check.endpoint.mlflow_scoring import MLflowDataframe, MLflowScoring
from envprint.check.endpoint.tfserving_grpc import TFServingGRPC
from envprint.check.endpoint.tfserving_rest import TFServingREST
from envprint.errors import EndpointError, UsageError

PROTOCOLS: tuple[type[Protocol], ...] = (
    TFServingREST,
    TFServingGRPC,
    KServeV1,
    KServeV2,
    KServeV2Binary,
    MLflowScoring,
    MLflowDataframe,
)


def ids() -> list[str]:
    return [p.id for p in PROTOCOLS]


def get(protocol_id: str) -> type[Protocol]:
    for p in PROTOCOLS:
        if p.id == protocol_id:
            return p
    raise UsageError(f"--protocol {protocol_id!r}: not a protocol envprint knows; one of {', '.join(ids())}")


def open_protocol(url: str, options: TransportOptions, protocol_id: str | None = None,
                  target: Target | None = None) -> Protocol:  # fmt: skip
    """The protocol for ``url``: the one named, else the one the URL names, else the one whose server confirms it.

    Where several claim the URL and none is confirmed, the first one's own readiness check speaks: its
    error (TLS, connection refused: NotReady, retried while --wait lasts; HTTP 404) is exit 6, not a usage
    error, and a server that passes it is taken as that protocol.

    ``target``'s fields, where set, win over what the URL names (``--model-name``, ``--signature``).
    """
    parts = urlsplit(url)
    if protocol_id is not None:
        candidates = [get(protocol_id)]
    else:
        scored = sorted(((p.claims(parts), i, p) for i, p in enumerate(PROTOCOLS)), key=lambda s: (-s[0], s[1]))
        candidates = [p for score, _, p in scored if score == scored[0][0] and score > 0]
        if not candidates:
            raise UsageError(
                f"{public_url(url)}: no protocol recognises this URL; name one with --protocol ({', '.join(ids())})"
            )
    for cls in candidates:
        protocol = cls(url, options, _merge(cls.target_from_url(parts), target))
        if len(candidates) == 1 or protocol.confirms():
            return protocol
        protocol.close()
    first = candidates[0](url, options, _merge(candidates[0].target_from_url(parts), target))
    try:  # the first candidate's own readiness check says what is wrong (TLS, refused, HTTP 404, ...)
        first.ready()
    except EndpointError:
        first.close()
        raise
    return first  # it answers as the first candidate does


def _merge(from_url: Target, given: Target | None) -> Target:
    if given is None:
        return from_url
    return Target(
        given.model_name or from_url.model_name,
        given.version or from_url.version,
        given.label or from_url.label,
        given.signature or from_url.signature,
    )
