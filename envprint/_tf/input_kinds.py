"""What a loaded model says about the values of each input: the layer that reads it, or its quantization.

Owns: ``input_hints`` -> ``{input name: InputHint}`` for ``probe_kinds.generate_probes``. A Keras
model's input is followed through the layers that pass a tensor on unchanged (``PASS_THROUGH``:
InputLayer, Identity, dropout and noise layers, which are the identity at inference, and the
reshaping layers and casts, which keep every value) to the layers that read it: Embedding and
CategoryEncoding (ids below their size), TextVectorization (words of its vocabulary),
StringLookup and IntegerLookup (their vocabulary), Hashing (any value). A TFLite input
quantized to int8, uint8 or int16 takes its whole integer range, which dequantizes into the
range calibrated at conversion. A sparse or ragged Keras input, or one read only by a layer that
says nothing (a custom layer, a Dense fed integers), is ``opaque``: ``probe_kinds`` refuses it in
one line naming the input and what to pass. TensorFlow and Keras are imported inside functions
only (through the loaded model's objects); neither ``loading`` nor ``identity`` imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envprint._tf.identity import _class_names, _fed_by, _keras_layers
from envprint._tf.loaders.base import LoadedModel
from envprint.record.probe_kinds import HASHED, IDS, OPAQUE, QUANTIZED, TEXT, TOKENS, InputHint

PASS_THROUGH = frozenset(
    {
        "InputLayer",
        "Identity",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "AlphaDropout",
        "GaussianDropout",
        "GaussianNoise",
        "ActivityRegularization",
        "Reshape",
        "Flatten",
        "Permute",
        "RepeatVector",
        "Cast",  # keras.ops.cast in a functional model: ids cast to int32 before their Embedding keep their values
    }
)
_QUANTIZED_DTYPES = ("int8", "uint8", "int16")
_TEXT_WORDS = 8  # words per probe when TextVectorization pads to no fixed length


def input_hints(loaded: LoadedModel) -> dict[str, InputHint]:
    """Input name -> what the model says its values mean; inputs it says nothing of are left out."""
    quantization = getattr(loaded, "input_quantization", None)
    if quantization is not None:
        return _quantized(loaded, quantization)
    model = loaded.keras_model
    tensors = getattr(loaded, "_input_tensors", None)
    if model is None or tensors is None:
        return {}
    layers = _keras_layers(model)
    # Keras 3 keeps the ops called on its tensors (keras.ops.cast, ...) among its operations, not its layers.
    layers += [op for op in getattr(model, "operations", None) or [] if all(op is not layer for layer in layers)]
    hints = {}
    for spec, tensor in zip(loaded.inputs, tensors, strict=True):
        hint = _keras_input_hint(tensor, layers, spec.dtype)
        if hint is not None:
            hints[spec.name] = hint
    return hints


def _quantized(loaded: LoadedModel, quantization: dict[str, tuple[float, int]]) -> dict[str, InputHint]:
    hints = {}
    for spec in loaded.inputs:
        scale, zero_point = quantization.get(spec.name, (0.0, 0))
        if spec.dtype in _QUANTIZED_DTYPES:
            info = np.iinfo(spec.dtype)
            source = "quantization" if scale else "integer range"
            hints[spec.name] = InputHint(
                QUANTIZED, source, int(info.min), int(info.max) + 1, scale=float(scale), zero_point=int(zero_point)
            )
    return hints


def _outputs_of(layer: Any, tensor: Any) -> list[Any]:
    """The tensors ``layer`` makes from ``tensor`` in the calls where ``tensor`` feeds it."""
    out: list[Any] = []
    for node in getattr(layer, "_inbound_nodes", []) or []:
        inputs = getattr(node, "input_tensors", None)
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if any(t is tensor for t in inputs):
            made = getattr(node, "output_tensors", None) or getattr(node, "outputs", None) or []
            out.extend(made if isinstance(made, (list, tuple)) else [made])
    return out


def _readers(tensor: Any, layers: list[Any], depth: int = 0) -> list[Any]:
    """The layers that read ``tensor``'s values, past the layers that pass it on unchanged."""
    found: list[Any] = []
    for layer in layers:
        if not any(t is tensor for t in _fed_by(layer)):
            continue
        if type(layer).__name__ in PASS_THROUGH and depth < 16:
            for made in _outputs_of(layer, tensor):
                found.extend(_readers(made, layers, depth + 1))
        else:
            found.append(layer)
    return found


def _keras_input_hint(tensor: Any, layers: list[Any], dtype: str) -> InputHint | None:
    for flag in ("sparse", "ragged"):
        if getattr(tensor, flag, False):
            return InputHint(OPAQUE, flag)
    readers = _readers(tensor, layers)
    hints = [h for h in (_layer_hint(layer) for layer in readers) if h is not None]
    ids = [h for h in hints if h.kind == IDS]
    if ids:  # several Embeddings: the smallest vocabulary fits them all
        return min(ids, key=lambda h: h.high)
    if hints:
        return hints[0]
    if readers and (dtype == "string" or dtype.startswith(("int", "uint"))):  # not np.dtype: no bfloat16 there
        return InputHint(OPAQUE, ", ".join(sorted({type(layer).__name__ for layer in readers})))
    return None


def _vocabulary(layer: Any, drop: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        words = list(layer.get_vocabulary())
    except Exception:  # not adapted, or a Keras without get_vocabulary: nothing known
        return ()
    return tuple(w if isinstance(w, (int, np.integer)) and not isinstance(w, bool) else str(w) for w in words
                 if w not in drop and w != "")  # fmt: skip


def _layer_hint(layer: Any) -> InputHint | None:
    """The hint one reading layer gives, or None when it says nothing of its input's values."""
    names = _class_names(layer)
    name = type(layer).__name__
    if "Embedding" in names:
        return InputHint(IDS, name, 0, int(layer.input_dim))
    if "CategoryEncoding" in names:
        return InputHint(IDS, name, 0, int(layer.num_tokens))
    if "Hashing" in names:
        return InputHint(HASHED, name)
    if "TextVectorization" in names:
        words = _vocabulary(layer, ("[UNK]",))
        length = getattr(layer, "_output_sequence_length", None) or getattr(layer, "output_sequence_length", None)
        kind = TOKENS if getattr(layer, "_split", "whitespace") is None else TEXT
        return InputHint(kind, name, high=int(length or _TEXT_WORDS), tokens=words) if words else None
    if "StringLookup" in names or "IntegerLookup" in names:
        drop = (getattr(layer, "oov_token", None), getattr(layer, "mask_token", None))
        words = _vocabulary(layer, tuple(d for d in drop if d is not None))
        if "IntegerLookup" in names:
            words = tuple(int(w) for w in words)
        return InputHint(TOKENS, name, tokens=words) if words else None
    return None
