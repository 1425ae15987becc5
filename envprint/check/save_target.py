"""Where save writes its record, checked and prepared before any work.

Owns: the refusals that need no model loaded (``refuse_before_work``: a record never goes where
the model is, nor replaces anything but an envprint record, nor an existing record without
``force``; at least one probe), the target's parent directories made and a staging directory
proven possible there (``prepare_parent``, so that an unwritable place fails in a second, not
after the model loaded), taking back the directories made when the save fails
(``remove_created``), and the error that says a record cannot be written (``cannot_write``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from envprint.errors import FingerprintError, UsageError
from envprint.record import sidecar


def cannot_write(target: Path, exc: OSError) -> FingerprintError:
    return FingerprintError(
        f"{target}: cannot write the fingerprint ({exc.strerror or exc}); check the directory, or pass --out DIR"
    )


def _refuse_model_as_target(model_path: Path, target: Path) -> None:
    """A record never goes where the model is: not the model itself, not a parent of it, not inside it.

    The one place inside a model is a SavedModel's own ``assets.extra/envprint`` (the default,
    excluded from the model's digest); anywhere else a --force would delete part of the model.
    """
    model, where = model_path.resolve(), target.resolve()
    if where == model:
        relation = "is the model itself"
    elif where in model.parents:
        relation = f"contains the model {model_path}"
    elif model in where.parents and not (model.is_dir() and where == model / sidecar.SAVEDMODEL_SIDECAR):
        relation = f"is inside the model {model_path}"
    else:
        return
    raise FingerprintError(
        f"--out {target}: {relation}; a record never replaces any part of its model: "
        "pass --out a path outside the model, or omit --out to write the record beside it"
    )


def prepare_parent(target: Path) -> list[Path]:
    """Create ``target``'s parent directories and prove a staging directory can be made there.

    Runs before any work, so an unwritable place (a read-only file system, a path under a
    file) fails in a second, not after the model was loaded. Returns the directories it
    created, deepest last, for ``remove_created`` to take back if the save fails.
    """
    created: list[Path] = []
    missing = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
    try:
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
        os.rmdir(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        remove_created(created)
        raise cannot_write(target, exc) from None
    return created


def remove_created(created: list[Path]) -> None:
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            break


def refuse_before_work(model_path: Path, target: Path, force: bool, num_probes: int) -> bool:
    """Every refusal that needs no model loaded; whether a record exists at ``target``."""
    _refuse_model_as_target(model_path, target)
    sidecar.refuse_non_record(target)
    existed = target.exists()
    if existed and not force:
        raise sidecar.already_exists(target)
    if num_probes < 1:
        raise UsageError(f"--num-probes must be at least 1, got {num_probes}")
    return existed
