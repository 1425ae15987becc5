"""What every module under ``envprint._tf`` says the same way: the model formats and one-line messages.

Owns: the ``Format`` type and ``FORMATS`` (the formats envprint loads), ``_LABEL`` (how a
message names each format) and ``_one_line`` (an exception's text flattened for a one-line
``ModelError``). Standard library only: must not import TensorFlow, Keras, NumPy or any other
``envprint._tf`` module (``errors`` is standard library only), so that ``loading``, ``keras_checks`` and ``identity`` can all import it.
"""

from __future__ import annotations

from typing import Literal

from envprint.errors import one_line as _one_line  # noqa: F401 - one helper for the whole package (errors.one_line)

Format = Literal["keras", "h5", "savedmodel", "tflite"]
FORMATS: tuple[str, ...] = ("keras", "h5", "savedmodel", "tflite")
_LABEL = {"keras": ".keras model", "h5": "Keras HDF5 (.h5) model", "savedmodel": "SavedModel", "tflite": "TFLite model"}
