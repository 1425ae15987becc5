"""The model formats envprint knows: one entry each, and everything else derived from the list.

Owns: ``Format`` (one format's facts: its id, its words in messages, how it is recognised by
name and by its first bytes, where its record lives, which module loads it, whether Keras
version rules apply to it, how its weights are digested) and ``FORMATS``, the one list. The
CLI's ``--format`` choices, ``models.ModelFormat``, the labels in messages and reports, the
sidecar rule, the digest scheme and the integrations' suffixes all read it, so a new format is
one entry here plus one loader module under ``envprint._tf.loaders`` (threadpoolctl's
``_ALL_CONTROLLERS`` shape).

Standard library only: must not import TensorFlow, NumPy, pydantic or any other envprint module,
so that the CLI, ``render``, ``record`` and the data model may all read it for free.

The Keras backends are a second list beside it (``Backend``, ``BACKENDS``): each names the
formats its Keras loads without TensorFlow and the loader module that does it (``envprint._keras``);
``Format.loader`` is the TensorFlow backend's module for that format, and every format a backend
does not load itself still needs TensorFlow. ``selected_backend`` says which backend Keras will
run, as Keras decides it, without importing Keras.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Digest schemes (computed in envprint._tf.identity): weights of the same model hash equal across
# the formats that share a scheme, and never across schemes.
TENSORS = "tensors-v2"
TFLITE_CONSTANTS = "tflite-constants-v1"


@dataclass(frozen=True)
class Format:
    id: str
    label: str  # after "a"/"as a" in messages: "cannot be loaded as a .keras model"
    described: str  # on its own, with its article: "saved ...: a Keras (.keras) model"
    accepted: str  # how help and errors name what to pass: "a .keras file"
    loader: str  # the module under envprint._tf that loads it; it has load(path, fmt, *, custom_objects, ...)
    digest_scheme: str  # how identity digests its weights (see TENSORS, TFLITE_CONSTANTS)
    suffixes: tuple[str, ...] = ()  # a file named so is this format
    markers: tuple[str, ...] = ()  # a directory holding one of these files is this format
    magic: tuple[int, bytes] | None = None  # (offset, bytes) a file of this format holds
    record_inside: str | None = None  # where its record lives inside it; None: beside it, as NAME.envprint/
    keras_file: bool = False  # Keras's own config, loaded by Keras: Keras version rules apply (host.compat)
    signatures: bool = False  # runs one of several signatures (--signature)
    counts_parameters: bool = True  # its weights count compares with another format's
    no_layers: str = ""  # why save --layers cannot trace it (a Keras format can): said by render.words

    @property
    def directory(self) -> bool:
        return bool(self.markers)


FORMATS: tuple[Format, ...] = (
    Format(
        "keras",
        ".keras model",
        "a Keras (.keras) model",
        "a .keras file",
        "envprint._tf.loaders.keras",
        TENSORS,
        suffixes=(".keras",),
        magic=(0, b"PK\x03\x04"),  # a zip archive
        keras_file=True,
    ),
    Format(
        "h5",
        "Keras HDF5 (.h5) model",
        "an HDF5 (.h5) model",
        "an .h5/.hdf5 file",
        "envprint._tf.loaders.keras",  # Keras loads both of its file formats through one load_model
        TENSORS,
        suffixes=(".h5", ".hdf5"),
        magic=(0, b"\x89HDF\r\n\x1a\n"),
        keras_file=True,
    ),
    Format(
        "savedmodel",
        "SavedModel",
        "a SavedModel",
        "a SavedModel directory (with saved_model.pb)",
        "envprint._tf.loaders.savedmodel",
        TENSORS,
        markers=("saved_model.pb", "saved_model.pbtxt"),
        # Where TF Serving keeps its warm-up data, so that copying the export carries the record.
        record_inside="assets.extra/envprint",
        signatures=True,
        no_layers="a SavedModel without Keras metadata is a graph of functions, not of layers",
    ),
    Format(
        "tflite",
        "TFLite model",
        "a TFLite model",
        "a .tflite file",
        "envprint._tf.loaders.tflite",
        TFLITE_CONSTANTS,
        suffixes=(".tflite",),
        magic=(4, b"TFL3"),  # the flatbuffer's file identifier
        signatures=True,
        counts_parameters=False,  # the converter folds and fuses constants
        no_layers="a TFLite interpreter names ops, not layers, and keeps intermediate tensors only when built with experimental_preserve_all_tensors=True",
    ),
)

IDS: tuple[str, ...] = tuple(f.id for f in FORMATS)
_BY_ID = {f.id: f for f in FORMATS}


def get(fmt: str) -> Format:
    """The entry for ``fmt``; KeyError (naming the known ids) for an id that is not one."""
    try:
        return _BY_ID[fmt]
    except KeyError:
        raise KeyError(f"{fmt!r} is not a model format envprint knows ({', '.join(IDS)})") from None


def choices() -> str:
    """The ids as a sentence: 'keras, h5, savedmodel or tflite'."""
    return f"{', '.join(IDS[:-1])} or {IDS[-1]}"


def accepted() -> str:
    """What a model path may be: 'a .keras file, an .h5/.hdf5 file, a .tflite file, or a SavedModel directory ...'."""
    files = [f.accepted for f in FORMATS if not f.directory]
    dirs = [f.accepted for f in FORMATS if f.directory]
    return ", ".join(files) + ", or " + " or ".join(dirs)


def suffixes(*, keras_file: bool | None = None) -> tuple[str, ...]:
    """Every file suffix that names a format (only the Keras files' with ``keras_file=True``)."""
    return tuple(s for f in FORMATS if keras_file is None or f.keras_file == keras_file for s in f.suffixes)


def in_listing(names: object) -> Format | None:
    """The directory format whose marker is among ``names`` (a directory's entries), or None."""
    return next((f for f in FORMATS if any(m in names for m in f.markers)), None)  # type: ignore[operator]


def of_directory(path: Path) -> Format | None:
    """The format of directory ``path`` (a SavedModel: it holds saved_model.pb), or None."""
    return next((f for f in FORMATS if any((Path(path) / m).is_file() for m in f.markers)), None)


def by_name(path: Path) -> Format | None:
    """The format ``path``'s name says: its suffix for a file, its marker file for a directory; None: no format."""
    path = Path(path)
    if path.is_dir():
        return of_directory(path)
    suffix = path.suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def sniff(head: bytes) -> Format | None:
    """The format a file's first bytes say (at least 8 of them), or None."""
    return next(
        (f for f in FORMATS if f.magic is not None and head[f.magic[0] : f.magic[0] + len(f.magic[1])] == f.magic[1]),
        None,
    )


def by_content(path: Path) -> Format | None:
    """The format ``path``'s first bytes say (a directory: its marker file), or None (unreadable or unknown)."""
    path = Path(path)
    if path.is_dir():
        return of_directory(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    return sniff(head)


# ---------------------------------------------------------------------------------- Keras backends


@dataclass(frozen=True)
class Backend:
    id: str  # KERAS_BACKEND's value, and keras.config.backend()'s
    label: str  # how messages name it: "JAX"
    loads: tuple[str, ...]  # the formats its Keras loads without TensorFlow (every one: TensorFlow itself)
    loader: str | None  # the module under envprint that loads them; None: each format's own loader
    distributions: tuple[str, ...] = ()  # the packages of its stack (recorded in the fingerprint's keras.*)


_KERAS_FILES = tuple(f.id for f in FORMATS if f.keras_file)
_BACKEND_LOADER = "envprint._keras.loader"

BACKENDS: tuple[Backend, ...] = (
    Backend("tensorflow", "TensorFlow", IDS, None),
    Backend("jax", "JAX", _KERAS_FILES, _BACKEND_LOADER, ("jax", "jaxlib")),
    Backend("openvino", "OpenVINO", _KERAS_FILES, _BACKEND_LOADER, ("openvino",)),
    Backend("torch", "PyTorch", _KERAS_FILES, _BACKEND_LOADER, ("torch",)),
    Backend("numpy", "NumPy", _KERAS_FILES, _BACKEND_LOADER),
)
BACKEND_IDS: tuple[str, ...] = tuple(b.id for b in BACKENDS)
DEFAULT_BACKEND = "tensorflow"
_BACKEND_BY_ID = {b.id: b for b in BACKENDS}


def backend(name: str) -> Backend:
    """The entry for backend ``name``; KeyError (naming the known ones) for a backend envprint does not know."""
    try:
        return _BACKEND_BY_ID[name]
    except KeyError:
        raise KeyError(f"Keras backend {name!r} is not one envprint knows ({', '.join(BACKEND_IDS)})") from None


def _keras_config_file(environ: Mapping[str, str]) -> Path:
    """Where Keras 3 reads keras.json: $KERAS_HOME, else ~/.keras, else /tmp/.keras (Keras's own rule)."""
    if environ.get("KERAS_HOME"):
        return Path(environ["KERAS_HOME"]) / "keras.json"
    home = os.path.expanduser("~")
    base = home if os.access(home, os.W_OK) else "/tmp"  # noqa: S108 - Keras's own fallback
    return Path(base) / ".keras" / "keras.json"


def selected_backend(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(backend id, where it came from) as Keras 3 decides it, without importing Keras.

    KERAS_BACKEND wins over keras.json's "backend", and TensorFlow is the default; an imported
    Keras 3 has the last word ('keras.config' where it runs another backend than they say, as
    after the variable changed in the process). The id may be one envprint does not know.
    """
    chosen, source = _configured_backend(environ)
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    if config is not None and callable(getattr(config, "backend", None)) and str(config.backend()) != chosen:
        return str(config.backend()), "keras.config"
    return chosen, source


def _configured_backend(environ: Mapping[str, str]) -> tuple[str, str]:
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"], "KERAS_BACKEND"
    try:
        saved = json.loads(_keras_config_file(environ).read_text(encoding="utf-8")).get("backend")
    except (OSError, ValueError, AttributeError):
        saved = None
    if isinstance(saved, str) and saved:
        return saved, "keras.json"
    return DEFAULT_BACKEND, "default"


def loader_for(fmt: str, backend_id: str) -> str:
    """The module that loads ``fmt`` under Keras backend ``backend_id``: the backend's, or the format's own (TensorFlow)."""
    entry = _BACKEND_BY_ID.get(backend_id)
    if entry is not None and entry.loader is not None and fmt in entry.loads:
        return entry.loader
    return get(fmt).loader
