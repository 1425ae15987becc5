"""TensorFlow Serving's gRPC API: ``PredictionService/Predict`` and ``GetModelMetadata``, ``ModelService/GetModelStatus``.

URLs: ``grpc://HOST:PORT/NAME`` (or ``grpcs://`` for TLS), optionally ``/versions/V`` or
``/labels/L`` after the name; ``/v1/models/NAME...`` paths are read too. Tensors travel as
``TensorProto`` bytes (``tensor_content``): the exact transport. The official protos come from
tensorflow-serving-api through ``envprint._tf.serving`` (they import TensorFlow), and grpcio,
both imported only when this protocol runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

import numpy as np

from envprint.check.endpoint.base import NotReady, Protocol, ServedModel, ServedTensor, Target, TransportOptions
from envprint.errors import DependencyError, EndpointError, UsageError, one_line

_PATH = re.compile(r"^(?:/v1/models)?/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?/?$")
_AVAILABLE = 30  # ModelVersionStatus.State.AVAILABLE


class TFServingGRPC(Protocol):
    id = "tfserving-grpc"
    title = "TensorFlow Serving gRPC"
    schemes = ("grpc", "grpcs")
    exact = True
    metadata_implies_ready = True  # GetModelMetadata answers NOT_FOUND until a version is loaded

    @classmethod
    def claims(cls, parts: SplitResult) -> int:
        return 2 if parts.scheme in cls.schemes else 0

    @classmethod
    def target_from_url(cls, parts: SplitResult) -> Target:
        m = _PATH.match(parts.path)
        return Target(m["name"], m["version"], m["label"]) if m else Target()

    def __init__(self, url: str, options: TransportOptions, target: Target) -> None:
        super().__init__(url, options, target)
        from envprint._tf import serving

        try:
            import grpc
        except ImportError:
            raise DependencyError(
                "the TF Serving gRPC protocol needs grpcio; pip install 'envprint[tfserving]'"
            ) from None
        self._grpc = grpc
        self._apis = serving.apis()
        self._serving = serving
        opts = options
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise UsageError(f"{self.where}: a gRPC URL needs a host and a port, e.g. grpc://localhost:8500/NAME")
        address = f"{parts.hostname}:{parts.port}"
        channel_options = [("grpc.max_receive_message_length", opts.max_bytes), ("grpc.enable_http_proxy", 0)]
        if parts.scheme == "grpcs":
            roots = open(opts.cacert, "rb").read() if opts.cacert else None  # noqa: SIM115 - read at once
            self._channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(roots), channel_options)
        else:
            self._channel = grpc.insecure_channel(address, channel_options)
        self._metadata = tuple((k.lower(), v) for k, v in opts.headers().items())
        self._predict = self._apis.prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = self._apis.model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _spec(self, spec: Any, signature: str | None = None) -> None:
        t = self.target
        if not t.model_name:
            raise UsageError(
                f"{self.where}: which model? name it in the URL (grpc://HOST:PORT/NAME) or with --model-name"
            )
        spec.name = t.model_name
        if t.version:
            spec.version.value = int(t.version)
        elif t.label:
            spec.version_label = t.label
        if signature:
            spec.signature_name = signature

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        grpc, opts = self._grpc, self.options
        try:
            answer = method(request, timeout=min(opts.read_timeout, opts.deadline), metadata=self._metadata)
        except grpc.RpcError as exc:
            code, details = exc.code(), one_line(exc.details() or "", 160)
            words = f"{self.where}: gRPC {code.name} ({details or 'no message'})"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                raise NotReady(words + "; is the server running and the model loaded?") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise EndpointError(
                    f"{self.where}: no answer within {min(opts.read_timeout, opts.deadline):g} s"
                ) from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise EndpointError(words + f"; the answer may exceed the cap ({opts.max_bytes} bytes)") from None
            raise EndpointError(words) from None
        return answer

    def ready(self) -> None:
        request = self._apis.get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        answer = self._call(self._models.GetModelStatus, request)
        if not any(v.state == _AVAILABLE for v in answer.model_version_status):
            raise NotReady(f"{self.where}: no version of {self.target.model_name!r} is AVAILABLE yet")

    def metadata(self) -> ServedModel:
        apis = self._apis
        request = apis.get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        answer = self._call(self._predict.GetModelMetadata, request)
        sigmap = apis.get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in answer.metadata or not answer.metadata["signature_def"].Unpack(sigmap):
            raise EndpointError(f"{self.where}: the metadata has no signature_def; is this TF Serving?")
        name = self.target.signature or "serving_default"
        spec = answer.model_spec
        version = str(spec.version.value) if spec.HasField("version") else None
        signatures = tuple(sorted(sigmap.signature_def))
        if name not in sigmap.signature_def:
            return ServedModel(spec.name, version, None, (), (), signatures)
        sig = sigmap.signature_def[name]
        return ServedModel(spec.name, version, name, self._tensors(sig.inputs), self._tensors(sig.outputs), signatures)

    def _tensors(self, infos: Any) -> tuple[ServedTensor, ...]:
        out = []
        for key in sorted(infos):
            info = infos[key]
            shape = (
                None
                if info.tensor_shape.unknown_rank
                else tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
            )
            out.append(ServedTensor(key, self._serving.dtype_name(info.dtype), shape))
        return tuple(out)

    def predict(self, batch: Mapping[str, np.ndarray], served: ServedModel) -> dict[str, np.ndarray]:
        request = self._apis.predict_pb2.PredictRequest()
        self._spec(request.model_spec, served.signature)
        for name, arr in batch.items():
            request.inputs[name].CopyFrom(self._serving.to_tensor_proto(np.ascontiguousarray(arr)))
        answer = self._call(self._predict.Predict, request)
        out = {}
        for name in answer.outputs:
            try:
                out[name] = self._serving.from_tensor_proto(answer.outputs[name])
            except (TypeError, ValueError) as exc:
                raise EndpointError(
                    f"{self.where}: output {one_line(name, 40)!r} is not a readable tensor ({one_line(exc, 80)})"
                ) from None
        return out

    def close(self) -> None:
        self._channel.close()
