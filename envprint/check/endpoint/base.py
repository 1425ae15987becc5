"""What every serving protocol is: the ``Protocol`` base class and the facts it reads from a server.

A protocol knows its id, how to recognise a URL, how to read the served model's readiness and
metadata, how to encode a batch of probes into a request and decode a response into arrays.
Every failure is an ``EndpointError`` of one line (what, where, how to fix): the server is input
like any other, and a hostile or broken answer never becomes a traceback or a verdict.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import numpy as np

from envprint.errors import EndpointError, UsageError, one_line

# TensorFlow's DataType names (tensorflow/core/framework/types.proto) as NumPy dtypes: what TF Serving's
# metadata says; the enum numbers are the gRPC TensorProto's. BFLOAT16 and the quantised types are not
# probe dtypes (save refuses them).
TF_DTYPES: dict[str, tuple[int, str]] = {
    "DT_FLOAT": (1, "float32"),
    "DT_DOUBLE": (2, "float64"),
    "DT_INT32": (3, "int32"),
    "DT_UINT8": (4, "uint8"),
    "DT_INT16": (5, "int16"),
    "DT_INT8": (6, "int8"),
    "DT_STRING": (7, "object"),
    "DT_INT64": (9, "int64"),
    "DT_BOOL": (10, "bool"),
    "DT_UINT16": (17, "uint16"),
    "DT_HALF": (19, "float16"),
    "DT_UINT32": (22, "uint32"),
    "DT_UINT64": (23, "uint64"),
}


@dataclasses.dataclass(frozen=True)
class ServedTensor:
    """One input or output as the server's metadata declares it (dtype a NumPy name; None: not said)."""

    name: str
    dtype: str | None = None
    shape: tuple[int | None, ...] | None = None


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """What the server says it serves: read before any probe is sent."""

    name: str
    version: str | None = None
    signature: str | None = None
    inputs: tuple[ServedTensor, ...] = ()
    outputs: tuple[ServedTensor, ...] = ()
    signatures: tuple[str, ...] = ()  # every signature the server offers (where it says)


@dataclasses.dataclass(frozen=True)
class TransportOptions:
    """How far a server is trusted: sizes, times, TLS and headers (values read from the environment)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 60.0  # seconds for one request, from connect to the last byte
    max_bytes: int = 64 << 20
    cacert: str | None = None
    header_env: Mapping[str, str] = dataclasses.field(default_factory=dict)  # header name -> env variable
    wait: float = 0.0  # seconds to retry while the server is not ready

    def headers(self) -> dict[str, str]:
        """The headers' values from the environment; a variable not set is a UsageError naming it (not its value)."""
        out = {}
        for name, var in self.header_env.items():
            if not re.fullmatch(r"[A-Za-z0-9-]+", name):
                raise UsageError(f"--header-env {one_line(name, 40)}=...: not a header name (letters, digits, '-')")
            value = os.environ.get(var)
            if value is None:
                raise UsageError(f"--header-env {name}={var}: the environment variable {var} is not set")
            out[name] = value
        return out


@dataclasses.dataclass(frozen=True)
class Target:
    """Which model on the server: parsed from the URL, then completed by the options."""

    model_name: str | None = None
    version: str | None = None
    label: str | None = None
    signature: str | None = None


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: what a report and an error line may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def finite_json_number(value: Any, where: str) -> float:
    """A JSON number as a float; anything else an EndpointError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EndpointError(f"{where}: expected a number, obtained {one_line(repr(value), 60)}")
    return float(value)


def as_array(value: Any, dtype: str | None, where: str) -> np.ndarray:
    """Nested JSON lists as an array of ``dtype`` (the metadata's or the record's), or an EndpointError.

    Ragged lists, strings (even of digits), nulls and numbers out of the dtype's range are refused:
    the array must be what the server sent, not a guess. NumPy reads the lists in one pass.
    """
    target = np.dtype(dtype or "float32")
    try:
        raw = np.asarray(value)
    except ValueError as exc:  # ragged
        raise EndpointError(f"{where}: not a rectangular array ({one_line(exc, 80)})") from None
    if raw.dtype.kind not in "biuf":
        bad = next((x for x in raw.flat if not isinstance(x, (bool, int, float))), raw.dtype)
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise EndpointError(f"{where}: expected numbers, obtained {one_line(repr(bad), 60)}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = raw.astype(target)
    if target.kind == "f" and raw.dtype.kind == "f" and np.any(np.isinf(out) & np.isfinite(raw)):
        raise EndpointError(f"{where}: numbers out of the range of {target.name}")
    if target.kind in "iu" and not np.array_equal(out, raw):
        raise EndpointError(f"{where}: numbers that are not {target.name} values")
    return out


class Protocol:
    """One serving protocol. Subclass it in one module, and add the class to ``registry.PROTOCOLS``.

    A protocol object is made for one server and model (``options`` bound its answers, ``target``
    names the model); the verifier calls, in order: ``ready()`` (retried while ``--wait`` lasts),
    ``metadata()``, then ``predict(batch, served)`` once per batch, then ``close()``. Each raises
    EndpointError (NotReady while the server is not ready yet) with one line on failure.
    HTTP protocols subclass ``transport.HttpProtocol``, which gives them ``self.transport``.
    """

    id: ClassVar[str]  # the --protocol value, e.g. "tfserving-rest"
    title: ClassVar[str]  # for the docs and --help, e.g. "TensorFlow Serving REST"
    schemes: ClassVar[tuple[str, ...]] = ("http", "https")
    # Whether the encoding carries every bit of a float (binary tensors) or may round (JSON text).
    exact: ClassVar[bool] = False
    # Whether an answered metadata request means the model is ready (TF Serving: metadata is served
    # only for a loaded version): then the verifier skips ready() and saves a request.
    metadata_implies_ready: ClassVar[bool] = False

    def __init__(self, url: str, options: TransportOptions, target: Target) -> None:
        self.url = url
        self.options = options
        self.target = target

    # ---- recognising a URL: 2 sure, 1 could be, 0 not this protocol
    @classmethod
    def claims(cls, parts: SplitResult) -> int:
        raise NotImplementedError

    @classmethod
    def target_from_url(cls, parts: SplitResult) -> Target:
        """The model name, version or label the URL names (empty Target when it names none)."""
        return Target()

    def confirms(self) -> bool:
        """For a URL that several protocols claim: whether the server answers as this one does (cheap)."""
        return True

    # ---- the server
    def ready(self) -> None:
        """Return when the model is ready to predict; EndpointError (retryable=True) while it is not."""
        raise NotImplementedError

    def metadata(self) -> ServedModel:
        raise NotImplementedError

    def predict(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> dict[str, np.ndarray]:
        """Send one batch (input name -> array, batch first) and return output name -> array.

        ``served`` is what ``metadata()`` returned: decode to its output names and dtypes.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (a gRPC channel); HTTP requests hold none between calls."""

    @property
    def where(self) -> str:
        return public_url(self.url)


class NotReady(EndpointError):
    """The server or model is not ready yet (connection refused, 503, model loading): retried while --wait lasts."""
