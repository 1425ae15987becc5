"""The contract every loaded model keeps, and the helpers its formats share.

Owns: ``LoadedModel`` (named NumPy inputs -> named NumPy outputs, ``predict``/``call``/``_weights``),
the checks of probes against a model's inputs, the one-line wording of a failed prediction, and
the small helpers of tensor names, dtypes, shapes and batches that every format's loader uses.
TensorFlow is imported inside functions only, through ``envprint._tf``; must not import a
format's loader module (they import this one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint._tf.common import Format, _one_line
from envprint.errors import EnvprintError, ModelError
from envprint.record.probes import STRING_DTYPE, TensorSpecInfo, numpy_dtype


def _natural_key(name: str) -> list[Any]:
    # "output_10" after "output_2": TensorFlow numbers outputs, and sorted() would not.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _strip_var_suffix(name: str) -> str:
    """'dense/kernel:0' -> 'dense/kernel': Keras 3 paths lack TensorFlow's output index."""
    return re.sub(r":\d+$", "", name)


def _dtype_name(dtype: Any) -> str:
    """A NumPy dtype name for a tf.DType, a Keras 3 dtype string or a NumPy type."""
    if isinstance(dtype, str):
        name = dtype
    elif hasattr(dtype, "as_numpy_dtype"):  # tf.DType
        name = dtype.name
    else:
        dt = np.dtype(dtype)
        name = STRING_DTYPE if dt.kind in "OSU" else dt.name
    return STRING_DTYPE if name in ("string", "str", "object", "bytes") else name


def _shape(shape: Any, what: str, path: Path) -> tuple[int | None, ...]:
    if getattr(shape, "rank", 0) is None:  # tf.TensorShape of unknown rank
        raise ModelError(f"{path}: {what} has an unknown rank; export the model with a fixed-rank input signature")
    return tuple(None if d is None or int(d) < 0 else int(d) for d in shape)


def _to_numpy(value: Any) -> np.ndarray:
    return np.array(value.numpy() if hasattr(value, "numpy") else value, copy=True)


def _read_numpy(value: Any, tf: Any) -> np.ndarray:
    """A variable's value as a read-only NumPy array, for hashing only.

    ``Variable.numpy()`` copies (EagerTensor.numpy() makes its array writable); a tensor read
    of the variable, seen through ``__array__``, shares the variable's host buffer on CPU, so
    hashing a 1 GB model reads its weights in place. A resource variable (TensorFlow's, and Keras
    3's on TensorFlow) is read by its handle with ``ReadVariableOp``, the op the conversion ends in:
    the same buffer without the dispatch layers, which cost MobileNetV2's 262 weights 19 ms of the
    38 ms an in-process verify spent reading them on its first call (8 ms this way).
    """
    handle = getattr(value, "handle", None)
    if getattr(handle, "dtype", None) == tf.resource:
        try:
            return np.asarray(tf.raw_ops.ReadVariableOp(resource=handle, dtype=tf.as_dtype(value.dtype)))
        except (TypeError, ValueError, AttributeError):  # a variable kind that reads otherwise
            pass
    try:
        return np.asarray(tf.convert_to_tensor(value))
    except (TypeError, ValueError):  # not convertible: a plain array, or a foreign backend's variable
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


class LoadedModel:
    """A loaded model of any format, seen as named NumPy inputs -> named NumPy outputs.

    ``predict`` is the deployment path; ``call`` is the reference for the self-check: for Keras
    models ``Model.predict`` (tf.function, and XLA where Keras 3 turns it on: jit_compile="auto"
    on GPU hosts) against eager ``model(x, training=False)``. SavedModel and TFLite have one
    function only, so their ``call`` is that function run on all probes as one batch.
    ``batch_size=None`` means one batch holding every probe, for every format, so that the
    batch size (which can change kernels, hence bits) is a recorded choice, not a default.
    """

    format: Format
    runtime: str = "keras"

    def __init__(
        self,
        path: Path,
        inputs: list[TensorSpecInfo],
        outputs: list[TensorSpecInfo],
        *,
        keras_model: Any = None,
        signature: str | None = None,
    ) -> None:
        self.path = path
        self.inputs = inputs
        self.outputs = outputs
        self.keras_model = keras_model
        self.signature = signature

    def __repr__(self) -> str:
        return f"<LoadedModel {self.format} {self.path} inputs={[s.name for s in self.inputs]}>"

    def predict(self, inputs: Mapping[str, np.ndarray], batch_size: int | None = None) -> dict[str, np.ndarray]:
        x, n = self._check_inputs(inputs)
        if batch_size is not None and batch_size < 1:
            raise ModelError(f"batch size must be at least 1, got {batch_size}; pass --batch-size N")
        return self._guard(lambda: self._predict(x, min(batch_size or n, n)), x)

    def call(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x, n = self._check_inputs(inputs)
        return self._guard(lambda: self._call(x, n), x)

    # -- subclasses implement these
    def _predict(self, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _call(self, x: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return self._predict(x, n)

    def _weights(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, value) of each weight, read one at a time so that hashing never holds them all.

        A value may share memory with the model: read it before asking for the next, never keep it.
        """
        raise NotImplementedError

    def weights(self) -> Iterator[tuple[str, np.ndarray]]:
        """``_weights()``, public: a seam for tests and tools that read what the weights digest hashes."""
        return self._weights()

    # -- shared
    def _guard(self, run: Any, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            out = run()
        except EnvprintError:
            raise
        except Exception as exc:
            oov = _out_of_vocabulary(self.path, exc, x)
            if oov is not None:
                raise oov from exc
            raise ModelError(
                f"{self.path}: prediction failed ({type(exc).__name__}: {_one_line(exc)}); "
                "check that the probes fit the model's inputs"
            ) from exc
        names = [s.name for s in self.outputs]
        return {k: out[k] for k in names} if set(out) == set(names) else out

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        names = [s.name for s in self.inputs]
        missing = [n for n in names if n not in inputs]
        extra = [k for k in inputs if k not in names]
        if missing or extra:
            raise ModelError(
                f"{self.path}: probes have inputs {sorted(inputs)} but the model expects {names}; "
                "name the probes after the model's inputs"
            )
        x: dict[str, np.ndarray] = {}
        sizes = set()
        for spec in self.inputs:
            arr = np.asarray(inputs[spec.name])
            if spec.dtype == STRING_DTYPE:
                ok = arr.dtype.kind in "SU"
            else:
                ok = arr.dtype == numpy_dtype(spec.dtype)
            if not ok:
                raise ModelError(
                    f"{self.path}: input {spec.name!r} is {arr.dtype} but the model expects {spec.dtype}; "
                    "load probes with envprint.record.probes.load_probes, which casts them"
                )
            fits = arr.ndim == len(spec.shape) and all(
                d is None or d == a for d, a in zip(spec.shape[1:], arr.shape[1:], strict=True)
            )
            if not fits:
                raise ModelError(
                    f"{self.path}: input {spec.name!r} has shape {arr.shape} but the model expects {spec.shape} "
                    "(dimension 0 is the batch); fix the probes' shape"
                )
            sizes.add(arr.shape[0] if arr.ndim else 1)
            x[spec.name] = arr
        if len(sizes) > 1:
            raise ModelError(
                f"{self.path}: probe inputs disagree on the batch size {sorted(sizes)}; give every input the same number"
            )
        return x, sizes.pop() if sizes else 1


# TensorFlow's Gather on CPU: "indices[1,3] = 57 is not in [0, 50)", deep inside a graph traceback.
_OOV = re.compile(r"indices\[([\d,]+)\] = (-?\d+) is not in \[0, (\d+)\)")


def _out_of_vocabulary(path: Path, exc: BaseException, x: Mapping[str, np.ndarray]) -> ModelError | None:
    """An Embedding index outside its vocabulary, in one line naming the input, the index and the vocabulary.

    The index is found in the integer inputs at the position TensorFlow reports (the position in
    the batch that failed, so the first batch's when probes run in several); when no single input
    holds it there, the message names none.
    """
    m = _OOV.search(str(exc))
    if m is None:
        return None
    where, value, size = tuple(int(i) for i in m.group(1).split(",")), int(m.group(2)), int(m.group(3))
    holders = [
        name
        for name, arr in x.items()
        if arr.dtype.kind in "iu"
        and arr.ndim == len(where)
        and all(i < d for i, d in zip(where, arr.shape, strict=True))
        and int(arr[where]) == value
    ]
    what = f"input {holders[0]!r} holds" if len(holders) == 1 else "an input holds"
    return ModelError(
        f"{path}: {what} index {value} at {list(where)}, outside the vocabulary of the Embedding that reads it "
        f"(input_dim {size}: indices 0 to {size - 1}); fix the probes"
    )


def _batches(x: dict[str, np.ndarray], n: int, size: int) -> Iterable[dict[str, np.ndarray]]:
    for start in range(0, n, size):
        yield {k: v[start : start + size] for k, v in x.items()}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts], axis=0) if parts[0][k].ndim else parts[0][k] for k in parts[0]}


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
    return out


def _choose_signature(path: Path, available: list[str], wanted: str | None) -> str:
    listed = ", ".join(sorted(available)) or "none"
    if wanted is not None:
        if wanted not in available:
            raise ModelError(f"{path}: no signature {wanted!r}; available signatures: {listed}; pass --signature NAME")
        return wanted
    if "serving_default" in available:
        return "serving_default"
    if len(available) == 1:
        return available[0]
    if not available:
        raise ModelError(
            f"{path}: has no signatures to run; export it with model.export() or tf.saved_model.save(..., signatures=...)"
        )
    raise ModelError(f"{path}: no 'serving_default' signature and several others: {listed}; pass --signature NAME")
