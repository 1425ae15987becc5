"""KServe's V1 protocol: ``POST /v1/models/NAME:predict`` with row ``instances``, answered by ``predictions``.

The path is TF Serving REST's: ``registry`` asks the server which it is (``GET /v1/models/NAME``
answers ``{"name", "ready"}`` on KServe, ``model_version_status`` on TF Serving). The body is TF
Serving's row format, so the encoding and decoding are ``TFServingREST``'s (floats sent exact,
bytes as ``{"b64": ...}``, ``predictions`` as rows of one output or of named outputs). V1 has no
metadata endpoint and no versions: the metadata is read from the same server's Open Inference
Protocol (KServe serves both on one port) where it answers, else the record's names and dtypes
are sent as they are. A model's answer is decoded as the record's dtype only where nothing else
says which (JSON numbers carry none).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from envprint.check.endpoint.base import NotReady, ServedModel
from envprint.check.endpoint.kserve_v2 import KServeV2
from envprint.check.endpoint.tfserving_rest import TFServingREST
from envprint.errors import EndpointError, UsageError


class KServeV1(TFServingREST):
    id = "kserve-v1"
    title = "KServe V1 (REST)"
    rows = True

    def _model_url(self) -> str:
        """``/v1/models/NAME``: KServe's V1 routes no versions or labels (a version in the URL is only reported)."""
        if not self.target.model_name:
            raise UsageError(f"{self.where}: which model? name it in the URL (/v1/models/NAME) or with --model-name")
        return self.transport.base_url.rstrip("/") + f"/v1/models/{self.target.model_name}"

    def _status(self) -> Any:
        return self._get(self._model_url())

    def confirms(self) -> bool:
        try:
            doc = self._status()
        except EndpointError:
            return False
        return isinstance(doc, dict) and "ready" in doc and "model_version_status" not in doc

    def ready(self) -> None:
        doc = self._status()
        if not isinstance(doc, dict) or "ready" not in doc:
            raise EndpointError(f"{self.where}: the model status has no 'ready'; is this a KServe V1 server?")
        if doc["ready"] is not True:
            raise NotReady(f"{self.where}: the model is not ready yet")

    def metadata(self) -> ServedModel:
        v2 = KServeV2(self.url, self.options, dataclasses.replace(self.target, version=None, label=None))
        v2.transport = self.transport
        try:
            served = v2.metadata()
        except EndpointError:  # no V2 beside V1: the server says nothing, the record's request is sent
            return ServedModel(self.target.model_name or "", None, "")
        return dataclasses.replace(served, version=self.target.version)

    def predict(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> dict[str, np.ndarray]:
        return super().predict(batch, dataclasses.replace(served, signature=None))  # no signature_name in V1
