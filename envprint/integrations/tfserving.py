"""TF Serving's warm-up file, written from envprint's probes: the inputs verify checks warm the server.

Owns: ``assets.extra/tf_serving_warmup_requests`` inside a SavedModel, a TFRecord file of
``tensorflow.serving.PredictionLog`` records (one PredictRequest per probe, on the signature the
record was made with), which TF Serving replays before it marks a model version available.

How, without installing a second TensorFlow: the ``tensorflow-serving-api`` wheel requires the
``tensorflow`` distribution itself, which beside ``tensorflow-cpu`` (or a CUDA build) would be a
second TensorFlow. The four messages needed are small, so they are built here from a
``FileDescriptorProto`` with google.protobuf (a dependency of TensorFlow), in a private descriptor
pool, with the field numbers of tensorflow_serving/apis/{model,predict,prediction_log}.proto;
``TensorProto`` comes from TensorFlow's own descriptors and ``tf.make_tensor_proto``, the records
from ``tf.io.TFRecordWriter``. The tests read the file back with TensorFlow's TFRecord reader and
the official tensorflow_serving protos.

Imports TensorFlow (inside functions only); used by ``save_with_warmup`` and ``envprint save
--tf-serving-warmup``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint.errors import UsageError
from envprint.record.atomic import plain_file_mode

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving reads at most this many warm-up records
_PACKAGE = "tensorflow.serving"


def warmup_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / WARMUP_DIR / WARMUP_FILE


def _field(name: str, number: int, kind: str, type_name: str | None = None, repeated: bool = False) -> Any:
    from google.protobuf import descriptor_pb2

    fdp = descriptor_pb2.FieldDescriptorProto
    f = fdp(name=name, number=number, type=getattr(fdp, f"TYPE_{kind}"))
    f.label = fdp.LABEL_REPEATED if repeated else fdp.LABEL_OPTIONAL
    if type_name:
        f.type_name = type_name
    return f


def _add_file_with_deps(pool: Any, file_descriptor: Any, added: set[str]) -> None:
    from google.protobuf import descriptor_pb2

    if file_descriptor.name in added:
        return
    for dependency in file_descriptor.dependencies:
        _add_file_with_deps(pool, dependency, added)
    proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(proto)
    pool.AddSerializedFile(proto.SerializeToString())
    added.add(file_descriptor.name)


def prediction_log_class() -> type:
    """The ``tensorflow.serving.PredictionLog`` message class, as far as warm-up needs it.

    Field numbers are those of TF Serving's protos (ModelSpec.name = 1, .signature_name = 3;
    PredictRequest.model_spec = 1, .inputs = 2; PredictLog.request = 1; PredictionLog.predict_log
    = 6), so the bytes parse with the official classes; fields warm-up does not use are left out.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow.core.framework import tensor_pb2

    pool = descriptor_pool.DescriptorPool()
    _add_file_with_deps(pool, tensor_pb2.DESCRIPTOR, set())
    f = descriptor_pb2.FileDescriptorProto(
        name="envprint/tensorflow_serving_warmup.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[tensor_pb2.DESCRIPTOR.name],
    )
    f.message_type.add(name="ModelSpec", field=[_field("name", 1, "STRING"), _field("signature_name", 3, "STRING")])
    request = f.message_type.add(name="PredictRequest")
    request.field.extend(
        [
            _field("model_spec", 1, "MESSAGE", f".{_PACKAGE}.ModelSpec"),
            _field("inputs", 2, "MESSAGE", f".{_PACKAGE}.PredictRequest.InputsEntry", repeated=True),
        ]
    )
    entry = request.nested_type.add(
        name="InputsEntry", field=[_field("key", 1, "STRING"), _field("value", 2, "MESSAGE", ".tensorflow.TensorProto")]
    )
    entry.options.map_entry = True
    f.message_type.add(name="PredictLog", field=[_field("request", 1, "MESSAGE", f".{_PACKAGE}.PredictRequest")])
    f.message_type.add(name="PredictionLog", field=[_field("predict_log", 6, "MESSAGE", f".{_PACKAGE}.PredictLog")])
    pool.AddSerializedFile(f.SerializeToString())
    descriptor = pool.FindMessageTypeByName(f"{_PACKAGE}.PredictionLog")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)  # pragma: no cover (older protobuf)


def warmup_records(probes: Mapping[str, np.ndarray], signature: str | None) -> list[bytes]:
    """One serialized PredictionLog per probe: a PredictRequest with a batch of one, on ``signature``."""
    from envprint._tf import import_tensorflow

    tf = import_tensorflow()
    n = len(next(iter(probes.values()))) if probes else 0
    if n > MAX_WARMUP_RECORDS:
        raise UsageError(
            f"--tf-serving-warmup: {n} probes, and TF Serving reads at most {MAX_WARMUP_RECORDS} warm-up requests; "
            f"pass --num-probes {MAX_WARMUP_RECORDS} or fewer"
        )
    prediction_log = prediction_log_class()
    records = []
    for i in range(n):
        log = prediction_log()
        request = log.predict_log.request
        request.model_spec.signature_name = signature or "serving_default"
        for name, array in sorted(probes.items()):
            request.inputs[name].ParseFromString(tf.make_tensor_proto(array[i : i + 1]).SerializeToString())
        records.append(log.SerializeToString())
    return records


def write_warmup(model_dir: str | Path, probes: Mapping[str, np.ndarray], signature: str | None) -> Callable[[], None]:
    """Write the warm-up file into the SavedModel ``model_dir``, atomically; return an undo for a failed save.

    The undo puts back what was there before: the previous warm-up file, or none.
    """
    from envprint._tf import import_tensorflow

    tf = import_tensorflow()
    records = warmup_records(probes, signature)
    path = warmup_path(model_dir)
    created_dir = not path.parent.exists()
    path.parent.mkdir(exist_ok=True)
    previous = path.read_bytes() if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{WARMUP_FILE}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; TF Serving often runs as another user and must read it
            os.fchmod(fd, plain_file_mode())
    finally:
        os.close(fd)
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

    def undo() -> None:
        if previous is None:
            path.unlink(missing_ok=True)
            if created_dir:
                try:
                    path.parent.rmdir()
                except OSError:
                    pass
        else:
            path.write_bytes(previous)

    return undo


def save_with_warmup(model: str | Path, **save_options: Any) -> Any:
    """``envprint.save`` of a SavedModel that also writes TF Serving's warm-up file from the probes.

    The warm-up file is written before the model's files are digested, so it is part of the
    model the record describes; a save that fails removes it again (or restores the previous one).
    """
    from envprint.check.saver import save

    fmt = save_options.get("fmt")
    if not Path(model).is_dir() or fmt not in (None, "savedmodel"):
        raise UsageError(
            f"{model}: --tf-serving-warmup writes into a SavedModel directory (model.export(...)); "
            "pass the export directory, or drop --tf-serving-warmup"
        )
    return save(
        model, model_files_hook=lambda loaded, probes: write_warmup(model, probes, loaded.signature), **save_options
    )
