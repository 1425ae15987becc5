"""Load a saved model in any of its formats, run it on probes, and say which weights it holds.

Owns: ``detect_format``, ``load_model`` -> ``LoadedModel`` (``.keras``, ``.h5``, SavedModel,
``.tflite``), ``parse_custom_objects``, ``integer_input_ranges`` and ``model_identity``.
TensorFlow and Keras are imported inside functions only, through ``envprint._tf`` (ruff TID253):
importing this module costs nothing. Everything it returns is plain Python and NumPy.

Every failure to load or run a model leaves here as a one-line ``ModelError`` (what, which
file, the fix) with TensorFlow's exception kept as ``__cause__``; no raw traceback escapes.

Why one module of ~900 lines (over the house's ~400): the four formats share one
``LoadedModel`` contract and one error vocabulary. The seams for a split are marked by the
section rules: Keras file checks and error mapping, and identity, could each be a module.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import EnvprintError, ModelError
from ..probes import STRING_DTYPE, TensorSpecInfo, numpy_dtype
from . import import_keras, import_tensorflow, keras_flavor

Format = Literal["keras", "h5", "savedmodel", "tflite"]
FORMATS: tuple[str, ...] = ("keras", "h5", "savedmodel", "tflite")
ACCEPTED = "a .keras file, an .h5/.hdf5 file, a .tflite file, or a SavedModel directory (with saved_model.pb)"
_LABEL = {"keras": ".keras model", "h5": "Keras HDF5 (.h5) model", "savedmodel": "SavedModel", "tflite": "TFLite model"}

# Layers whose output is random in training mode (or always, when a custom call forces it).
STOCHASTIC_CLASSES = frozenset(
    {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
     "GaussianNoise", "GaussianDropout", "RandAugment", "AugMix", "MixUp", "CutMix"}
)

WEIGHTS_SCHEME_NAMED = "named-v1"  # keras, h5, savedmodel: name, dtype, shape, bytes, sorted by name
WEIGHTS_SCHEME_TFLITE = "tflite-constants-v1"  # dtype, shape, bytes of constant tensors, sorted by content


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        raise ModelError(f"{p}: a directory without saved_model.pb, so not a SavedModel; pass {ACCEPTED}, or --format to override")
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
                raise ModelError(f"--custom-objects {spec!r}: {module_name!r} has no attribute {attr!r}; check the name")
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

    def __init__(self, path: Path, inputs: list[TensorSpecInfo], outputs: list[TensorSpecInfo], *,
                 keras_model: Any = None, signature: str | None = None) -> None:
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
        return self._guard(lambda: self._predict(x, min(batch_size or n, n)))

    def call(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x, n = self._check_inputs(inputs)
        return self._guard(lambda: self._call(x, n))

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

    # -- shared
    def _guard(self, run: Any) -> dict[str, np.ndarray]:
        try:
            out = run()
        except EnvprintError:
            raise
        except Exception as exc:
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
                    "load probes with envprint.probes.load_probes, which casts them"
                )
            fits = arr.ndim == len(spec.shape) and all(d is None or d == a for d, a in zip(spec.shape[1:], arr.shape[1:], strict=True))
            if not fits:
                raise ModelError(
                    f"{self.path}: input {spec.name!r} has shape {arr.shape} but the model expects {spec.shape} "
                    "(dimension 0 is the batch); fix the probes' shape"
                )
            sizes.add(arr.shape[0] if arr.ndim else 1)
            x[spec.name] = arr
        if len(sizes) > 1:
            raise ModelError(f"{self.path}: probe inputs disagree on the batch size {sorted(sizes)}; give every input the same number")
        return x, sizes.pop() if sizes else 1


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
        super().__init__(path, [spec(n, t) for n, t in zip(in_names, self._input_tensors, strict=True)],
                         [spec(n, t) for n, t in zip(out_names, out_tensors, strict=True)], keras_model=model)

    def _feed(self, x: dict[str, np.ndarray]) -> Any:
        if self._feed_kind == "dict":
            return {s.name: x[s.name] for s in self.inputs}
        if self._feed_kind == "single":
            return x[self.inputs[0].name]
        return [x[s.name] for s in self.inputs]

    def _named(self, result: Any) -> dict[str, np.ndarray]:
        if isinstance(result, Mapping):
            return {str(k): _to_numpy(v) for k, v in result.items()}
        values = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(values) != len(self.outputs):
            raise ModelError(f"{self.path}: the model returned {len(values)} outputs but declares {len(self.outputs)}; re-save the model")
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
        tf = import_tensorflow()
        for w in self.keras_model.weights:
            path = getattr(w, "path", None)  # Keras 3: 'dense/kernel'; its .name is only 'kernel'
            yield _strip_var_suffix(path if isinstance(path, str) else w.name), _read_numpy(w, tf)


def _lambda_refused(path: Path) -> ModelError:
    return ModelError(
        f"{path}: contains a Lambda layer with Python code, which safe mode refuses to load "
        "(it could run arbitrary code); pass --unsafe if you trust this file"
    )


def _has_python_lambda(config: Any) -> bool:
    if isinstance(config, Mapping):
        if config.get("class_name") == "Lambda":
            inner = config.get("config") or {}
            if inner.get("function_type", "lambda") == "lambda" or isinstance(inner.get("function"), (list, dict)):
                return True
        return any(_has_python_lambda(v) for v in config.values())
    if isinstance(config, list):
        return any(_has_python_lambda(v) for v in config)
    return False


def _major(version: Any) -> int | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version.decode() if isinstance(version, bytes) else str(version)).major
    except (InvalidVersion, TypeError, UnicodeDecodeError):
        return None


def _refuse_newer_keras(path: Path, saved: str | None, keras: Any) -> None:
    """A file from a newer Keras major fails deep inside Keras with a message about InputLayer
    keyword arguments or unimportable modules; say what it is instead."""
    saved_major, running_major = _major(saved), _major(keras.__version__)
    if saved_major is not None and running_major is not None and saved_major > running_major:
        raise ModelError(
            f"{path}: saved by Keras {saved}, which this host's Keras {keras.__version__} cannot read; "
            f"load it where Keras {saved_major} is installed, or export a SavedModel with model.export()"
        )


def _precheck_keras_archive(path: Path, keras: Any) -> str | None:
    """Catch what Keras reports badly: not a zip, and a file from a newer Keras major.

    Returns the Keras version that saved the file, when it says."""
    resave = f"re-save it with model.save({path.name!r})"
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a .keras archive (not a zip file: truncated or corrupt?); {resave}")
    try:
        with zipfile.ZipFile(path) as zf:
            members = set(zf.namelist())
            meta = json.loads(zf.read("metadata.json")) if "metadata.json" in members else {}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: a damaged .keras archive ({_one_line(exc)}); {resave}") from exc
    if "config.json" not in members:
        raise ModelError(f"{path}: a zip without config.json, so not a .keras model; {resave}")
    saved = meta.get("keras_version") if isinstance(meta, dict) else None
    saved = str(saved) if saved is not None else None
    _refuse_newer_keras(path, saved, keras)
    return saved


def _precheck_h5(path: Path, safe_mode: bool, keras: Any) -> str | None:
    """HDF5 must hold a whole model from a Keras this host can read; under safe mode, no Python lambda.

    Keras 2 (TensorFlow <= 2.15, tf_keras) unmarshals a Lambda's bytecode from .h5 whatever
    safe_mode says; reading the config first makes safe mode mean the same on every Keras.
    Returns the Keras version that saved the file, when it says.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            saved = f.attrs.get("keras_version")
    except OSError as exc:
        raise ModelError(
            f"{path}: not a readable HDF5 file ({_one_line(exc)}); it is truncated or corrupt: re-save it with model.save()"
        ) from exc
    if raw is None:
        raise ModelError(
            f"{path}: holds weights only (no model_config; written by save_weights()); "
            "save the whole model with model.save(), or build the model in code and load the weights"
        )
    if safe_mode:
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError as exc:
            raise ModelError(f"{path}: its model_config is not valid JSON ({_one_line(exc)}); re-save it with model.save()") from exc
        if _has_python_lambda(config):
            raise _lambda_refused(path)
    saved = saved.decode() if isinstance(saved, bytes) else (str(saved) if saved is not None else None)
    _refuse_newer_keras(path, saved, keras)
    return saved


_CUSTOM_PATTERNS = (
    r"Could not locate (?:class|function) '([^']+)'",
    r"Cannot deserialize object of type `([^`]+)`",
    r"Unknown [a-z_ ]+: '([^']+)'",
)


def _read_keras_config(path: Path, fmt: Format) -> Any:
    if fmt == "keras":
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("config.json"))
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))


def _unresolved_class(config: Any, known: set[str]) -> str | None:
    """The first class in a Keras config that names a module outside Keras that cannot be imported.

    Keras 2.15 reports such a class in a functional .keras model as "'str' object is not
    callable"; reading the config names it.
    """
    if isinstance(config, list):
        return next((c for c in map(lambda v: _unresolved_class(v, known), config) if c), None)
    if not isinstance(config, Mapping):
        return None
    module, name = config.get("module"), config.get("class_name")
    if isinstance(module, str) and isinstance(name, str) and name not in known:
        if module.split(".")[0] not in ("keras", "tf_keras", "tensorflow", "builtins"):
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return name
    return next((c for c in map(lambda v: _unresolved_class(v, known), config.values()) if c), None)


def _custom_object_error(path: Path, name: str) -> ModelError:
    return ModelError(
        f"{path}: uses the custom object {name!r}, which is not known here; "
        f"pass --custom-objects package.module:{name} (the module that defines it)"
    )


def _keras_load_error(path: Path, fmt: Format, exc: BaseException, known: set[str], saved: str | None,
                      running: str) -> ModelError:
    text = _one_line(exc, limit=100_000)
    if "Lambda" in text and "safe_mode" in text:
        return _lambda_refused(path)
    for pattern in _CUSTOM_PATTERNS:
        m = re.search(pattern, text)
        if m:
            return _custom_object_error(path, m.group(1).split(">")[-1])
    try:
        missing = _unresolved_class(_read_keras_config(path, fmt), known)
    except Exception:  # a diagnosis only: the generic message below still applies
        missing = None
    if missing:
        return _custom_object_error(path, missing)
    if _major(saved) is not None and _major(saved) != _major(running):
        return ModelError(
            f"{path}: saved by Keras {saved}, which this host's Keras {running} cannot read "
            f"({type(exc).__name__}: {_one_line(text, 120)}); load it where Keras {_major(saved)} is installed, "
            "or export a SavedModel"
        )
    return ModelError(
        f"{path}: cannot be loaded as a {_LABEL[fmt]} ({type(exc).__name__}: {_one_line(text)}); "
        "check that the file is complete and was saved by Keras, or pass --format"
    )


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
        model = keras.models.load_model(str(path), custom_objects=objects or None, compile=False, safe_mode=safe_mode)
    except Exception as exc:
        raise _keras_load_error(path, fmt, exc, set(objects), saved, keras.__version__) from exc
    return _KerasModel(path, fmt, model)


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
        raise ModelError(f"{path}: has no signatures to run; export it with model.export() or tf.saved_model.save(..., signatures=...)")
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
        inputs = [TensorSpecInfo(k, _shape(s.shape, f"input {k!r}", path), _dtype_name(s.dtype))
                  for k, s in sorted(kwargs.items(), key=lambda kv: _natural_key(kv[0]))]
        outs = self._fn.structured_outputs
        if not isinstance(outs, Mapping):  # signatures return dicts; be lenient with odd exports
            outs = {f"output_{i}": s for i, s in enumerate(tf.nest.flatten(outs))}
        outputs = [TensorSpecInfo(k, _shape(s.shape, f"output {k!r}", path), _dtype_name(s.dtype))
                   for k, s in sorted(outs.items(), key=lambda kv: _natural_key(kv[0]))]
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
            raise ModelError(f"{path}: this TensorFlow has no tf.lite.Interpreter; pip install ai-edge-litert") from None
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
            in_details = dict(zip(_unique([_clean_tensor_name(d["name"]) for d in self._interp.get_input_details()]),
                                  self._interp.get_input_details(), strict=True))
            out_details = dict(zip(_unique([_clean_tensor_name(d["name"]) for d in self._interp.get_output_details()]),
                                   self._interp.get_output_details(), strict=True))
        self._in = dict(sorted(in_details.items(), key=lambda kv: _natural_key(kv[0])))
        self._out = dict(sorted(out_details.items(), key=lambda kv: _natural_key(kv[0])))
        spec = lambda n, d: TensorSpecInfo(n, _shape(d.get("shape_signature", d["shape"]), n, path), _dtype_name(d["dtype"]))  # noqa: E731
        super().__init__(path, [spec(n, d) for n, d in self._in.items()], [spec(n, d) for n, d in self._out.items()],
                         signature=name)

    def _fixed_batch(self) -> int | None:
        dims = {int(d.get("shape_signature", d["shape"])[0]) for d in self._in.values() if len(d["shape"])}
        return None if not dims or -1 in dims else min(dims)

    def _predict(self, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        n = next(iter(x.values())).shape[0]
        fixed = self._fixed_batch()
        if fixed is not None:
            if n % fixed:
                raise ModelError(f"{self.path}: the model takes batches of exactly {fixed}; give a multiple of {fixed} probes")
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
        conversion), so the digest ignores them: see ``_digest``.
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


def load_model(path: str | Path, *, fmt: str | None = None, custom_objects: dict[str, Any] | None = None,
               safe_mode: bool = True, signature: str | None = None) -> LoadedModel:
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
            raise ModelError(f"{p}: --signature applies to SavedModel and TFLite models, not a {_LABEL[chosen]}; drop it")
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
        return _KerasModel(Path(f"<in-memory {type(model).__name__}>"), fmt if fmt in ("keras", "h5") else "keras", model)
    raise ModelError(
        f"cannot verify an object of type {type(model).__name__}: pass a Keras model, or the model's path "
        "(SavedModel and TFLite models are verified from their path)"
    )


# ---------------------------------------------------------------------------------- identity


def _keras_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)  # recursive, sub-layers of custom layers too
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_keras_layers(layer))
    return out


def _class_names(obj: Any) -> list[str]:
    return [c.__name__ for c in type(obj).__mro__]


def _is_stochastic(layer: Any) -> bool:
    names = _class_names(layer)
    return any(n in STOCHASTIC_CLASSES or n.startswith("Random") for n in names[:-1])  # [:-1]: not 'object'


def _fed_by(layer: Any) -> list[Any]:
    """The Keras tensors that feed ``layer`` in any call of the graph."""
    fed = []
    for node in getattr(layer, "_inbound_nodes", []) or []:
        tensors = getattr(node, "input_tensors", None)
        if tensors is None:
            continue
        fed.extend(tensors if isinstance(tensors, (list, tuple)) else [tensors])
    return fed


def integer_input_ranges(loaded: LoadedModel) -> dict[str, tuple[int, int]]:
    """Input name -> ``(0, input_dim)`` for each input that an Embedding reads directly.

    Only Keras formats carry the layer graph; an input that reaches its Embedding through
    other layers (a Reshape, a Lambda, a nested model) is not found and needs ``--probes``.
    An input read by several Embeddings gets the smallest vocabulary.
    """
    model = loaded.keras_model
    if model is None or not isinstance(loaded, _KerasModel):
        return {}
    ranges: dict[str, tuple[int, int]] = {}
    embeddings = [layer for layer in _keras_layers(model) if "Embedding" in _class_names(layer)]
    for spec, tensor in zip(loaded.inputs, loaded._input_tensors, strict=True):
        dims = [int(e.input_dim) for e in embeddings if any(t is tensor for t in _fed_by(e))]
        if dims:
            ranges[spec.name] = (0, min(dims))
    return ranges


def _leaf_digest(name: str, arr: np.ndarray) -> str:
    """SHA-256 of one weight: name, dtype, shape, then its little-endian C-order bytes.

    The bytes are hashed in place, through a uint8 view, not copied out with ``tobytes()``:
    a 1 GB model would otherwise need a second gigabyte. The view works for every dtype a
    C-contiguous array can hold, bfloat16 and the other ml_dtypes included, whose buffer
    format ``memoryview`` refuses. The header is unchanged from the first release, quirks
    included (``ascontiguousarray`` gives a 0-d weight the shape ``1``): saved records carry
    these digests.
    """
    a = np.ascontiguousarray(arr)  # no copy when the weight is already C-ordered
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    leaf = hashlib.sha256(f"{name}\0{a.dtype.name}\0{','.join(map(str, a.shape))}\0".encode())
    # An object array holds pointers that no view may reinterpret; hash them as before.
    leaf.update(a.tobytes() if a.dtype.hasobject else a.reshape(-1).view(np.uint8))
    return leaf.hexdigest()


def _digest_leaves(leaves: Iterable[tuple[str, str]], scheme: str) -> str:
    """SHA-256 over (name, leaf digest) pairs: named weights in name order (a stable sort, so
    equal names keep the model's order); TFLite constants, which have no stable names, in order
    of their own digests."""
    ordered = sorted(leaves, key=(lambda nl: nl[1]) if scheme == WEIGHTS_SCHEME_TFLITE else (lambda nl: nl[0]))
    h = hashlib.sha256(f"envprint-weights-{scheme}\n".encode())
    for name, leaf in ordered:
        h.update(f"{name}\0{leaf}\n".encode())
    return h.hexdigest()


def _digest(weights: Iterable[tuple[str, np.ndarray]], scheme: str) -> tuple[str, int, int]:
    """(digest, weight count, parameter count), hashing each weight as it is read.

    Only the leaf digests are kept, so peak memory is one weight (zero for a CPU variable
    NumPy can view), not a copy of the whole model.
    """
    leaves = []
    count = 0
    for name, arr in weights:
        leaves.append((name, _leaf_digest(name, arr)))
        count += int(arr.size)
    return _digest_leaves(leaves, scheme), len(leaves), count


_FINGERPRINT_FIELDS = ("saved_model_checksum", "graph_def_program_hash", "signature_def_hash",
                       "saved_object_graph_hash", "checkpoint_hash")


def _saved_model_fingerprint(path: Path) -> tuple[dict[str, int] | None, str | None]:
    tf = import_tensorflow()
    read = getattr(getattr(tf.saved_model, "experimental", None), "read_fingerprint", None)
    if read is None:
        return None, f"tf.saved_model.experimental.read_fingerprint is not in TensorFlow {tf.__version__}"
    try:
        fp = read(str(path))
    except Exception as exc:  # fingerprint.pb is missing from SavedModels written before TF 2.12
        return None, f"{type(exc).__name__}: {_one_line(exc)}"
    out = {f: int(getattr(fp, f)) for f in _FINGERPRINT_FIELDS if getattr(fp, f, None) is not None}
    producer = getattr(getattr(fp, "version", None), "producer", None)
    if producer is not None:
        out["producer"] = int(producer)
    return out, None


def model_identity(loaded: LoadedModel) -> dict[str, Any]:
    """What the model is, independent of the file's bytes: weights digest, layers, signature.

    A field that cannot be read for this format is None, with the reason in ``unavailable``.
    ``weights_digest`` is equal across .keras, .h5 and SavedModel copies of the same weights
    (scheme ``named-v1``); TFLite constants are transposed and fused by the converter, so a
    .tflite digest (scheme ``tflite-constants-v1``) compares only with other .tflite files.
    """
    unavailable: dict[str, str] = {}
    scheme = WEIGHTS_SCHEME_TFLITE if loaded.format == "tflite" else WEIGHTS_SCHEME_NAMED
    digest: str | None = None
    weights_count: int | None = None
    parameter_count: int | None = None
    try:
        digest, weights_count, parameter_count = _digest(loaded._weights(), scheme)
    except Exception as exc:
        unavailable["weights_digest"] = f"{type(exc).__name__}: {_one_line(exc)}"
    ident: dict[str, Any] = {
        "format": loaded.format,
        "runtime": loaded.runtime,
        "signature": loaded.signature,
        "weights_digest": digest,
        "weights_digest_scheme": scheme,
        "weights_count": weights_count,
        "parameter_count": parameter_count,
        "layer_classes": None,
        "stochastic_layers": None,
        "dtype_policy": None,
        "saved_model_fingerprint": None,
        "inputs": [s.as_dict() for s in loaded.inputs],
        "outputs": [s.as_dict() for s in loaded.outputs],
        "unavailable": unavailable,
    }
    model = loaded.keras_model
    if model is not None:
        layers = _keras_layers(model)
        ident["layer_classes"] = sorted({type(layer).__name__ for layer in layers})
        ident["stochastic_layers"] = sorted(
            ({"name": layer.name, "class_name": type(layer).__name__} for layer in layers if _is_stochastic(layer)),
            key=lambda d: (d["name"], d["class_name"]),
        )
        policy = getattr(model, "dtype_policy", None)
        ident["dtype_policy"] = getattr(policy, "name", None) if policy is not None else None
        if ident["dtype_policy"] is None:
            unavailable["dtype_policy"] = "the model has no readable dtype_policy"
    else:
        why = f"a {_LABEL[loaded.format]} carries no Keras layer graph"
        unavailable.update(layer_classes=why, stochastic_layers=why, dtype_policy=why)
    if loaded.format == "savedmodel":
        ident["saved_model_fingerprint"], reason = _saved_model_fingerprint(loaded.path)
        if reason:
            unavailable["saved_model_fingerprint"] = reason
    else:
        unavailable["saved_model_fingerprint"] = "not a SavedModel"
    ident["keras_flavor"] = keras_flavor(import_tensorflow()) if model is not None else None
    return ident
