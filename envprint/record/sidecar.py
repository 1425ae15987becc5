"""The sidecar directory on disk: where a record lives, what may replace it, and reading it.

Owns: the record's file names and default place (beside a file model, inside a SavedModel),
what a save may replace (an envprint record only: ``not_a_record``), publishing a whole record
(``publish_directory``, on ``atomic``'s lock and swap) so that readers see the old record or the
new one, never a mixture, and reading it as one snapshot (``RecordReader``). The filesystem
primitives (atomic writes, staging, the lock, leftovers) are ``atomic``'s; what the bytes of
fingerprint.json mean is ``store``'s. Must not import TensorFlow, nor ``store``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from envprint import formats
from envprint.errors import FingerprintError, ModelError
from envprint.record import atomic
from envprint.record.signing import SIGNATURE_FILE

T = TypeVar("T")

# --------------------------------------------------------------------------- the sidecar

SIDECAR_SUFFIX = ".envprint"
# Where a directory model keeps its record (a SavedModel's assets.extra/envprint/, by envprint.formats).
SAVEDMODEL_SIDECAR = Path(next(f.record_inside for f in formats.FORMATS if f.record_inside))
FINGERPRINT_FILE = "fingerprint.json"
PROBES_FILE, REFERENCE_FILE = "probes.npz", "reference.npz"  # the arrays
VARIANTS_FILE, LAYERS_FILE = "variants.npz", "layers.npz"  # save --keep-variant-outputs, save --layers


def default_sidecar(model_path: Path) -> Path:
    """Where the record lives: beside a file model, inside a SavedModel directory.

    ``model.keras`` -> ``model.keras.envprint/``; ``export/`` -> ``export/assets.extra/envprint/``,
    where TF Serving keeps its warm-up data, so that copying the export carries the record.
    """
    model_path = Path(model_path)
    if model_path.is_dir():
        return model_path / SAVEDMODEL_SIDECAR
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


def sidecar_exclusions(model_path: Path, sidecar: Path) -> list[str]:
    """Paths inside the model directory that are a record, not the model (not digested): the one in
    use, and a SavedModel's embedded record even when another one (--fingerprint) is in use."""
    embedded = [SAVEDMODEL_SIDECAR.as_posix()]
    try:
        rel = Path(sidecar).resolve().relative_to(Path(model_path).resolve()).as_posix()
    except ValueError:
        return embedded
    return embedded if rel == embedded[0] else [*embedded, rel]


# What a record directory holds: fingerprint.json, the arrays (variants.npz, layers.npz where asked), signature.json.
RECORD_FILES = frozenset({FINGERPRINT_FILE, PROBES_FILE, REFERENCE_FILE, VARIANTS_FILE, LAYERS_FILE, SIGNATURE_FILE})


def _listing(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def not_a_record(path: Path) -> str | None:
    """What is at ``path`` when it is something a save must not replace; None for an envprint record.

    A record is a directory holding fingerprint.json and nothing but the files a record holds
    (``RECORD_FILES``). Anything else there is the user's: a model file, a SavedModel, a folder
    of their own, even an empty one; replacing it would delete it.
    """
    path = Path(path)
    if not path.is_dir():
        if path.is_symlink() and not path.exists():
            return "a broken symbolic link"
        return "a file" if path.exists() else None
    try:
        names = [entry.name for entry in os.scandir(path)]
    except OSError as exc:
        return f"a directory that cannot be listed ({exc.strerror or exc})"
    if not names:
        return "an empty directory"
    fmt = formats.in_listing(names)
    if fmt is not None:
        return f"a {fmt.label} directory"
    if FINGERPRINT_FILE not in names:
        return f"a directory holding {_listing(names)}, with no {FINGERPRINT_FILE}"
    foreign = [n for n in names if n not in RECORD_FILES]
    if foreign:
        return f"a directory holding files a record does not: {_listing(foreign)}"
    return None


def refuse_non_record(target: Path) -> None:
    """Raise FingerprintError unless ``target`` is absent or an envprint record (``not_a_record``), whatever --force says."""
    found = not_a_record(target)
    if found is not None:
        raise FingerprintError(
            f"{target}: {found}, not an envprint record; a save replaces only a record, even with --force: "
            "pass --out a new path, or move this away yourself"
        )


def already_exists(target: Path) -> FingerprintError:
    return FingerprintError(f"{target}: an envprint record already exists; pass --force to replace it")


def publish_directory(
    staging: Path,
    target: Path,
    force: bool,
    *,
    existed: bool | None = None,
    guard: Callable[[Path], None] = refuse_non_record,
) -> None:
    """Move a complete staging directory into place; readers see the old record or the new, never a mix.

    Publishers of one directory take turns (``atomic.publish_lock``), so two saves at once end with one
    complete record. Without ``force`` an existing record is never replaced; ``existed=False``
    says the caller found no record when it started, so one now is another save's. With
    ``force`` the two directories are swapped in one step where the system can (Linux), else the
    old record is moved aside, the new one renamed in, and only then the old one removed.
    Only what ``guard`` lets pass (by default an envprint record: ``refuse_non_record``) is ever
    replaced, checked under the lock: ``guard`` raises for anything else, even with ``force``.
    """
    staging, target = Path(staging), Path(target)
    with atomic.publish_lock(target):
        present = target.exists() or target.is_symlink()
        if present:
            guard(target)
        if present and not force:
            if existed is False:
                raise FingerprintError(
                    f"{target}: another envprint save wrote this fingerprint at the same time; "
                    "rerun with --force to replace it"
                )
            raise already_exists(target)
        try:
            if not present:
                os.rename(staging, target)
            elif atomic.exchange(staging, target):
                atomic.remove_path(staging)  # it now holds the old record
            else:
                backup = atomic.backup_name(target)
                os.replace(target, backup)
                try:
                    os.rename(staging, target)
                except OSError:
                    os.replace(backup, target)
                    raise
                atomic.remove_path(backup)
        except OSError as exc:
            raise FingerprintError(
                f"{target}: cannot write the fingerprint ({exc.strerror or exc}); check the directory"
            ) from None
        atomic.clean_leftovers(target)


# --------------------------------------------------------------------------- reading a sidecar


def plain_file_name(name: str) -> bool:
    """True for a file name with no directory part: what a record may name inside its sidecar."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0:") and Path(name).name == name


class RecordReader:
    """The files of one sidecar directory, read as one snapshot.

    Where the system allows (POSIX), files are opened relative to a descriptor of the directory
    taken once: a ``save --force`` that swaps the directory meanwhile cannot make this reader see
    the old fingerprint.json with the new probes.npz. Only plain names are read (a record names
    its files; ``../../etc/passwd`` or an absolute path is refused), only regular files (a name
    linked to ``/dev/zero`` would never end), and a reader never writes.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None
        if os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY"):
            try:
                self._fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                self._fd = None  # reads below fall back to paths, and report what is wrong

    def __enter__(self) -> RecordReader:
        return self

    def replaced(self) -> bool:
        """True when the directory this reader holds is no longer the one at its path (a save swapped it)."""
        if self._fd is None:
            return False
        held = os.fstat(self._fd)
        try:
            now = os.stat(self.directory)
        except OSError:
            return True
        return (held.st_ino, held.st_dev) != (now.st_ino, now.st_dev)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def exists(self, name: str) -> bool:
        """Whether the directory holds an entry ``name`` (any kind; nothing is opened)."""
        if not plain_file_name(name):
            return False
        try:
            if self._fd is not None:
                os.stat(name, dir_fd=self._fd, follow_symlinks=False)
            else:
                (self.directory / name).lstat()
        except OSError:
            return False
        return True

    def read(self, name: str, *, limit: int | None = None) -> bytes | None:
        """The bytes of ``name`` in the directory; None when it does not exist."""
        path = self.directory / name
        if not plain_file_name(name):
            raise FingerprintError(f"{path}: {name!r} is not a file name inside the sidecar; re-save the record")
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it anyway.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(name, flags, dir_fd=self._fd) if self._fd is not None else os.open(path, flags)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise FingerprintError(f"{path}: is a directory, not a file; copy the record again") from None
        except OSError as exc:
            raise FingerprintError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise FingerprintError(f"{path}: is a directory, not a file; copy the record again")
            if not stat.S_ISREG(mode):
                raise FingerprintError(f"{path}: not a regular file (a device, FIFO or socket); copy the record again")
            try:
                data = fh.read() if limit is None else fh.read(limit + 1)
            except OSError as exc:
                raise FingerprintError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if limit is not None and len(data) > limit:
            raise FingerprintError(f"{path}: larger than {limit >> 20} MiB, not an envprint record")
        return data


def read_consistent(directory: str | os.PathLike[str], read: Callable[[RecordReader], T], attempts: int = 3) -> T:
    """``read(reader)`` over one snapshot of ``directory``, again on the new record if a save replaced it.

    A ``save --force`` that swaps the record in deletes the old one's files, possibly from under
    a reader that still holds the old directory: that reader then finds a file missing. When
    the directory was replaced meanwhile, the read starts over on the record now in place.
    """
    for attempt in range(attempts):
        with RecordReader(directory) as reader:
            try:
                return read(reader)
            except FingerprintError:
                if attempt + 1 < attempts and reader.replaced():
                    continue
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def require_model(model: str | Path) -> None:
    """ModelError unless ``model`` exists and can be read: a mistyped model path is not a reason to re-save
    (exit 4, not 3), and an unreadable one is a model problem, not a usage error."""
    if not (Path(model).exists() or Path(model).is_symlink()):
        raise ModelError(f"{model}: no such file or directory; check the path of the model")
    require_readable(model)


def require_readable(model: str | Path) -> None:
    """ModelError (one line) when this user cannot open ``model`` (a file) or list it (a directory).

    Tried, not predicted from the mode bits (os.access): ACLs, read-only mounts and root all
    decide for themselves. A FIFO or device is not opened, so that the check never blocks.
    """
    path = Path(model)
    try:
        if path.is_dir():
            with os.scandir(path):
                pass
        elif path.is_file():
            with path.open("rb"):
                pass
    except OSError as exc:
        raise ModelError(
            f"{model}: cannot be read ({exc.strerror or exc}); give the user running envprint read access "
            "to it (chmod a+r), or run as its owner"
        ) from None


def locate_fingerprint(model: str | Path | None, fingerprint: str | Path | None) -> Path:
    """The fingerprint.json to verify against: given (file or sidecar directory), else beside the model.

    A model that does not exist is a ModelError, before any record is looked for.
    """
    if fingerprint is not None:
        path = Path(fingerprint)
        return path / FINGERPRINT_FILE if path.is_dir() else path
    if model is None:
        raise FingerprintError(
            "no fingerprint given: pass fingerprint=PATH (the sidecar directory or its fingerprint.json)"
        )
    require_model(model)
    sidecar = default_sidecar(Path(model))
    path = sidecar / FINGERPRINT_FILE
    if not path.exists():
        backups = atomic.interrupted_backups(sidecar)
        if backups and not sidecar.exists():
            raise FingerprintError(
                f"{path}: missing; an interrupted 'envprint save --force' left the previous record in "
                f"{backups[-1]}: rename it to {sidecar.name}, or save again"
            )
        raise FingerprintError(
            f"{path}: no fingerprint beside the model; run 'envprint save {model}' on the training host, "
            "or pass --fingerprint PATH"
        )
    return path
