"""Content digests of what is on disk: one model file, or every file of a SavedModel directory.

Owns: streaming SHA-256 of files and directory trees. Standard library only (no NumPy, no
TensorFlow): ``envprint diff`` and the fingerprint tests use it on hosts without TensorFlow.

A digest says "these bytes", not "these weights": a model saved twice holds the same weights in
different bytes (zip timestamps, HDF5 object addresses). ``envprint._tf.identity.model_identity``
owns the weights digest; this module owns the file digests.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from envprint.errors import EnvprintError, ModelError, one_line, open_user_file

CHUNK = 1 << 20

# Relative POSIX paths that are never part of a model's content: envprint's own sidecar inside
# a SavedModel (written after the model, so hashing it would make every digest stale).
DEFAULT_EXCLUDES: tuple[str, ...] = ("assets.extra/envprint",)


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK, *, error: type[EnvprintError] = ModelError) -> str:
    """SHA-256 hex digest of one file, read ``chunk`` bytes at a time (models can be gigabytes)."""
    p = Path(path)
    h = hashlib.sha256()
    fix, directory_fix = "check the path (a dangling symlink reads the same)", "pass the directory to tree_digests()"
    with open_user_file(p, error, fix, directory_fix=directory_fix) as f:
        try:
            while block := f.read(chunk):
                h.update(block)
        except OSError as exc:
            raise error(f"{p}: cannot be read ({one_line(exc.strerror or exc)}); check its permissions") from exc
    return h.hexdigest()


def tree_digests(
    path: str | os.PathLike[str],
    *,
    exclude: Iterable[str] = DEFAULT_EXCLUDES,
    error: type[EnvprintError] = ModelError,
) -> dict[str, str]:
    """Relative POSIX path -> SHA-256 of every regular file under ``path``, sorted by path.

    A single file maps "." to its digest (so a renamed copy of it still matches). In a directory, each ``exclude`` entry (a relative
    POSIX path) prunes that file or subtree. Symlinks to files are read through; symlinks to
    directories are not followed (a link cycle would never end), and they are listed as an error
    rather than skipped, so that a digest never silently covers less than the model.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise error(f"{root}: no such file or directory; check the path")
    if not root.is_dir():
        return {".": sha256_file(root, error=error)}

    excluded = {e.strip("/") for e in exclude}
    out: dict[str, str] = {}

    def walk_error(exc: OSError) -> None:
        raise error(f"{exc.filename}: cannot be listed ({exc.strerror or exc}); check its permissions") from exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        kept = []
        for d in dirnames:
            rel = (rel_dir / d).as_posix()
            if rel in excluded:
                continue
            if (Path(dirpath) / d).is_symlink():
                raise error(
                    f"{Path(dirpath) / d}: a symlink to a directory, which envprint does not follow; "
                    "replace it with a copy of the directory"
                )
            kept.append(d)
        dirnames[:] = sorted(kept)  # os.walk descends in this order
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if rel in excluded:
                continue
            full = Path(dirpath) / name
            if not full.is_file() and full.exists():
                raise error(
                    f"{full}: not a regular file (a socket, FIFO or device); remove it from the model directory"
                )
            out[rel] = sha256_file(full, error=error)
    return dict(sorted(out.items()))


def combine(digests: dict[str, str]) -> str:
    """One SHA-256 over a ``tree_digests`` result: the paths and digests, in sorted order."""
    h = hashlib.sha256(b"envprint-tree-v1\n")
    for rel, digest in sorted(digests.items()):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()
