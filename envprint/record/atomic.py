"""Filesystem primitives for changing a directory safely, knowing nothing of what a record holds.

Owns: a plain file's mode under the umask, staging directories, atomic writes of one file,
the publish lock that serializes publishers of one directory (flock, else a lock file), the
one-step swap of two directories (``exchange``), and finding or removing what killed saves left
(``interrupted_backups``, ``clean_leftovers``). ``sidecar`` builds a record's publish on them.
Must not import TensorFlow, nor any other ``envprint.record`` module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from envprint.errors import FingerprintError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file under this umask (mkstemp's 0600 is for secrets, not records)."""
    return 0o666 & ~_umask()


def make_staging_dir(target: Path) -> Path:
    """A temporary directory beside ``target`` with the permissions a plain mkdir would give."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; a serving user must be able to read the record
    return staging


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers see old or new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the record a plain file's permissions
            os.fchmod(fd, plain_file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def destination(path: Path) -> Path:
    """Where a write to ``path`` lands: a symbolic link's target (the link itself is kept)."""
    return Path(os.path.realpath(path))


def is_stream(path: Path) -> bool:
    """A character device or a FIFO (/dev/stdout, a collector's pipe): written into, never replaced by a file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_output(path: Path, text: str) -> None:
    """A document a user asked for at ``path``: into a device or a pipe as it is; through a symbolic
    link to its target, which stays a link; a new or regular file is published whole (atomically)."""
    real = destination(path)
    if is_stream(real):
        with open(real, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        atomic_write_text(real, text)


# A staging directory older than this was left by a save that was killed (a live one exists for
# seconds: the arrays and fingerprint are written, then it is published); the next save removes it.
STALE_AFTER_S = 15 * 60
LOCK_TIMEOUT_S = 120.0
# The lock is held for a rename and the removal of the old record: a lock file older than this
# belongs to a publisher that died.
LOCK_STALE_AFTER_S = 60.0


def _flock_directory(directory: Path, target: Path, timeout: float) -> int | None:
    """An fd of ``directory`` holding an exclusive flock, or None where flock is unavailable.

    Locking the directory, not a lock file beside the record, leaves nothing behind, and the
    kernel drops the lock when the holder dies (a killed save never blocks the next one).
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise FingerprintError(
                    f"{target}: another envprint save held the lock on {directory} for {timeout:g} s; "
                    "wait for it to finish, then rerun"
                ) from None
            time.sleep(0.01)
        except OSError:  # a file system without flock (some network mounts): use a lock file
            os.close(fd)
            return None


@contextlib.contextmanager
def _lock_file(target: Path, timeout: float) -> Iterator[None]:
    """Fallback where flock is unavailable (Windows): an O_EXCL lock file, broken when stale."""
    lock = target.with_name(f".{target.name}.lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > LOCK_STALE_AFTER_S:  # its save was killed
                    lock.unlink()
                    continue
            if time.monotonic() > deadline:
                raise FingerprintError(
                    f"{lock}: another envprint save is publishing a record here, or a killed one left this "
                    "lock file; wait and rerun, or delete the file if no save is running"
                ) from None
            time.sleep(0.05)
        except OSError as exc:
            raise FingerprintError(
                f"{target}: cannot write the fingerprint ({exc.strerror or exc}); check the directory"
            ) from None
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def publish_lock(target: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the lock that serializes every envprint save publishing into ``target``'s directory."""
    target = Path(target)
    fd = _flock_directory(target.parent, target, timeout)
    if fd is None:
        with _lock_file(target, timeout):
            yield
        return
    try:
        yield
    finally:
        os.close(fd)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not available.

    With it, replacing a record has no moment at which the target is absent, so a save killed at
    any instant leaves the old record or the new one in place.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, or a libc without it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):  # kernel or file system says no
        return False
    raise OSError(err, os.strerror(err), str(b))


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def backup_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old-{os.getpid()}")


def interrupted_backups(target: Path) -> list[Path]:
    """Old records a killed ``save --force`` moved aside and never removed (only where renameat2 is missing)."""
    target = Path(target)
    prefix = f".{target.name}.old-"
    try:
        return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir())
    except OSError:
        return []


def clean_leftovers(target: Path, *, now: float | None = None, stale_after: float = STALE_AFTER_S) -> list[Path]:
    """Remove what killed saves left beside ``target``; call with the publish lock held and ``target`` in place.

    Staging directories (``.NAME.*.tmp``) are removed once older than ``stale_after`` seconds (a
    younger one may belong to a save still writing); old records moved aside (``.NAME.old-PID``)
    at once, since the lock says no replace is under way and the target is complete.
    """
    target = Path(target)
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(f".{target.name}."):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            stale = name.endswith(".tmp") and now - entry.stat(follow_symlinks=False).st_mtime > stale_after
        except OSError:
            continue
        if stale or name.startswith(f".{target.name}.old-"):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
