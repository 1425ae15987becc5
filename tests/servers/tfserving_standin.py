"""A stand-in for TensorFlow Serving: its REST and gRPC APIs over real TensorFlow, for the endpoint tests.

The tensorflow_model_server binary cannot be installed here (it is not on PyPI nor in this
machine's package sources), so the tests run against this: the same URLs and JSON shapes
(``/v1/models/NAME[/versions/V|/labels/L]``, ``/metadata``, ``:predict`` with ``inputs`` or
``instances``), and the same gRPC services from the official protos of tensorflow-serving-api
(``PredictionService/Predict``, ``GetModelMetadata``, ``ModelService/GetModelStatus``), answering
from the SavedModel's signature run by real TensorFlow. It is NOT TF Serving's C++ build: a
test of numerics across builds needs the real binary.

Fault modes, switched by ``POST /_faults {"mode": MODE}`` (``"none"`` switches back):
``digits6`` (REST floats printed with 6 significant digits, as TF Serving did before
tensorflow/serving#1336), ``float64`` (outputs widened to float64, metadata DT_DOUBLE),
``wrong_signature`` (the signature served as ``serving_alt``), ``other_version`` (version 2,
another SavedModel with other weights, is served).

Run: python tests/servers/tfserving_standin.py --name NAME --model DIR [--other DIR] --rest-port P --grpc-port G
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DT = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "int32": "DT_INT32", "int64": "DT_INT64", "string": "DT_STRING"}
NUMPY = {v: k for k, v in DT.items()}


class Served:
    """The SavedModels and the fault mode, shared by the REST and gRPC front ends."""

    def __init__(self, tf: Any, name: str, model: str, other: str | None) -> None:
        self.tf, self.name, self.mode = tf, name, "none"
        self.versions = {"1": tf.saved_model.load(model)}
        if other:
            self.versions["2"] = tf.saved_model.load(other)
        self.lock = threading.Lock()

    def version(self) -> str:
        return "2" if self.mode == "other_version" and "2" in self.versions else "1"

    def signature_name(self) -> str:
        return "serving_alt" if self.mode == "wrong_signature" else "serving_default"

    def function(self, signature: str) -> Any:
        if signature not in ("", self.signature_name()):
            raise KeyError(f'Serving signature key "{signature}" not found.')
        return self.versions[self.version()].signatures["serving_default"]

    def spec(self) -> tuple[dict[str, Any], dict[str, Any]]:
        fn = self.function("")
        inputs = fn.structured_input_signature[1]
        outputs = fn.structured_outputs
        return inputs, outputs

    def run(self, signature: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fn = self.function(signature)
        with self.lock:
            out = fn(**{k: self.tf.constant(v) for k, v in feed.items()})
        result = {k: v.numpy() for k, v in out.items()}
        if self.mode == "float64":
            result = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in result.items()}
        return result

    def out_dtype(self, dtype: str) -> str:
        return "float64" if self.mode == "float64" and dtype == "float32" else dtype

    def metadata_json(self) -> dict[str, Any]:
        inputs, outputs = self.spec()

        def info(spec: Any, dtype: str) -> dict[str, Any]:
            dims = [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape.as_list()]
            return {"dtype": DT[dtype], "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": f"{spec.name}:0"}

        sig = {
            "inputs": {k: info(s, s.dtype.name) for k, s in inputs.items()},
            "outputs": {k: info(s, self.out_dtype(s.dtype.name)) for k, s in outputs.items()},
            "method_name": "tensorflow/serving/predict",
        }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": self.version()},
            "metadata": {"signature_def": {"signature_def": {self.signature_name(): sig}}},
        }


def _floats(value: Any, digits: int | None) -> Any:
    if digits is None:
        return value
    if isinstance(value, list):
        return [_floats(v, digits) for v in value]
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


class Rest(BaseHTTPRequestHandler):
    served: Served
    _path = re.compile(
        r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<v>\d+)|/labels/(?P<l>[^/:]+))?(?P<what>:predict|/metadata)?$"
    )

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _match(self) -> re.Match[str] | None:
        m = self._path.match(self.path)
        if m is None or m["name"] != self.served.name or (m["v"] and m["v"] not in self.served.versions):
            self._send(404, {"error": f"Servable not found for request: {self.path}"})
            return None
        return m

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        m = self._match()
        if m is None:
            return
        if m["what"] == "/metadata":
            self._send(200, self.served.metadata_json())
        else:
            v = self.served.version()
            self._send(
                200,
                {
                    "model_version_status": [
                        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                    ]
                },
            )

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/_faults":
            self.served.mode = body["mode"]
            self._send(200, {"mode": self.served.mode})
            return
        m = self._match()
        if m is None or m["what"] != ":predict":
            return
        inputs, _ = self.served.spec()
        try:
            if "instances" in body:
                rows = body["instances"]
                if len(inputs) == 1 and not isinstance(rows[0], dict):
                    rows = [{next(iter(inputs)): r} for r in rows]
                feed = {k: np.array([r[k] for r in rows], dtype=s.dtype.as_numpy_dtype) for k, s in inputs.items()}
            else:
                columns = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(inputs)): body["inputs"]}
                feed = {k: np.array(columns[k], dtype=s.dtype.as_numpy_dtype) for k, s in inputs.items()}
            out = self.served.run(body.get("signature_name", ""), feed)
        except (KeyError, ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})
            return
        digits = 6 if self.served.mode == "digits6" else None
        if "instances" in body:
            names = sorted(out)
            n = len(next(iter(out.values())))
            rows = [{k: _floats(out[k][i].tolist(), digits) for k in names} for i in range(n)]
            self._send(200, {"predictions": [next(iter(r.values())) for r in rows] if len(names) == 1 else rows})
        else:
            cols = {k: _floats(v.tolist(), digits) for k, v in out.items()}
            self._send(200, {"outputs": next(iter(cols.values())) if len(cols) == 1 else cols})


def grpc_server(served: Served, port: int) -> Any:
    import grpc
    from google.protobuf import any_pb2
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    tf = served.tf

    def check(spec: Any, context: Any) -> None:
        if spec.name != served.name or (spec.HasField("version") and str(spec.version.value) not in served.versions):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec.name}")

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802
            check(request.model_spec, context)
            feed = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                out = served.run(request.model_spec.signature_name, feed)
            except (KeyError, ValueError, TypeError) as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            answer = predict_pb2.PredictResponse()
            answer.model_spec.name = served.name
            answer.model_spec.version.value = int(served.version())
            for k, v in out.items():
                answer.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            return answer

        def GetModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
            check(request.model_spec, context)
            doc = served.metadata_json()
            sigmap = get_model_metadata_pb2.SignatureDefMap()
            for name, sig in doc["metadata"]["signature_def"]["signature_def"].items():
                target = sigmap.signature_def[name]
                target.method_name = sig["method_name"]
                for side in ("inputs", "outputs"):
                    for k, t in sig[side].items():
                        info = getattr(target, side)[k]
                        info.name = t["name"]
                        info.dtype = tf.dtypes.as_dtype(NUMPY[t["dtype"]]).as_datatype_enum
                        for d in t["tensor_shape"]["dim"]:
                            info.tensor_shape.dim.add(size=int(d["size"]))
            answer = get_model_metadata_pb2.GetModelMetadataResponse()
            answer.model_spec.name = served.name
            answer.model_spec.version.value = int(served.version())
            packed = any_pb2.Any()
            packed.Pack(sigmap)
            answer.metadata["signature_def"].CopyFrom(packed)
            return answer

    class Models(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request: Any, context: Any) -> Any:  # noqa: N802
            check(request.model_spec, context)
            answer = get_model_status_pb2.GetModelStatusResponse()
            answer.model_version_status.add(version=int(served.version()), state=30)
            return answer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--other")
    parser.add_argument("--rest-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args()
    import tensorflow as tf

    served = Served(tf, args.name, args.model, args.other)
    server = grpc_server(served, args.grpc_port)  # held: a collected grpc.Server stops
    Rest.served = served
    ThreadingHTTPServer(("127.0.0.1", args.rest_port), Rest).serve_forever()
    server.stop(None)


if __name__ == "__main__":
    main()
