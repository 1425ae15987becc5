"""Read the precision a loaded model computes in, from the model itself.

Owns: ``compute_precision`` (a Keras model's per-layer compute dtypes and dtype policy; a TFLite
model's quantized tensor types). TF32 is a fact of the host's runtime, not of the model: the save
combines the two (``causes.precision.with_runtime``). TensorFlow and Keras are reached through the
loaded model only; must not import ``identity`` (it imports this module).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envprint._tf.loading import LoadedModel

# Significand bits (with the implicit one) of each floating compute dtype: fewer bits, coarser steps.
_SIGNIFICAND = {"bfloat16": 8, "float16": 11, "float32": 24, "float64": 53}
_INTEGER_KERNELS = {"int8": "int8", "uint8": "int8", "int16": "int16"}


def _dtype_name(dtype: Any) -> str | None:
    name = getattr(dtype, "name", dtype)
    return name if isinstance(name, str) else None


def _keras(model: Any, layers: list[Any]) -> tuple[dict[str, Any] | None, str | None]:
    counts: dict[str, int] = {}
    for layer in layers:
        if type(layer).__name__ == "InputLayer":  # holds a placeholder, computes nothing
            continue
        name = _dtype_name(getattr(layer, "compute_dtype", None))
        if name in _SIGNIFICAND:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None, "no layer of the model has a floating compute dtype"
    policy = _dtype_name(getattr(model, "dtype_policy", None))
    compute = min(counts, key=_SIGNIFICAND.__getitem__)
    return {"compute": compute, "source": "keras_layer_dtypes", "layers": dict(sorted(counts.items())),
            "policy": policy}, None  # fmt: skip


def _tflite(interp: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Integer kernels where a tensor is quantized (a scale); else the float tensors' dtype."""
    counts: dict[str, int] = {}
    for d in interp.get_tensor_details():
        name = np.dtype(d["dtype"]).name
        scales = (d.get("quantization_parameters") or {}).get("scales")
        if name in _INTEGER_KERNELS and scales is not None and len(scales):
            counts[_INTEGER_KERNELS[name]] = counts.get(_INTEGER_KERNELS[name], 0) + 1
        elif name in ("float32", "float16"):
            counts[name] = counts.get(name, 0) + 1
    quantized = [k for k in ("int8", "int16") if k in counts]
    # float16 tensors in a TFLite model are weights stored in half precision and dequantized
    # to float32 before the kernels run: the arithmetic is float32.
    compute = quantized[0] if quantized else "float32" if counts else None
    if compute is None:
        return None, "the TFLite model has no float or quantized integer tensor"
    fact: dict[str, Any] = {"compute": compute, "source": "tflite_tensor_types", "layers": dict(sorted(counts.items()))}
    if not quantized and "float16" in counts:
        fact["unavailable"] = {"compute": "float16 weights are dequantized to float32 before the kernels run"}
    return fact, None


def compute_precision(loaded: LoadedModel, layers: list[Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """The model's compute precision as ComputePrecision fields, or None and why it was not read."""
    if loaded.keras_model is not None and layers is not None:
        return _keras(loaded.keras_model, layers)
    interp = getattr(loaded, "_interp", None)
    if loaded.format == "tflite" and interp is not None:
        return _tflite(interp)
    return None, f"a {loaded.format} model carries no per-layer compute dtypes envprint reads"
