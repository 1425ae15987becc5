"""TensorFlow Serving's REST API: ``/v1/models/NAME[/versions/V|/labels/L]`` status, ``/metadata``, ``:predict``.

Requests are columnar (``{"signature_name": S, "inputs": {name: [...]}}``) by default, or row
format (``{"instances": [...]}``) with ``rows=True``; bytes travel as ``{"b64": ...}``. Floats are
sent as Python's shortest repr of the float32 value widened to a double, which parses back to the
same float32: the request is exact; whether the answer is depends on the server's JSON printer
(TF Serving rounded to 6 significant digits before tensorflow/serving#1336): the cause
``transport_precision`` reads it from the numbers.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult

import numpy as np

from envprint.check.endpoint.base import (
    TF_DTYPES,
    NotReady,
    ServedModel,
    ServedTensor,
    Target,
    as_array,
)
from envprint.check.endpoint.transport import HttpProtocol, Response, describe_body
from envprint.errors import EndpointError, UsageError, one_line

# /v1/models/NAME, then /versions/V or /labels/L, then :predict (or /metadata) — all optional after NAME.
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?(?::predict|/metadata)?/?$"
)


def json_value(arr: np.ndarray) -> Any:
    """An array as JSON values: numbers exact (a float32 widened to double, printed shortest), bytes as b64."""
    if arr.dtype.kind in "SOU":
        flat = [{"b64": base64.b64encode(x if isinstance(x, bytes) else str(x).encode()).decode()} for x in arr.flat]
        return np.array(flat, dtype=object).reshape(arr.shape).tolist()
    return arr.tolist()


def decode_value(value: Any, dtype: str | None, where: str) -> np.ndarray:
    if dtype == "object":
        return np.array(_unb64(value, where), dtype=object)
    return as_array(value, dtype, where)


def _unb64(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_unb64(v, where) for v in value]
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise EndpointError(f"{where}: a b64 value that is not base64") from None
    if isinstance(value, str):
        return value.encode()
    raise EndpointError(f"{where}: expected bytes ({{'b64': ...}} or a string), obtained {one_line(repr(value), 60)}")


class TFServingREST(HttpProtocol):
    id = "tfserving-rest"
    title = "TensorFlow Serving REST"
    metadata_implies_ready = True  # /metadata answers 404 until a version is loaded
    rows = False  # columnar "inputs" by default; True: row "instances"

    @classmethod
    def claims(cls, parts: SplitResult) -> int:
        if parts.scheme not in cls.schemes:
            return 0
        return 1 if _PATH.match(parts.path) else 0  # KServe V1 shares the path: confirms() asks the server

    @classmethod
    def target_from_url(cls, parts: SplitResult) -> Target:
        m = _PATH.match(parts.path)
        return Target(m["name"], m["version"], m["label"]) if m else Target()

    def _model_url(self) -> str:
        t = self.target
        if not t.model_name:
            raise UsageError(f"{self.where}: which model? name it in the URL (/v1/models/NAME) or with --model-name")
        base = self.transport.base_url.rstrip("/")
        path = f"/v1/models/{t.model_name}"
        if t.version:
            path += f"/versions/{t.version}"
        elif t.label:
            path += f"/labels/{t.label}"
        return base + path

    def _get(self, url: str) -> Any:
        resp = self.transport.request("GET", url)
        self._raise_for_status(resp, url)
        return resp.json(self.where)

    def _raise_for_status(self, resp: Response, url: str) -> None:
        if resp.status < 400:
            return
        words = f"{self.where}: HTTP {resp.status} ({describe_body(resp)})"
        if resp.status in (404, 503):  # TF Serving answers 404 while a version loads
            raise NotReady(words + "; is the model loaded and named right?")
        raise EndpointError(words)

    def confirms(self) -> bool:
        try:
            doc = self._get(self._model_url())
        except EndpointError:
            return False
        return isinstance(doc, dict) and "model_version_status" in doc

    def ready(self) -> None:
        doc = self._get(self._model_url())
        states = doc.get("model_version_status") if isinstance(doc, dict) else None
        if not isinstance(states, list) or not states:
            raise EndpointError(f"{self.where}: the model status has no model_version_status; is this TF Serving?")
        if not any(isinstance(s, dict) and s.get("state") == "AVAILABLE" for s in states):
            seen = ", ".join(str(s.get("state")) for s in states if isinstance(s, dict))
            raise NotReady(f"{self.where}: no version is AVAILABLE yet ({one_line(seen, 80)})")

    def metadata(self) -> ServedModel:
        doc = self._get(self._model_url() + "/metadata")
        try:
            spec = doc["model_spec"]
            sigs = doc["metadata"]["signature_def"]["signature_def"]
            if not isinstance(sigs, dict):
                raise TypeError
        except (KeyError, TypeError):
            raise EndpointError(f"{self.where}: the metadata has no signature_def; is this TF Serving?") from None
        name = self.target.signature or "serving_default"
        sig = sigs.get(name)
        if not isinstance(sig, dict):  # the misfit is judged by the verifier: no signature, no tensors
            return ServedModel(str(spec.get("name", "")), _str(spec.get("version")), None, (), (), tuple(sigs))
        return ServedModel(
            str(spec.get("name", "")), _str(spec.get("version")), name,
            _tensors(sig.get("inputs"), self.where), _tensors(sig.get("outputs"), self.where), tuple(sigs),
        )  # fmt: skip

    def predict(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> dict[str, np.ndarray]:
        sig: dict[str, Any] = {"signature_name": served.signature} if served.signature else {}
        if self.rows:
            n = len(next(iter(batch.values())))
            rows: list[Any] = [{k: json_value(v[i]) for k, v in batch.items()} for i in range(n)]
            if len(batch) == 1:
                rows = [next(iter(r.values())) for r in rows]
            body = {**sig, "instances": rows}
        else:
            body = {**sig, "inputs": {k: json_value(v) for k, v in batch.items()}}
        url = self._model_url() + ":predict"
        resp = self.transport.request("POST", url, json.dumps(body).encode())
        self._raise_for_status(resp, url)
        doc = resp.json(self.where)
        return self.decode(doc, served)

    def decode(self, doc: Any, served: ServedModel) -> dict[str, np.ndarray]:
        """A predict answer (columnar ``outputs`` or row ``predictions``) as output name -> array."""
        where = self.where
        dtypes = {t.name: t.dtype for t in served.outputs}
        if not isinstance(doc, dict) or not ({"outputs", "predictions"} & set(doc)):
            what = (
                f"error {one_line(str(doc['error']), 160)!r}" if isinstance(doc, dict) and "error" in doc else "neither"
            )
            raise EndpointError(f"{where}: the answer has no 'outputs' or 'predictions' ({what})")
        if "outputs" in doc:
            value = doc["outputs"]
            named = value if isinstance(value, dict) else {self._only_output(served): value}
        else:
            rows = doc["predictions"]
            if not isinstance(rows, list):
                raise EndpointError(f"{where}: 'predictions' is not a list")
            if rows and all(isinstance(r, dict) for r in rows):
                keys = set(rows[0])
                if any(set(r) != keys for r in rows):
                    raise EndpointError(f"{where}: the rows of 'predictions' name different outputs")
                named = {k: [r[k] for r in rows] for k in keys}
            else:
                named = {self._only_output(served): rows}
        return {
            str(k): decode_value(v, dtypes.get(str(k)), f"{where}: output {one_line(str(k), 40)!r}")
            for k, v in named.items()
        }

    def _only_output(self, served: ServedModel) -> str:
        if len(served.outputs) != 1:
            raise EndpointError(f"{self.where}: an unnamed output, but the signature has {len(served.outputs)} outputs")
        return served.outputs[0].name


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _tensors(spec: Any, where: str) -> tuple[ServedTensor, ...]:
    if not isinstance(spec, dict):
        raise EndpointError(f"{where}: the signature's inputs or outputs are not a map")
    out = []
    for name, t in sorted(spec.items()):
        t = t if isinstance(t, dict) else {}
        dtype = TF_DTYPES.get(str(t.get("dtype")), (0, None))[1]
        shape = t.get("tensor_shape") or {}
        dims = None
        if isinstance(shape, dict) and not shape.get("unknown_rank"):
            try:
                dims = tuple(None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in shape.get("dim", []))
            except (TypeError, ValueError, AttributeError):
                raise EndpointError(
                    f"{where}: the shape of {one_line(str(name), 40)!r} is not a list of sizes"
                ) from None
        out.append(ServedTensor(str(name), dtype, dims))
    return tuple(out)
