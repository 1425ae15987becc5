"""MLflow's scoring server (``mlflow models serve``, and the images ``mlflow models build-docker`` makes).

``POST /invocations`` with a JSON body of one of the server's input formats, answered by
``{"predictions": ...}``; ``GET /ping`` (200 once the model is loaded) for ``--wait``. Two
encodings, two protocol ids:

- ``mlflow``: tensors as ``{"inputs": ...}``: a single input as its nested list (an ndarray to
  the model), several as ``{name: nested list}``; the form for Keras and TensorFlow flavours.
- ``mlflow-dataframe``: ``{"dataframe_split": {"columns": [...], "data": rows}}``: one 2-D input
  as a table, columns named ``0``..``n-1`` (the names pandas gives a model without a signature);
  the form for tabular pyfunc models.

The server publishes no model metadata, so the request is the record's, and a misfit surfaces
as the server's own 400 answer (its message quoted). JSON numbers carry no dtype: answers are
decoded as the record's dtypes. Floats go out as the shortest repr of each float32 widened to a
double, which parses back to the same float32; MLflow's Python server prints float32 answers the
same way, so both directions are exact (MLflow's R server once printed 4 decimals, mlflow#1191).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult

import numpy as np

from envprint.check.endpoint.base import NotReady, ServedModel, Target
from envprint.check.endpoint.tfserving_rest import decode_value, json_value
from envprint.check.endpoint.transport import HttpProtocol, describe_body
from envprint.errors import EndpointError, one_line


class MLflowScoring(HttpProtocol):
    id = "mlflow"
    title = "MLflow scoring server (inputs)"

    @classmethod
    def claims(cls, parts: SplitResult) -> int:
        if parts.scheme not in cls.schemes or parts.path.rstrip("/") != "/invocations":
            return 0
        return 2 if cls.id == "mlflow" else 1  # the tensor form unless the table form is asked for by name

    @classmethod
    def target_from_url(cls, parts: SplitResult) -> Target:
        return Target()

    def _url(self, path: str) -> str:
        return self.transport.base_url.rstrip("/") + path

    def confirms(self) -> bool:
        try:
            return self.transport.request("GET", self._url("/version")).status == 200
        except EndpointError:
            return False

    def ready(self) -> None:
        resp = self.transport.request("GET", self._url("/ping"))
        if resp.status >= 400:  # 404 and 503 while the model loads
            raise NotReady(
                f"{self.where}: /ping answers HTTP {resp.status} ({describe_body(resp)}); the model is not loaded"
            )

    def metadata(self) -> ServedModel:
        # No metadata endpoint; /version is MLflow's own version, not the model's. "" signature: one entry point.
        return ServedModel("", None, "")

    def body(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if len(batch) == 1:
            return {"inputs": json_value(np.asarray(next(iter(batch.values()))))}
        return {"inputs": {name: json_value(np.asarray(arr)) for name, arr in batch.items()}}

    def predict(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> dict[str, np.ndarray]:
        resp = self.transport.request("POST", self._url("/invocations"), json.dumps(self.body(batch)).encode())
        if resp.status >= 400:
            hint = "; does the request fit the model's signature?" if resp.status == 400 else ""
            raise EndpointError(f"{self.where}: HTTP {resp.status} ({describe_body(resp)}){hint}")
        doc = resp.json(self.where)
        if not isinstance(doc, dict) or "predictions" not in doc:
            raise EndpointError(f"{self.where}: the answer has no 'predictions' ({describe_body(resp)})")
        return self.decode(doc["predictions"], served)

    def decode(self, value: Any, served: ServedModel) -> dict[str, np.ndarray]:
        """``predictions`` as output name -> array: one output's rows, ``{name: rows}``, or a table's rows of records."""
        where = self.where
        dtypes = {t.name: t.dtype for t in served.outputs}
        if isinstance(value, dict):  # several named outputs (a multi-output tensor model)
            return {
                str(k): decode_value(v, dtypes.get(str(k)), f"{where}: output {one_line(str(k), 40)!r}")
                for k, v in value.items()
            }
        if not isinstance(value, list):
            raise EndpointError(f"{where}: 'predictions' is neither a list nor a map of outputs")
        if len(served.outputs) != 1:
            raise EndpointError(f"{where}: one unnamed output, but the record has {len(served.outputs)} outputs")
        only = served.outputs[0]
        if value and all(isinstance(r, dict) for r in value):  # a DataFrame's records: one column per value
            columns = list(value[0])
            if any(list(r) != columns for r in value):
                raise EndpointError(f"{where}: the rows of 'predictions' have different columns")
            value = [[r[c] for c in columns] for r in value]
        return {only.name: decode_value(value, only.dtype, f"{where}: output {one_line(only.name, 40)!r}")}


class MLflowDataframe(MLflowScoring):
    id = "mlflow-dataframe"
    title = "MLflow scoring server (dataframe_split)"

    def body(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        arrays = [np.asarray(a) for a in batch.values()]
        if len(arrays) != 1 or arrays[0].ndim != 2:
            shapes = ", ".join(str(list(a.shape)) for a in arrays)
            raise EndpointError(
                f"{self.where}: dataframe_split carries one 2-D table, the record's inputs are {shapes}; "
                "use --protocol mlflow (tensors as 'inputs')"
            )
        table = arrays[0]
        return {"dataframe_split": {"columns": [str(i) for i in range(table.shape[1])], "data": json_value(table)}}
