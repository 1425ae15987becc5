"""Check a Keras file before Keras reads it, and say in one line why Keras could not read it.

Owns: the checks run before ``keras.models.load_model`` (``_precheck_keras_archive`` for
``.keras``, ``_precheck_h5`` for ``.h5``: not a zip or not HDF5, weights only, a Python Lambda
under safe mode, a file from a newer Keras major) and the mapping of a failed load to a
``ModelError`` (``_keras_load_error``: a custom object not passed, a Keras major this host cannot
read). The running Keras is passed in; this module never imports TensorFlow or Keras, and h5py
only inside functions. Must not import ``loading`` (which imports this module) or ``identity``:
what it shares with them comes from ``common``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envprint._tf.common import _LABEL, Format, _one_line
from envprint.errors import ModelError


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
            raise ModelError(
                f"{path}: its model_config is not valid JSON ({_one_line(exc)}); re-save it with model.save()"
            ) from exc
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


def _newer_keras_error(path: Path, exc: BaseException, text: str, saved: str | None, running: str) -> ModelError | None:
    """A file written by a newer Keras of the same major that this Keras failed to read: say so.

    Keras 3 adds config keys in minor releases (3.15's ``quantization_config``), which an older
    Keras 3 refuses with a TypeError about an unexpected keyword; the file itself is fine.
    """
    from envprint.host.compat import keras_can_load

    verdict, _ = keras_can_load("keras", saved, running)
    if verdict != "may_fail":
        return None
    return ModelError(
        f"{path}: saved by Keras {saved}, newer than this host's Keras {running}, which cannot read it "
        f"({type(exc).__name__}: {_one_line(text, 120)}); upgrade Keras here to at least {saved} "
        f"(pip install 'keras>={saved}'), or export a SavedModel on the training host (model.export(...))"
    )


def _keras_load_error(
    path: Path, fmt: Format, exc: BaseException, known: set[str], saved: str | None, running: str
) -> ModelError:
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
    newer = _newer_keras_error(path, exc, text, saved, running)
    if newer is not None:
        return newer
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
