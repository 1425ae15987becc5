"""Keras models: ``.keras`` archives and Keras HDF5 (``.h5``) files, loaded by Keras.

Owns: ``KerasModel`` (a Keras model of any Keras seen as a ``LoadedModel``), ``load`` for both
Keras file formats (they share Keras's ``load_model``, its prechecks and its error wording in
``keras_checks``), and ``keras_weights``. TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint import formats
from envprint._tf import import_keras, import_tensorflow, keras_flavor
from envprint._tf.common import Format, _one_line
from envprint._tf.keras_checks import _keras_load_error, _precheck_h5, _precheck_keras_archive
from envprint._tf.loaders.base import (
    STRING_DTYPE,
    LoadedModel,
    TensorSpecInfo,
    _dtype_name,
    _read_numpy,
    _shape,
    _strip_var_suffix,
    _to_numpy,
    _unique,
)
from envprint.errors import ModelError


def _running_backend() -> str:
    """The backend the imported Keras runs on ('tensorflow' for Keras 2 and tf_keras, which have no other)."""
    config = getattr(sys.modules.get("keras"), "config", None)
    backend = getattr(config, "backend", None)
    return str(backend()) if callable(backend) else "tensorflow"


def _keras_struct(model: Any, attr_k3: str, attr_k2: str) -> Any:
    struct = getattr(model, attr_k3, None)
    if struct is None and getattr(model, "_functional", None) is not None:  # Keras 3 Sequential
        struct = getattr(model._functional, attr_k3, None)
    return struct if struct is not None else getattr(model, attr_k2, None)


def _history_name(tensor: Any) -> str | None:
    hist = getattr(tensor, "_keras_history", None)
    op = hist[0] if hist else None
    return getattr(op, "name", None)


def _keras_side(model: Any, which: str) -> tuple[list[str], list[Any], str]:
    """(names, tensors, feed kind) of a Keras model's inputs or outputs, in the model's order."""
    k3, k2 = ("_inputs_struct", "_nested_inputs") if which == "input" else ("_outputs_struct", "_nested_outputs")
    struct = _keras_struct(model, k3, k2)
    if isinstance(struct, Mapping) and any(isinstance(v, (Mapping, list, tuple)) for v in struct.values()):
        # Nested ({'a': x, 'pair': [y, z]}): each leaf by its own name, fed back in the model's structure.
        leaves = import_tensorflow().nest.flatten(struct)
        names = [_history_name(t) or getattr(t, "name", None) or f"{which}_{i}" for i, t in enumerate(leaves)]
        return _unique(names), leaves, "nested"
    if isinstance(struct, Mapping):
        return [str(k) for k in struct], list(struct.values()), "dict"
    tensors = list(getattr(model, f"{which}s", None) or [])
    listed = getattr(model, f"{which}_names", None)  # Keras 2 always; Keras 3 Functional outputs only
    if listed is not None and len(listed) == len(tensors):
        names = [str(n) for n in listed]
    else:
        names = [_history_name(t) or getattr(t, "name", None) or f"{which}_{i}" for i, t in enumerate(tensors)]
    kind = "list" if isinstance(struct, (list, tuple)) or len(tensors) != 1 else "single"
    return _unique(names), tensors, kind


_KERAS3_TF_TRAINER = "keras.src.backend.tensorflow.trainer"


class KerasModel(LoadedModel):
    def __init__(self, path: Path, fmt: Format, model: Any) -> None:
        self.format = fmt
        try:
            in_names, self._input_tensors, self._feed_kind = _keras_side(model, "input")
            out_names, out_tensors, _ = _keras_side(model, "output")
        except (AttributeError, ValueError) as exc:
            raise ModelError(
                f"{path}: the model has no defined inputs ({_one_line(exc)}); save a built functional or "
                "Sequential model (with keras.Input), or export a SavedModel"
            ) from exc
        if not self._input_tensors or not out_tensors:
            raise ModelError(
                f"{path}: the model has no defined inputs or outputs (a subclassed model saved before it was built?); "
                "save a functional or Sequential model with keras.Input, or export a SavedModel"
            )
        spec = lambda n, t: TensorSpecInfo(n, _shape(t.shape, f"tensor {n!r}", path), _dtype_name(t.dtype))  # noqa: E731
        super().__init__(
            path,
            [spec(n, t) for n, t in zip(in_names, self._input_tensors, strict=True)],
            [spec(n, t) for n, t in zip(out_names, out_tensors, strict=True)],
            keras_model=model,
        )

    def _feed(self, x: dict[str, np.ndarray]) -> Any:
        if strings := [s.name for s in self.inputs if s.dtype == STRING_DTYPE]:
            backend = _running_backend()
            if backend != "tensorflow":  # JAX, OpenVINO and torch have no string tensor to take them
                raise ModelError(
                    f"{self.path}: input {strings[0]!r} takes strings, which Keras on the {backend} backend cannot "
                    "pass into a model (only TensorFlow has string tensors); verify it under KERAS_BACKEND=tensorflow"
                )
            # Keras 3 refuses NumPy's str and bytes arrays ("Invalid dtype: str384") but takes a tf.string
            # tensor; and a call mixing tensors with arrays it refuses too, so every input goes as a tensor.
            tf = import_tensorflow()
            x = {k: tf.constant(v) for k, v in x.items()}
        if self._feed_kind == "dict":
            return {s.name: x[s.name] for s in self.inputs}
        if self._feed_kind == "nested":
            struct = _keras_struct(self.keras_model, "_inputs_struct", "_nested_inputs")
            return import_tensorflow().nest.pack_sequence_as(struct, [x[s.name] for s in self.inputs])
        if self._feed_kind == "single":
            return x[self.inputs[0].name]
        return [x[s.name] for s in self.inputs]

    def feed(self, x: dict[str, np.ndarray]) -> Any:
        """Probes by input name -> what this Keras model's own predict takes; a seam for tests and tools."""
        return self._feed(x)

    def named(self, result: Any) -> dict[str, np.ndarray]:
        """What this Keras model's own predict returned -> arrays by output name; a seam for tests and tools."""
        return self._named(result)

    def _named(self, result: Any) -> dict[str, np.ndarray]:
        if isinstance(result, Mapping):
            return {str(k): _to_numpy(v) for k, v in result.items()}
        values = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(values) != len(self.outputs):
            raise ModelError(
                f"{self.path}: the model returned {len(values)} outputs but declares {len(self.outputs)}; re-save the model"
            )
        return {s.name: _to_numpy(v) for s, v in zip(self.outputs, values, strict=True)}

    def _predict(self, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        first = next(iter(x.values()))
        n = first.shape[0] if first.ndim else 1
        if batch_size >= n:
            # One batch: predict() would build a data pipeline and a progress loop around the same
            # predict function (80 ms -> 0.6 ms for a small MLP); the outputs are bit-identical.
            return self._named(self._one_batch(self._feed(x)))
        return self._named(self.keras_model.predict(self._feed(x), batch_size=batch_size, verbose=0))

    def _one_batch(self, feed: Any) -> Any:
        """One batch through the model's predict function, handed the structure predict() hands it.

        Keras 3's TensorFlow trainer traces ``predict_function`` once per input structure:
        ``predict()`` passes ``[x]``, ``[{name: x}]`` or ``[((a, b),)]``, while ``predict_on_batch``
        passes ``[(x,)]``. Feeding predict()'s structure reuses the trace that a server's warm-up
        ``predict()`` already paid for, so an in-process verify of MobileNetV2 does not re-trace
        it (about 1 s on 2 cores). Same function, same graph, same bits (tested). Any other Keras,
        or a model that overrides predict_on_batch, goes through its own predict_on_batch.
        """
        model = self.keras_model
        if getattr(type(model).predict_on_batch, "__module__", "") != _KERAS3_TF_TRAINER:
            return model.predict_on_batch(feed)
        model.make_predict_function()
        data = (tuple(feed),) if self._feed_kind == "list" else feed
        return model.predict_function([data])

    def _call(self, x: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return self._named(self.keras_model(self._feed(x), training=False))

    def _weights(self) -> Iterator[tuple[str, np.ndarray]]:
        return keras_weights(self.keras_model)

    def flavor(self) -> str:
        """Which Keras this model runs on: 'keras3', 'tf_keras' or 'keras2' (the one tf.keras is)."""
        return keras_flavor(import_tensorflow())


def keras_weights(model: Any) -> Iterator[tuple[str, np.ndarray]]:
    """(name, value) of each weight of a Keras model (any Keras, built in any way), read in place.

    The names are Keras 3 paths ('dense/kernel') or Keras 2 names without ':0'; only envprint
    0.1.0's ``named-v1`` digest uses them. Works for subclassed models too, which have no inputs.
    """
    tf = import_tensorflow()
    for w in model.weights:
        path = getattr(w, "path", None)  # Keras 3: 'dense/kernel'; its .name is only 'kernel'
        yield _strip_var_suffix(path if isinstance(path, str) else w.name), _read_numpy(w, tf)


def _load_keras(
    path: Path,
    fmt: Format,
    custom_objects: dict[str, Any] | None,
    safe_mode: bool,
    keras: Any = None,
    wrap: type[KerasModel] | None = None,
) -> KerasModel:
    """Load a Keras file with ``keras`` (None: the Keras TensorFlow runs) and wrap it as ``wrap`` (None: KerasModel).

    envprint._keras passes the backend-neutral Keras and its own model class, so that a Keras
    running on JAX or OpenVINO loads through the same prechecks and error wording.
    """
    keras = keras if keras is not None else import_keras()
    saved = _precheck_keras_archive(path, keras) if fmt == "keras" else _precheck_h5(path, safe_mode, keras)
    objects = dict(custom_objects or {})
    registered_name: Any = getattr(getattr(keras, "saving", None), "get_registered_name", None)
    for obj in list(objects.values()) if registered_name is not None else []:
        # A class saved while registered is stored as 'package>Name'; map that too.
        try:
            objects.setdefault(registered_name(obj), obj)
        except Exception:  # noqa: S110 - not registrable: only its plain name applies
            pass
    try:
        with _named_for_keras(path, fmt) as name:
            model = keras.models.load_model(name, custom_objects=objects or None, compile=False, safe_mode=safe_mode)
    except Exception as exc:
        raise _keras_load_error(path, fmt, exc, set(objects), saved, keras.__version__) from exc
    return (wrap or KerasModel)(path, fmt, model)


@contextlib.contextmanager
def _named_for_keras(path: Path, fmt: Format) -> Iterator[str]:
    """``path`` under a name Keras accepts for ``fmt``.

    Keras 3's load_model picks the format from the file name alone and refuses a .keras archive
    called model.bin, so ``--format keras`` could not override the suffix: such a file is loaded
    through a symbolic link with the right suffix, in a temporary directory (the file is not copied).
    """
    suffixes = formats.get(fmt).suffixes
    if path.name.lower().endswith(suffixes):
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="envprint-load-") as folder:
        alias = Path(folder) / f"model{suffixes[0]}"
        alias.symlink_to(path.resolve())
        yield str(alias)


def load(
    path: Path, fmt: Format, *, custom_objects: dict[str, Any] | None, safe_mode: bool, signature: str | None
) -> KerasModel:
    """A .keras or .h5 file, loaded by Keras (``compile=False``: inference needs no optimizer)."""
    refuse_signature(path, fmt, signature)
    return _load_keras(path, fmt, custom_objects, safe_mode)


def refuse_signature(path: Path, fmt: Format, signature: str | None) -> None:
    """A Keras file has one call, no signatures: --signature is refused in one line (both Keras loaders)."""
    if signature is not None:
        raise ModelError(
            f"{path}: --signature applies to SavedModel and TFLite models, not a {formats.get(fmt).label}; drop it"
        )
