"""SavedModel directories, loaded by ``tf.saved_model.load`` and run through one signature.

Owns: ``SavedModelLoaded``. TensorFlow is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint._tf import import_tensorflow
from envprint._tf.common import Format, _one_line
from envprint._tf.loaders.base import (
    LoadedModel,
    TensorSpecInfo,
    _batches,
    _choose_signature,
    _concat,
    _dtype_name,
    _natural_key,
    _read_numpy,
    _shape,
    _strip_var_suffix,
    _to_numpy,
)
from envprint.errors import ModelError


class SavedModelLoaded(LoadedModel):
    format: Format = "savedmodel"
    runtime = "tf.saved_model"

    def __init__(self, path: Path, signature: str | None) -> None:
        tf = import_tensorflow()
        try:
            self._obj = tf.saved_model.load(str(path))
        except Exception as exc:
            raise ModelError(
                f"{path}: cannot be loaded as a SavedModel ({type(exc).__name__}: {_one_line(exc)}); "
                "check that the directory is complete (saved_model.pb and variables/)"
            ) from exc
        signatures = dict(self._obj.signatures)
        name = _choose_signature(path, list(signatures), signature)
        self._fn = signatures[name]
        _args, kwargs = self._fn.structured_input_signature
        inputs = [
            TensorSpecInfo(k, _shape(s.shape, f"input {k!r}", path), _dtype_name(s.dtype))
            for k, s in sorted(kwargs.items(), key=lambda kv: _natural_key(kv[0]))
        ]
        outs = self._fn.structured_outputs
        if not isinstance(outs, Mapping):  # signatures return dicts; be lenient with odd exports
            outs = {f"output_{i}": s for i, s in enumerate(tf.nest.flatten(outs))}
        outputs = [
            TensorSpecInfo(k, _shape(s.shape, f"output {k!r}", path), _dtype_name(s.dtype))
            for k, s in sorted(outs.items(), key=lambda kv: _natural_key(kv[0]))
        ]
        super().__init__(path, inputs, outputs, signature=name)

    def _predict(self, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        tf = import_tensorflow()
        n = next(iter(x.values())).shape[0]
        parts = []
        for batch in _batches(x, n, batch_size):
            result = self._fn(**{k: tf.constant(v) for k, v in batch.items()})
            parts.append({str(k): _to_numpy(v) for k, v in result.items()})
        return _concat(parts)

    def _weights(self) -> Iterator[tuple[str, np.ndarray]]:
        # The variables the signature captures: the model's weights, not optimizer slots nor
        # Keras 3's seed-generator state, which `loaded.variables` also holds.
        tf = import_tensorflow()
        for v in self._fn.variables:
            yield _strip_var_suffix(v.name), _read_numpy(v, tf)


def load(
    path: Path, fmt: Format, *, custom_objects: dict[str, Any] | None, safe_mode: bool, signature: str | None
) -> SavedModelLoaded:
    """A SavedModel directory, run through ``signature`` (serving_default when there is one, else the only one)."""
    return SavedModelLoaded(path, signature)
