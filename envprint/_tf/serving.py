"""TF Serving's official protos (tensorflow-serving-api) and TensorProto <-> NumPy, behind the TensorFlow door.

The ``tensorflow_serving.apis`` modules import TensorFlow (their messages are built on
``tensorflow/core/framework``), so they are reached only through here, inside functions, by the
gRPC endpoint protocol and the tests' TF Serving stand-in. ``tf.make_tensor_proto`` and
``tf.make_ndarray`` carry every bit: gRPC is the exact transport.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from envprint.errors import DependencyError


def apis() -> SimpleNamespace:
    """The modules: predict_pb2, get_model_metadata_pb2, get_model_status_pb2, model_pb2, and the gRPC stubs."""
    try:
        from tensorflow_serving.apis import (
            get_model_metadata_pb2,
            get_model_status_pb2,
            model_pb2,
            model_service_pb2_grpc,
            predict_pb2,
            prediction_service_pb2_grpc,
        )
    except ImportError as exc:
        raise DependencyError(
            f"the TF Serving gRPC protocol needs tensorflow-serving-api and grpcio ({exc.name or exc} is missing); "
            "pip install 'envprint[tfserving]' && pip install --no-deps 'tensorflow-serving-api==<your TensorFlow's 2.N>.*'"
        ) from None
    return SimpleNamespace(
        predict_pb2=predict_pb2, get_model_metadata_pb2=get_model_metadata_pb2,
        get_model_status_pb2=get_model_status_pb2, model_pb2=model_pb2,
        model_service_pb2_grpc=model_service_pb2_grpc, prediction_service_pb2_grpc=prediction_service_pb2_grpc,
    )  # fmt: skip


def to_tensor_proto(arr: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.make_tensor_proto(arr)


def from_tensor_proto(proto: Any) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(proto)


def dtype_name(enum_value: int) -> str | None:
    """A DataType enum value as a NumPy dtype name (None for one NumPy has no name for)."""
    import tensorflow as tf

    try:
        return np.dtype(tf.dtypes.as_dtype(enum_value).as_numpy_dtype).name
    except (TypeError, ValueError):
        return None
