"""A KServe ModelServer (the real one, from PyPI's ``kserve``) serving saved Keras models, for the endpoint tests.

Run with the python of ``.venv-kserve`` (``scripts/kserve_env.sh`` makes it): kserve's protobuf and
pandas pins differ from the main virtualenv's, so it lives apart, with its own TensorFlow CPU.

    .venv-kserve/bin/python tests/servers/kserve_server.py --port 8080 --model mlp=model.keras:1

serves each ``NAME=PATH[:VERSION]`` on KServe's V1 protocol (``POST /v1/models/NAME:predict`` with
``instances``, answering ``predictions``) and on the Open Inference Protocol, V2 (``POST
/v2/models/NAME/infer`` with typed ``inputs``, answering typed ``outputs``; the binary tensor
extension as kserve implements it; ``/v2/health/ready``, ``/v2/models/NAME/ready``, ``GET
/v2/models/NAME`` metadata from the model's own input and output specs). The model is wrapped the
way a KServe user wraps one: a ``kserve.Model`` whose ``load`` reads the file (Keras safe mode on)
and whose ``predict`` runs it. Nothing here is a stand-in: the HTTP server, routing, request parsing
and response encoding are kserve's.

kserve 0.21's Python server does not route model versions (``/versions/V`` answers an error), so
VERSION only travels in the V2 response's ``model_version``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

# kserve's model_server parses sys.argv when imported: give it only what is its own.
_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
_parser.add_argument("--port", type=int, required=True, help="HTTP port (V1 and V2 share it)")
_parser.add_argument("--model", action="append", required=True, help="NAME=PATH[:VERSION], repeatable")
_ARGS = _parser.parse_args()
sys.argv = sys.argv[:1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after sys.argv is cleared for kserve)
import kserve  # noqa: E402
import numpy as np  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402
from kserve.utils.utils import from_np_dtype  # noqa: E402


def _spec(tensor: Any) -> dict[str, Any]:
    """One V2 metadata entry for a Keras tensor: name, datatype, shape with -1 for an unknown dimension."""
    name = tensor.name.split(":")[0].split("/")[0]
    shape = [-1 if d is None else int(d) for d in tensor.shape]
    return {"name": name, "datatype": from_np_dtype(np.dtype(tensor.dtype)), "shape": shape}


class KerasModel(kserve.Model):
    """A saved Keras model behind KServe: V1 ``instances`` rows or V2 named tensors in, outputs by name out."""

    def __init__(self, name: str, path: str, version: str | None) -> None:
        super().__init__(name)
        self.path, self.version = path, version
        self.model: Any = None

    def load(self) -> bool:
        self.model = keras.saving.load_model(self.path, safe_mode=True)
        self.inputs = [_spec(t) for t in self.model.inputs]
        self.outputs = [
            {**_spec(t), "name": n} for t, n in zip(self.model.outputs, self.model.output_names, strict=True)
        ]
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        return self.inputs

    def get_output_types(self) -> list[dict[str, Any]]:
        return self.outputs

    def _run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s["name"] for s in self.inputs if s["name"] not in feed]
        if missing:
            raise InvalidInput(f"missing input(s) {missing}; the model takes {[s['name'] for s in self.inputs]}")
        args = [np.asarray(feed[s["name"]], dtype=self.model.inputs[i].dtype) for i, s in enumerate(self.inputs)]
        result = self.model(args if len(args) > 1 else args[0], training=False)
        results = result if isinstance(result, (list, tuple)) else [result]
        return {s["name"]: np.asarray(r) for s, r in zip(self.outputs, results, strict=True)}

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return self._predict_v2(payload)
        instances = payload.get("instances")
        if not isinstance(instances, list):
            raise InvalidInput('a V1 request is {"instances": [...]}')
        if instances and isinstance(instances[0], dict):  # rows of named inputs
            feed = {s["name"]: np.asarray([row[s["name"]] for row in instances]) for s in self.inputs}
        else:
            feed = {self.inputs[0]["name"]: np.asarray(instances)}
        out = self._run(feed)
        if len(out) == 1:
            return {"predictions": next(iter(out.values())).tolist()}
        names = list(out)
        rows = zip(*(out[n].tolist() for n in names), strict=True)
        return {"predictions": [dict(zip(names, row, strict=True)) for row in rows]}

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        out = self._run({i.name: i.as_numpy() for i in request.inputs})
        outputs = []
        for name, array in out.items():
            tensor = InferOutput(name=name, shape=list(array.shape), datatype=from_np_dtype(array.dtype))
            tensor.set_data_from_numpy(array, binary_data=False)
            outputs.append(tensor)
        return InferResponse(
            response_id=request.id or "",
            model_name=self.name,
            model_version=self.version,
            infer_outputs=outputs,
            use_binary_outputs=request.use_binary_outputs,
            requested_outputs=request.request_outputs,
        )


def main() -> None:
    models = []
    for spec in _ARGS.model:
        name, _, rest = spec.partition("=")
        path, sep, version = rest.rpartition(":")
        if not sep:  # no version given
            path, version = version, ""
        model = KerasModel(name, path, version or None)
        model.load()
        models.append(model)
    # A test server: stop at once on SIGTERM (the default grace period is 30 s of open requests).
    kserve.ModelServer(http_port=_ARGS.port, enable_grpc=False, workers=1, grace_period=1).start(models)


if __name__ == "__main__":
    main()
