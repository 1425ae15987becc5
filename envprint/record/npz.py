"""The .npy and .npz files envprint reads and writes, never unpickling.

Owns: opening a user's or a record's ``.npy``/``.npz`` with ``allow_pickle=False`` (``open_arrays``,
``read_array``), what corrupt bytes raise (``CORRUPT``: every one ends as a FingerprintError of one
line), and the record's ``.npz`` (``save_arrays``: atomic and byte-for-byte reproducible;
``load_arrays``). What a probe array must be for a model is ``probes``'s job.
NumPy only: no TensorFlow or Keras.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envprint.errors import FingerprintError, one_line, open_user_file
from envprint.record.atomic import plain_file_mode

# What NumPy and zipfile raise on bytes that are not a valid .npy/.npz: a bad zip directory or
# CRC, a compression method zipfile lacks (NotImplementedError), an encrypted member
# (RuntimeError), a corrupt deflate stream (zlib.error), a header naming a shape too large to
# allocate (MemoryError, OverflowError), a garbled header (ValueError, SyntaxError from
# literal_eval, tokenize.TokenError from NumPy's header filter, struct.error). Found by
# scripts/fuzz.py; every one ends as a FingerprintError.
CORRUPT = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
    RuntimeError,
    MemoryError,
    OverflowError,
    SyntaxError,
    tokenize.TokenError,
    KeyError,
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def _refused_pickle(exc: ValueError) -> bool:
    """np.load said no because unpickling would be needed (allow_pickle=False did its job)."""
    return "allow_pickle" in str(exc) or "Object arrays" in str(exc)


def _objects_refused(where: object, what: str) -> FingerprintError:
    return FingerprintError(
        f"{where}: holds Python objects ({what}), which envprint never unpickles; "
        "save numeric arrays with np.save/np.savez"
    )


def read_array(loaded: Any, key: str, where: str, path: Path, fix: str | None = None) -> np.ndarray:
    fix = fix or f"re-create {path.name} with np.save/np.savez"
    try:
        arr = loaded[key] if key else loaded
        arr = np.asarray(arr)
    except ValueError as exc:
        if _refused_pickle(exc):
            raise _objects_refused(where, "an object array") from None
        raise FingerprintError(f"{where}: cannot be read ({short(exc)}); {fix}") from None
    except CORRUPT as exc:
        raise FingerprintError(f"{where}: truncated or corrupt ({short(exc)}); {fix}") from None
    if arr.dtype.kind == "O":
        raise _objects_refused(where, "an object array")
    return arr


def short(exc: BaseException | str) -> str:
    """An exception as one short line: a hostile file must not put line breaks into a message."""
    return one_line(exc, 160)


def open_arrays(path: Path, data: bytes | None = None, fix: str | None = None) -> Any:
    """``np.load`` of ``path`` (or of ``data``, the bytes read from it), never unpickling."""
    fix = fix or "re-create it with np.save/np.savez"
    if data is None:
        fix_path = "check the path passed to --probes"
        with open_user_file(path, FingerprintError, fix_path, directory_fix="pass a .npy or .npz file") as fh:
            try:
                head = fh.read(len(_NPY_MAGIC))
            except OSError as exc:
                raise FingerprintError(f"{path}: cannot be read ({short(exc)}); check its permissions") from None
        source: Any = path
    else:
        head, source = data[: len(_NPY_MAGIC)], io.BytesIO(data)
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(_NPY_MAGIC):
        if head.startswith(b"\x80"):  # pickle protocol 2 and later
            raise _objects_refused(path, "an object array or a pickle")
        what = "empty" if not head else "neither the .npy nor the .npz (zip) format"
        raise FingerprintError(f"{path}: not a .npy/.npz file ({what}); {fix}")
    try:
        return np.load(source, allow_pickle=False)
    except ValueError as exc:
        if _refused_pickle(exc):
            raise _objects_refused(path, "an object array or a pickle") from None
        raise FingerprintError(f"{path}: not a readable .npy/.npz ({short(exc)}); {fix}") from None
    except CORRUPT as exc:
        raise FingerprintError(f"{path}: truncated or corrupt ({short(exc)}); {fix}") from None


# Fixed zip member time: np.savez stamps members with the current time, so the same arrays
# would give different bytes (and digests) on every save.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to an ``.npz`` that ``np.load`` reads, atomically and byte-for-byte reproducibly.

    Members are ``NAME.npy`` in sorted name order, stored uncompressed with a fixed timestamp;
    object arrays are refused (they would need pickle to read back).
    """
    p = Path(path)
    for name, arr in arrays.items():
        if not isinstance(name, str) or not name or name.endswith(".npy"):
            raise FingerprintError(f"{p}: array name {name!r} cannot be stored; use a non-empty name without '.npy'")
        if np.asarray(arr).dtype.kind == "O":
            raise FingerprintError(f"{p}: array {name!r} holds Python objects; envprint stores numeric arrays only")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        if hasattr(os, "fchmod"):  # a server running as another user must read the record
            os.fchmod(fd, plain_file_mode())
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_arrays(path: str | os.PathLike[str], data: bytes | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` envprint saved (``path``, or ``data`` read from it), never unpickling.

    Whatever the bytes, the result is the arrays or a FingerprintError of one line.
    """
    p = Path(path)
    fix = f"copy the whole {p.parent.name}/ directory again, or re-run envprint save"
    loaded = open_arrays(p, data, fix)
    if isinstance(loaded, np.ndarray):
        raise FingerprintError(f"{p}: a single .npy array, not an .npz archive; {fix}")
    with loaded:
        try:
            keys = list(loaded.files)
        except CORRUPT as exc:
            raise FingerprintError(f"{p}: truncated or corrupt ({short(exc)}); {fix}") from None
        if len(set(keys)) != len(keys):
            raise FingerprintError(f"{p}: names an array twice; {fix}")
        return {k: read_array(loaded, k, f"{p}[{short(repr(k))}]", p, fix) for k in keys}
