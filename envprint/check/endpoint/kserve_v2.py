"""The Open Inference Protocol (KServe V2, also Triton's and MLServer's HTTP API), JSON and binary tensors.

``POST /v2/models/NAME[/versions/V]/infer`` with typed inputs (``name``, ``shape``, ``datatype``,
``data`` flattened in row-major order), answered by typed outputs; ``/v2/health/ready`` and
``/v2/models/NAME[/versions/V]/ready`` for ``--wait``; ``GET /v2/models/NAME[/versions/V]`` for the
metadata the request is fitted to. Two encodings, two protocol ids:

- ``kserve-v2``: every tensor in the JSON text. Floats go out as Python's shortest repr of each
  float32 widened to a double (exact); whether they come back exact is the server's JSON printer.
- ``kserve-v2-binary``: the binary tensor extension (``Inference-Header-Content-Length``: the JSON
  header, then each tensor's raw little-endian bytes, ``binary_data_size`` each), inputs and
  outputs: every bit travels. KServe, Triton and MLServer implement it; a server that does not
  answers an error that says so.

Outputs are decoded to the datatype the server names in its answer, never cast to the record's:
an FP64 answer to a float32 model stays float64 (evidence of widening).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import SplitResult

import numpy as np

from envprint.check.endpoint.base import NotReady, ServedModel, ServedTensor, Target, as_array
from envprint.check.endpoint.transport import HttpProtocol, Response, describe_body
from envprint.errors import EndpointError, UsageError, one_line

# The protocol's tensor datatypes as NumPy dtype names (BYTES: length-prefixed strings, object arrays).
V2_DTYPES: dict[str, str] = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}  # fmt: skip
_BY_DTYPE = {v: k for k, v in V2_DTYPES.items()}
HEADER_LENGTH = "inference-header-content-length"
_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?:/infer|/ready)?/?$")


def v2_datatype(arr: np.ndarray, where: str) -> str:
    """The V2 datatype of a probe array (bytes and strings are BYTES)."""
    if arr.dtype.kind in "SOU":
        return "BYTES"
    try:
        return _BY_DTYPE[arr.dtype.name]
    except KeyError:
        raise EndpointError(f"{where}: {arr.dtype.name} has no Open Inference Protocol datatype") from None


def _bytes_items(arr: np.ndarray) -> list[bytes]:
    return [x if isinstance(x, bytes) else str(x).encode() for x in arr.flat]


def encode_input(name: str, arr: np.ndarray, binary: bool, where: str) -> tuple[dict[str, Any], bytes]:
    """One request tensor: its JSON entry, and its raw bytes when ``binary`` (else b"")."""
    datatype = v2_datatype(arr, where)
    entry: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
    if not binary:
        entry["data"] = [b.decode("utf-8", "replace") for b in _bytes_items(arr)] if datatype == "BYTES" else (
            arr.reshape(-1).tolist()
        )  # fmt: skip
        return entry, b""
    if datatype == "BYTES":
        raw = b"".join(struct.pack("<I", len(b)) + b for b in _bytes_items(arr))
    else:
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
    entry["parameters"] = {"binary_data_size": len(raw)}
    return entry, raw


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        raise EndpointError(f"{where}: 'shape' is not a list of sizes ({one_line(repr(value), 60)})")
    return tuple(value)


def _from_raw(raw: bytes, dtype: str, count: int, where: str) -> np.ndarray:
    if dtype != "object":
        width = np.dtype(dtype).itemsize
        if len(raw) != width * count:
            raise EndpointError(f"{where}: {len(raw)} bytes of binary data for {count} {dtype} values")
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise EndpointError(f"{where}: BYTES data ends inside a length prefix")
        (n,) = struct.unpack_from("<I", raw, at)
        items.append(raw[at + 4 : at + 4 + n])
        at += 4 + n
    if at != len(raw) or len(items) != count:
        raise EndpointError(f"{where}: BYTES data holds {len(items)} items for a shape of {count}")
    return np.array(items, dtype=object)


def decode_output(entry: Any, raw: bytes | None, where: str) -> tuple[str, np.ndarray]:
    """One answer tensor (its JSON entry, and its bytes when it came binary) as (name, array of its datatype)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise EndpointError(f"{where}: an output without a name ({one_line(repr(entry), 80)})")
    name = entry["name"]
    here = f"{where}: output {one_line(name, 40)!r}"
    datatype = entry.get("datatype")
    if datatype not in V2_DTYPES:
        raise EndpointError(f"{here}: datatype {one_line(repr(datatype), 20)} is not an Open Inference Protocol one")
    dtype, shape = V2_DTYPES[datatype], _shape(entry.get("shape"), here)
    count = int(np.prod(shape, dtype=np.int64))
    if raw is not None:
        flat = _from_raw(raw, dtype, count, here)
    elif "data" not in entry:
        raise EndpointError(f"{here}: no 'data' and no binary_data_size")
    elif dtype == "object":
        data = entry["data"]
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise EndpointError(f"{here}: BYTES data that is not a flat list of strings")
        flat = np.array([x.encode() for x in data], dtype=object)
    else:
        flat = as_array(entry["data"], dtype, here).reshape(-1)  # nested data is allowed, read row-major
    if flat.size != count:
        raise EndpointError(f"{here}: {flat.size} values for shape {list(shape)} ({count})")
    return name, flat.reshape(shape)


class KServeV2(HttpProtocol):
    id = "kserve-v2"
    title = "KServe V2 / Open Inference Protocol (REST, JSON tensors)"
    binary: ClassVar[bool] = False

    @classmethod
    def claims(cls, parts: SplitResult) -> int:
        if parts.scheme not in cls.schemes or not _PATH.match(parts.path):
            return 0
        return 1 if cls.binary else 2  # JSON is every server's; the binary extension is asked for by name

    @classmethod
    def target_from_url(cls, parts: SplitResult) -> Target:
        m = _PATH.match(parts.path)
        return Target(m["name"], m["version"]) if m else Target()

    def _model_url(self) -> str:
        t = self.target
        if not t.model_name:
            raise UsageError(f"{self.where}: which model? name it in the URL (/v2/models/NAME) or with --model-name")
        path = f"/v2/models/{t.model_name}" + (f"/versions/{t.version}" if t.version else "")
        return self.transport.base_url.rstrip("/") + path

    def _get(self, url: str) -> Any:
        resp = self.transport.request("GET", url)
        self._raise_for_status(resp)
        return resp.json(self.where)

    def _raise_for_status(self, resp: Response) -> None:
        if resp.status < 400:
            return
        words = f"{self.where}: HTTP {resp.status} ({describe_body(resp)})"
        if resp.status in (404, 503):  # a model repository answers 404 until the model is loaded
            raise NotReady(words + "; is the model loaded and named right?")
        raise EndpointError(words)

    def confirms(self) -> bool:
        try:
            doc = self._get(self.transport.base_url.rstrip("/") + "/v2")
        except EndpointError:
            return False
        return isinstance(doc, dict) and "extensions" in doc

    def ready(self) -> None:
        for url in (self.transport.base_url.rstrip("/") + "/v2/health/ready", self._model_url() + "/ready"):
            doc = self._get(url)
            if isinstance(doc, dict) and doc.get("ready") is False:
                raise NotReady(f"{self.where}: the server says it is not ready yet")

    def metadata(self) -> ServedModel:
        doc = self._get(self._model_url())
        if not isinstance(doc, dict):
            raise EndpointError(f"{self.where}: the model metadata is not a JSON object; is this a V2 server?")
        versions = doc.get("versions") or []
        version = self.target.version or (str(versions[-1]) if isinstance(versions, list) and versions else None)
        # No signatures in this protocol: "" (not None, which would say the recorded one is missing).
        return ServedModel(
            str(doc.get("name", "")), version, "",
            _tensors(doc.get("inputs"), self.where), _tensors(doc.get("outputs"), self.where),
        )  # fmt: skip

    def request_body(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> tuple[bytes, str, dict[str, str]]:
        """The infer request: body, content type and the extension's header (binary only)."""
        entries, raws = [], []
        for name, arr in batch.items():
            entry, raw = encode_input(name, np.asarray(arr), self.binary, self.where)
            entries.append(entry)
            raws.append(raw)
        doc: dict[str, Any] = {"id": "envprint", "inputs": entries}
        if served.outputs:
            wanted = {"binary_data": True} if self.binary else {}
            doc["outputs"] = [{"name": t.name, **({"parameters": wanted} if wanted else {})} for t in served.outputs]
        if self.binary and not served.outputs:
            doc["parameters"] = {"binary_data_output": True}
        head = json.dumps(doc).encode()
        if not self.binary:
            return head, "application/json", {}
        return head + b"".join(raws), "application/octet-stream", {"Inference-Header-Content-Length": str(len(head))}

    def predict(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> dict[str, np.ndarray]:
        body, content_type, headers = self.request_body(batch, served)
        url = self._model_url() + "/infer"
        resp = self.transport.request("POST", url, body, content_type, headers)
        if resp.status >= 400:
            raise EndpointError(f"{self.where}: HTTP {resp.status} ({describe_body(resp)})")
        return self.decode(resp, served)

    def decode(self, resp: Response, served: ServedModel) -> dict[str, np.ndarray]:
        """An infer answer as output name -> array: JSON outputs, or the JSON header and binary tensors after it."""
        body, where = resp.body, self.where
        length = resp.headers.get(HEADER_LENGTH)
        if length is not None and not (length.isdigit() and int(length) <= len(body)):
            raise EndpointError(
                f"{where}: {HEADER_LENGTH} {one_line(length, 20)!r} does not fit a {len(body)}-byte answer"
            )
        head = body[: int(length)] if length is not None else body
        doc = Response(resp.status, resp.headers, head, resp.seconds).json(where)
        outputs = doc.get("outputs") if isinstance(doc, dict) else None
        if not isinstance(outputs, list):
            raise EndpointError(f"{where}: the answer has no 'outputs' list ({describe_body(resp)})")
        rest, at, out = body[len(head) :], 0, {}
        for entry in outputs:
            size = _binary_size(entry, where)
            raw = None
            if size is not None:
                if at + size > len(rest):
                    raise EndpointError(f"{where}: the binary data ends before the outputs it declares")
                raw, at = rest[at : at + size], at + size
            name, arr = decode_output(entry, raw, where)
            if name in out:
                raise EndpointError(f"{where}: output {one_line(name, 40)!r} appears twice")
            out[name] = arr
        if at != len(rest):
            raise EndpointError(f"{where}: {len(rest) - at} bytes after the outputs' binary data")
        missing = [t.name for t in served.outputs if t.name not in out]
        if missing and not len(out) == len(served.outputs) == 1:  # one output: matched by position
            raise EndpointError(f"{where}: the answer lacks output(s) {missing}; it holds {sorted(out)}")
        return out


class KServeV2Binary(KServeV2):
    id = "kserve-v2-binary"
    title = "KServe V2 / Open Inference Protocol (REST, binary tensor extension)"
    exact = True
    binary = True


def _binary_size(entry: Any, where: str) -> int | None:
    params = entry.get("parameters") if isinstance(entry, dict) else None
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise EndpointError(f"{where}: binary_data_size {one_line(repr(size), 20)} is not a byte count")
    return size


def _tensors(spec: Any, where: str) -> tuple[ServedTensor, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise EndpointError(f"{where}: the metadata's inputs or outputs are not a list")
    out = []
    for t in spec:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise EndpointError(f"{where}: a metadata tensor without a name ({one_line(repr(t), 60)})")
        shape = t.get("shape")
        dims = None
        if isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            dims = tuple(None if d < 0 else d for d in shape)
        out.append(ServedTensor(t["name"], V2_DTYPES.get(str(t.get("datatype"))), dims))
    return tuple(out)
