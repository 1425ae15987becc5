"""Load a saved model in any of its formats: find its format, pick its loader, wrap a live model.

Owns: ``detect_format``, ``load_model`` -> ``LoadedModel``, ``wrap_model`` and
``parse_custom_objects``. Each format's loader is a module under ``envprint._tf.loaders``
(``keras`` for .keras and .h5, ``savedmodel``, ``tflite``; ``base`` holds the ``LoadedModel``
contract they share). TensorFlow and Keras are imported inside functions only, through
``envprint._tf`` (ruff TID253): importing this module costs nothing.

Every failure to load or run a model leaves as a one-line ``ModelError`` (what, which file, the
fix) with TensorFlow's exception kept as ``__cause__``; no raw traceback escapes.

Elsewhere: which model a ``LoadedModel`` is (``model_identity``, the weights digest) is in
``identity``, which imports this module: this module must not import ``identity``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from envprint import formats
from envprint._tf import PIP_HINT, import_tensorflow
from envprint._tf.common import Format, _one_line
from envprint._tf.loaders.base import LoadedModel
from envprint._tf.loaders.keras import KerasModel, keras_weights
from envprint.errors import DependencyError, ModelError
from envprint.record import sidecar

__all__ = [
    "ACCEPTED",
    "LoadedModel",
    "detect_format",
    "keras_weights",
    "load_model",
    "parse_custom_objects",
    "wrap_model",
]

ACCEPTED = formats.accepted()


# ---------------------------------------------------------------------------------- formats


def detect_format(path: str | Path) -> Format:
    """The model format of ``path``: its suffix (a file) or its saved_model.pb (a directory).

    When a file's first bytes say another format than its suffix (an HDF5 file named
    model.keras), the bytes win: Keras would refuse the file under the name's format.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file or directory; pass the path of {ACCEPTED}")
    named = formats.by_name(p)
    if p.is_dir():
        if named is None:
            markers = [m for f in formats.FORMATS for m in f.markers]
            raise ModelError(
                f"{p}: a directory without {markers[0]}, so not a SavedModel; pass {ACCEPTED}, or --format to override"
            )
        return named.id  # type: ignore[return-value]
    if named is None:
        suffix = p.suffix.lower()
        raise ModelError(
            f"{p}: unknown model format (suffix {suffix or 'none'!r}); expected {ACCEPTED}; "
            f"pass --format {'|'.join(formats.IDS)} to override"
        )
    content = formats.by_content(p)
    return (content or named).id  # type: ignore[return-value]


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
    if fmt is None:
        fmt = detect_format(p)
    elif fmt not in formats.IDS:
        raise ModelError(f"--format {fmt!r} is not one of {', '.join(formats.IDS)}; pick one")
    elif not p.exists():
        raise ModelError(f"{p}: no such file or directory; pass the path of {ACCEPTED}")
    sidecar.require_readable(p)
    entry = formats.get(fmt)
    if entry.directory and not p.is_dir():
        raise ModelError(f"{p}: a {entry.label} is a directory with {entry.markers[0]}; pass that directory")
    if p.is_dir() and not entry.directory:
        folders = "|".join(f.id for f in formats.FORMATS if f.directory)
        raise ModelError(f"{p}: a directory cannot be a {entry.label}; pass the file, or --format {folders}")
    loader = importlib.import_module(_loader_module(p, fmt))
    return loader.load(p, fmt, custom_objects=custom_objects, safe_mode=safe_mode, signature=signature)


def _loader_module(path: Path, fmt: str) -> str:
    """The loader of ``fmt`` under the Keras backend this process runs (formats.loader_for).

    A format that backend cannot load itself (a SavedModel, a TFLite model) needs TensorFlow
    whatever KERAS_BACKEND says: where TensorFlow is missing, say that in one line.
    """
    backend_id, source = formats.selected_backend()
    module = formats.loader_for(fmt, backend_id)
    if backend_id != formats.DEFAULT_BACKEND and module == formats.get(fmt).loader:
        try:
            import_tensorflow()
        except DependencyError:
            known = backend_id in formats.BACKEND_IDS
            loads = " and ".join(formats.get(f).accepted for f in formats.backend(backend_id).loads) if known else ""
            raise DependencyError(
                f"{path}: a {formats.get(fmt).label} needs TensorFlow, which is not importable here "
                f"(the Keras backend {backend_id!r}, from {source}, loads "
                f"{loads or 'no model format envprint knows'}); install it: {PIP_HINT}"
            ) from None
    return module


def wrap_model(model: Any, fmt: str = "keras") -> LoadedModel:
    """A model the caller already loaded, seen as a LoadedModel (serving start-up verifies in place).

    Accepts a LoadedModel (returned as is) or a Keras model (Keras 3, tf_keras or Keras 2).
    ``fmt`` is the format it was loaded from, for the record; the weights digest of a Keras
    model is the same whichever of .keras, .h5 or SavedModel it came from.
    """
    if isinstance(model, LoadedModel):
        return model
    if callable(getattr(model, "predict", None)) and hasattr(model, "weights") and hasattr(model, "inputs"):
        # The record's format when it is a Keras file (the id checked against the registry), else .keras.
        recorded: Format = cast(Format, fmt) if fmt in formats.IDS and formats.get(fmt).keras_file else "keras"
        return KerasModel(Path(f"<in-memory {type(model).__name__}>"), recorded, model)
    raise ModelError(
        f"cannot verify an object of type {type(model).__name__}: pass a Keras model, or the model's path "
        "(SavedModel and TFLite models are verified from their path)"
    )
