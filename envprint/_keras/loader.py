"""Keras files (.keras, .h5) loaded by Keras 3 on a backend other than TensorFlow.

Owns: ``BackendKerasModel`` (a Keras model on JAX, OpenVINO, PyTorch or NumPy seen as a
``LoadedModel``: weights read with ``keras.ops.convert_to_numpy``, no TensorFlow) and ``load``,
which ``formats.loader_for`` names for those backends. Loading shares the TensorFlow door's Keras
prechecks and error wording (``envprint._tf.loaders.keras._load_keras``, handed this Keras);
nothing here imports TensorFlow (the ``keras-door`` contract, and a test that reads ``sys.modules``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from envprint import formats
from envprint._keras import import_keras
from envprint._tf.common import Format
from envprint._tf.loaders.base import _strip_var_suffix
from envprint._tf.loaders.keras import KerasModel, _load_keras, refuse_signature


class BackendKerasModel(KerasModel):
    """A Keras 3 model on a backend other than TensorFlow; ``runtime`` names the backend."""

    def __init__(self, path: Path, fmt: Format, model: Any) -> None:
        super().__init__(path, fmt, model)
        self.runtime = f"keras-{formats.selected_backend()[0]}"

    def _weights(self) -> Iterator[tuple[str, np.ndarray]]:
        ops = import_keras().ops
        for w in self.keras_model.weights:
            path = getattr(w, "path", None) or w.name
            yield _strip_var_suffix(str(path)), np.asarray(ops.convert_to_numpy(w.value))

    def flavor(self) -> str:
        return "keras3"  # only Keras 3 has backends other than TensorFlow


def load(
    path: Path, fmt: Format, *, custom_objects: dict[str, Any] | None, safe_mode: bool, signature: str | None
) -> BackendKerasModel:
    """A .keras or .h5 file, loaded by the selected backend's Keras (``compile=False``)."""
    refuse_signature(path, fmt, signature)
    model = _load_keras(path, fmt, custom_objects, safe_mode, keras=import_keras(), wrap=BackendKerasModel)
    assert isinstance(model, BackendKerasModel)  # noqa: S101 - _load_keras wraps with the class it is given
    return model
