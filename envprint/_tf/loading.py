"""Load a saved model in any of its formats and run it on probes.

Owns: ``detect_format``, ``load_model`` -> ``LoadedModel`` (``.keras``, ``.h5``, SavedModel,
``.tflite``), ``wrap_model``, ``keras_weights`` and ``parse_custom_objects``.
TensorFlow and Keras are imported inside functions only, through ``envprint._tf`` (ruff TID253):
importing this module costs nothing. Everything it returns is plain Python and NumPy.

Every failure to load or run a model leaves here as a one-line ``ModelError`` (what, which
file, the fix) with TensorFlow's exception kept as ``__cause__``; no raw traceback escapes.

Elsewhere: the checks of a Keras file before it loads, and the wording of Keras's load errors,
are in ``keras_checks`` (imported here); which model a ``LoadedModel`` is (``model_identity``,
the weights digest, ``integer_input_ranges``) is in ``identity``, which imports this module:
this module must not import ``identity``. The format names and ``_one_line`` are in ``common``.
What is left (~580 lines, over the house's ~400) is one ``LoadedModel`` contract and its three
implementations, which share its helpers; the next seam, if it grows, is one module per format.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint._tf import import_keras, import_tensorflow
from envprint._tf.common import _LABEL, FORMATS, Format, _one_line
from envprint._tf.keras_checks import _keras_load_error, _precheck_h5, _precheck_keras_archive
from envprint.errors import EnvprintError, ModelError
from envprint.record.probes import STRING_DTYPE, TensorSpecInfo, numpy_dtype

ACCEPTED = "a .keras file, an .h5/.hdf5 file, a .tflite file, or a SavedModel directory (with saved_model.pb)"


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
    hashing a 1 GB model reads its weights in place.
    """
    try:
        return np.asarray(tf.convert_to_tensor(value))
    except (TypeError, ValueError):  # not convertible: a plain array, or a foreign backend's variable
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


# ---------------------------------------------------------------------------------- formats


def detect_format(path: str | Path) -> Format:
    """The model format, read from the path: suffix for files, ``saved_model.pb`` for directories."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file or directory; pass the path of {ACCEPTED}")
    if p.is_dir():
        if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise ModelError(
            f"{p}: a directory without saved_model.pb, so not a SavedModel; pass {ACCEPTED}, or --format to override"
        )
    suffix = p.suffix.lower()
    fmt = {".keras": "keras", ".h5": "h5", ".hdf5": "h5", ".tflite": "tflite"}.get(suffix)
    if fmt is None:
        raise ModelError(
            f"{p}: unknown model format (suffix {suffix or 'none'!r}); expected {ACCEPTED}; "
            f"pass --format {'|'.join(FORMATS)} to override"
        )
    return fmt  # type: ignore[return-value]


def parse_custom_objects(specs: Iterable[str]) -> dict[str, Any]:
    """``["package.module:NAME", ...]`` -> ``{"NAME": object}``, importing each module."""
    out: dict[str, Any] = {}
    for spec in specs:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise ModelError(f"--custom-objects {spec!r}: expected package.module:NAME, e.g. mypkg.layers:MyLayer")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as exc:  # an ImportError, or whatever the module raises while importing
            raise ModelError(
                f"--custom-objects {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {_one_line(exc)}); "
                "install it or add its directory to PYTHONPATH"
            ) from exc
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ModelError(
                    f"--custom-objects {spec!r}: {module_name!r} has no attribute {attr!r}; check the name"
                )
            obj = getattr(obj, part)
        out[attr.rsplit(".", 1)[-1]] = obj
    return out


# ---------------------------------------------------------------------------------- LoadedModel


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


# ---------------------------------------------------------------------------------- Keras


def _keras_struct(model: Any, attr_k3: str, attr_k2: str) -> Any:
    struct = getattr(model, attr_k3, None)
    if struct is None and getattr(model, "_functional", None) is not None:  # Keras 3 Sequential
        struct = getattr(model._functional, attr_k3, None)
    return struct if struct is not None else getattr(model, attr_k2, None)


def _history_name(tensor: Any) -> str | None:
    hist = getattr(tensor, "_keras_history", None)
    op = hist[0] if hist else None
    return getattr(op, "name", None)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
    return out


def _keras_side(model: Any, which: str) -> tuple[list[str], list[Any], str]:
    """(names, tensors, feed kind) of a Keras model's inputs or outputs, in the model's order."""
    k3, k2 = ("_inputs_struct", "_nested_inputs") if which == "input" else ("_outputs_struct", "_nested_outputs")
    struct = _keras_struct(model, k3, k2)
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


class _KerasModel(LoadedModel):
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
        if self._feed_kind == "dict":
            return {s.name: x[s.name] for s in self.inputs}
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


def keras_weights(model: Any) -> Iterator[tuple[str, np.ndarray]]:
    """(name, value) of each weight of a Keras model (any Keras, built in any way), read in place.

    The names are Keras 3 paths ('dense/kernel') or Keras 2 names without ':0'; only envprint
    0.1.0's ``named-v1`` digest uses them. Works for subclassed models too, which have no inputs.
    """
    tf = import_tensorflow()
    for w in model.weights:
        path = getattr(w, "path", None)  # Keras 3: 'dense/kernel'; its .name is only 'kernel'
        yield _strip_var_suffix(path if isinstance(path, str) else w.name), _read_numpy(w, tf)


def _load_keras(path: Path, fmt: Format, custom_objects: dict[str, Any] | None, safe_mode: bool) -> _KerasModel:
    keras = import_keras()
    saved = _precheck_keras_archive(path, keras) if fmt == "keras" else _precheck_h5(path, safe_mode, keras)
    objects = dict(custom_objects or {})
    registered_name = getattr(getattr(keras, "saving", None), "get_registered_name", None)
    for obj in list(objects.values()):
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
    return _KerasModel(path, fmt, model)


_KERAS_SUFFIXES = {"keras": (".keras",), "h5": (".h5", ".hdf5")}


@contextlib.contextmanager
def _named_for_keras(path: Path, fmt: Format) -> Iterator[str]:
    """``path`` under a name Keras accepts for ``fmt``.

    Keras 3's load_model picks the format from the file name alone and refuses a .keras archive
    called model.bin, so ``--format keras`` could not override the suffix: such a file is loaded
    through a symbolic link with the right suffix, in a temporary directory (the file is not copied).
    """
    suffixes = _KERAS_SUFFIXES[fmt]
    if path.name.lower().endswith(suffixes):
        yield str(path)
        return
    with tempfile.TemporaryDirectory(prefix="envprint-load-") as folder:
        alias = Path(folder) / f"model{suffixes[0]}"
        alias.symlink_to(path.resolve())
        yield str(alias)


# ---------------------------------------------------------------------------------- SavedModel


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


class _SavedModel(LoadedModel):
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


# ---------------------------------------------------------------------------------- TFLite


def _tflite_interpreter(path: Path) -> tuple[Any, str]:
    """TensorFlow's own interpreter when it still ships one (the runtime the fingerprint records), else LiteRT."""
    tf = import_tensorflow()
    cls = getattr(getattr(tf, "lite", None), "Interpreter", None)
    runtime = "tf.lite.Interpreter"
    if cls is None:
        try:
            from ai_edge_litert.interpreter import Interpreter as cls
        except ImportError:
            raise ModelError(
                f"{path}: this TensorFlow has no tf.lite.Interpreter; pip install ai-edge-litert"
            ) from None
        runtime = "ai_edge_litert"
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


def _clean_tensor_name(name: str) -> str:
    return _strip_var_suffix(name.removeprefix("serving_default_"))


class _TFLiteModel(LoadedModel):
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


# ---------------------------------------------------------------------------------- load


def load_model(
    path: str | Path,
    *,
    fmt: str | None = None,
    custom_objects: dict[str, Any] | None = None,
    safe_mode: bool = True,
    signature: str | None = None,
) -> LoadedModel:
    """Load ``path`` as ``fmt`` (detected from the path when None), ready to ``predict``.

    Keras formats load with ``compile=False`` (inference needs no optimizer) and ``safe_mode``
    on by default; SavedModels and TFLite models run their ``signature`` ("serving_default"
    when there is one, else the only one).
    """
    p = Path(path)
    detected = detect_format(p) if fmt is None else None
    if fmt is not None:
        if fmt not in FORMATS:
            raise ModelError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}; pick one")
        if not p.exists():
            raise ModelError(f"{p}: no such file or directory; pass the path of {ACCEPTED}")
    chosen: Format = fmt or detected  # type: ignore[assignment]
    if chosen in ("keras", "h5"):
        if signature is not None:
            raise ModelError(
                f"{p}: --signature applies to SavedModel and TFLite models, not a {_LABEL[chosen]}; drop it"
            )
        if p.is_dir():
            raise ModelError(f"{p}: a directory cannot be a {_LABEL[chosen]}; pass the file, or --format savedmodel")
        return _load_keras(p, chosen, custom_objects, safe_mode)
    if chosen == "savedmodel":
        if not p.is_dir():
            raise ModelError(f"{p}: a SavedModel is a directory with saved_model.pb; pass that directory")
        return _SavedModel(p, signature)
    return _TFLiteModel(p, signature)


def wrap_model(model: Any, fmt: str = "keras") -> LoadedModel:
    """A model the caller already loaded, seen as a LoadedModel (serving start-up verifies in place).

    Accepts a LoadedModel (returned as is) or a Keras model (Keras 3, tf_keras or Keras 2).
    ``fmt`` is the format it was loaded from, for the record; the weights digest of a Keras
    model is the same whichever of .keras, .h5 or SavedModel it came from.
    """
    if isinstance(model, LoadedModel):
        return model
    if callable(getattr(model, "predict", None)) and hasattr(model, "weights") and hasattr(model, "inputs"):
        return _KerasModel(
            Path(f"<in-memory {type(model).__name__}>"), fmt if fmt in ("keras", "h5") else "keras", model
        )
    raise ModelError(
        f"cannot verify an object of type {type(model).__name__}: pass a Keras model, or the model's path "
        "(SavedModel and TFLite models are verified from their path)"
    )
