"""TFLite flatbuffers, run by TensorFlow's interpreter (or LiteRT's where TensorFlow has none).

Owns: ``TFLiteModel``. TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import warnings
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
    _shape,
    _strip_var_suffix,
    _unique,
)
from envprint.errors import ModelError


def _tflite_interpreter(path: Path) -> tuple[Any, str]:
    """TensorFlow's own interpreter when it still ships one (the runtime the fingerprint records), else LiteRT."""
    tf = import_tensorflow()
    cls: Any = getattr(getattr(tf, "lite", None), "Interpreter", None)
    runtime = "tf.lite.Interpreter"
    if cls is None:
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteRT
        except ImportError:
            raise ModelError(
                f"{path}: this TensorFlow has no tf.lite.Interpreter; pip install ai-edge-litert"
            ) from None
        cls, runtime = LiteRT, "ai_edge_litert"
    with warnings.catch_warnings():
        # TF >= 2.18 warns on every construction that tf.lite.Interpreter moves to LiteRT.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return cls(model_path=str(path)), runtime
        except Exception as exc:
            raise ModelError(
                f"{path}: cannot be loaded as a TFLite model ({type(exc).__name__}: {_one_line(exc)}); "
                "check that the file is complete, or re-convert it with tf.lite.TFLiteConverter"
            ) from exc


def _quantization(details: Mapping[str, Any]) -> tuple[float, int]:
    scale, zero_point = details.get("quantization") or (0.0, 0)
    return float(scale), int(zero_point)


def _clean_tensor_name(name: str) -> str:
    return _strip_var_suffix(name.removeprefix("serving_default_"))


class TFLiteModel(LoadedModel):
    format: Format = "tflite"

    def __init__(self, path: Path, signature: str | None) -> None:
        self._interp, self.runtime = _tflite_interpreter(path)
        sigs = self._interp.get_signature_list() or {}
        if sigs or signature is not None:
            name = _choose_signature(path, list(sigs), signature)
            self._runner = self._interp.get_signature_runner(name)
            in_details = dict(self._runner.get_input_details())
            out_details = dict(self._runner.get_output_details())
        else:  # converted without a signature: tensor names, cleaned
            name, self._runner = None, None
            in_details = dict(
                zip(
                    _unique([_clean_tensor_name(d["name"]) for d in self._interp.get_input_details()]),
                    self._interp.get_input_details(),
                    strict=True,
                )
            )
            out_details = dict(
                zip(
                    _unique([_clean_tensor_name(d["name"]) for d in self._interp.get_output_details()]),
                    self._interp.get_output_details(),
                    strict=True,
                )
            )
        self._in = dict(sorted(in_details.items(), key=lambda kv: _natural_key(kv[0])))
        self._out = dict(sorted(out_details.items(), key=lambda kv: _natural_key(kv[0])))

        def spec(n: str, d: Mapping[str, Any]) -> TensorSpecInfo:
            return TensorSpecInfo(n, _shape(d.get("shape_signature", d["shape"]), n, path), _dtype_name(d["dtype"]))

        super().__init__(
            path, [spec(n, d) for n, d in self._in.items()], [spec(n, d) for n, d in self._out.items()], signature=name
        )
        # (scale, zero point) of each input; (0.0, 0) for one that is not quantized.
        self.input_quantization = {n: _quantization(d) for n, d in self._in.items()}

    def _fixed_batch(self) -> int | None:
        dims = {int(d.get("shape_signature", d["shape"])[0]) for d in self._in.values() if len(d["shape"])}
        return None if not dims or -1 in dims else min(dims)

    def _predict(self, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        n = next(iter(x.values())).shape[0]
        fixed = self._fixed_batch()
        if fixed is not None:
            if n % fixed:
                raise ModelError(
                    f"{self.path}: the model takes batches of exactly {fixed}; give a multiple of {fixed} probes"
                )
            batch_size = fixed  # one sample at a time when the converter fixed the batch at 1
        return _concat([self._invoke(b) for b in _batches(x, n, batch_size)])

    def _invoke(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._runner is not None:  # resizes the inputs to the batch's shape itself
            return {k: np.array(v, copy=True) for k, v in self._runner(**batch).items()}
        interp = self._interp
        for name, d in self._in.items():
            interp.resize_tensor_input(d["index"], list(batch[name].shape), strict=False)
        interp.allocate_tensors()
        for name, d in self._in.items():
            interp.set_tensor(d["index"], batch[name])
        interp.invoke()
        return {name: np.array(interp.get_tensor(d["index"]), copy=True) for name, d in self._out.items()}

    def _weights(self) -> Iterator[tuple[str, np.ndarray]]:
        """Constant tensors: read by an op, written by none, not a model input.

        TFLite tensor names are tracing artifacts ('mlp_1/dense_2/MatMul', renumbered by every
        conversion), so the digest ignores them: see ``identity._digest``.
        """
        # A fresh interpreter: the one that predicts may hold a signature runner, and TFLite
        # refuses allocate_tensors() while anything else references its wrapper.
        interp, _ = _tflite_interpreter(self.path)
        interp.allocate_tensors()
        ops = interp._get_ops_details()  # private, but present in every TF >= 2.5 and in LiteRT
        read = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0}
        written = {int(i) for op in ops for i in op["outputs"]}
        inputs = {int(d["index"]) for d in interp.get_input_details()}
        for index in sorted(read - written - inputs):
            try:
                value = interp.get_tensor(index)  # already a copy, owned by the caller
            except ValueError:  # a variable or a tensor without data: not a constant
                continue
            yield "", value


def load(
    path: Path, fmt: Format, *, custom_objects: dict[str, Any] | None, safe_mode: bool, signature: str | None
) -> TFLiteModel:
    """A .tflite file, run through ``signature`` when it has signatures, else its input and output tensors."""
    return TFLiteModel(path, signature)
