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

A Keras backend that loads some formats without TensorFlow (JAX, OpenVINO) would join as a
second list beside this one: an entry naming the backend, the formats it loads, and its loader
modules; ``loader`` below is then the TensorFlow backend's module for that format.
"""

from __future__ import annotations

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
