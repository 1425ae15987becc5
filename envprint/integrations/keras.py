"""The Keras callback: save the trained model and its envprint record together, at the end of ``fit``.

Owns: ``FingerprintCallback``. At the end of training (or, with ``save_best_only``, at each epoch
where the monitored metric improves, as ``keras.callbacks.ModelCheckpoint`` does) it saves the
model to ``filepath`` and records it with ``envprint.save``: the same save the CLI runs, so the
record holds the reference predictions of the model *as loaded back from the file*, which is what
``envprint verify`` will load on the deployment host.

Both are written in a staging directory beside the target, then published:
- an ``export()`` target (a SavedModel directory, its record inside under assets.extra/envprint)
  is one directory, published in one step: the old model and record, or the new ones;
- a ``.keras`` / ``.h5`` file is renamed into place, then its ``.envprint/`` record is swapped in
  (``sidecar.publish_directory``). A crash between the two leaves the new model beside the old
  record, which verify reports as a mismatch ("this is not the model that was saved"), never as a
  pass.

Importing this module imports Keras: the callback subclasses the Callback class of the Keras that
``tf.keras`` is on this host (Keras 3, tf_keras under TF_USE_LEGACY_KERAS=1, or TensorFlow 2.15's
Keras 2), resolved once, here. ``import envprint`` never imports it.
"""

from __future__ import annotations

import math
import shutil
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envprint import formats
from envprint._tf import import_keras, import_tensorflow, keras_flavor
from envprint.errors import FingerprintError, UsageError
from envprint.integrations.probe_files import write_probes
from envprint.record.atomic import make_staging_dir
from envprint.record.sidecar import (
    default_sidecar,
    not_a_record,
    publish_directory,
    refuse_non_record,
)

keras = import_keras()
FLAVOR = keras_flavor(import_tensorflow())
KERAS_FILE_SUFFIXES = formats.suffixes(keras_file=True)


def _refuse_non_export(target: Path) -> None:
    """An export replaces only an earlier SavedModel at ``filepath``: never a file or a folder of the user's."""
    found = not_a_record(target)
    if found != "a SavedModel directory":
        raise FingerprintError(
            f"{target}: {found or 'an envprint record'}, not a SavedModel; FingerprintCallback replaces only "
            "a SavedModel it may have exported before: pass another filepath, or move this away yourself"
        )


class FingerprintCallback(keras.callbacks.Callback):  # type: ignore[name-defined]  # the Keras loaded at import time
    """Save the model to ``filepath`` and its envprint record beside it, when training ends or improves.

    ``filepath``: ``model.keras`` or ``model.h5`` (``model.save``), or any other path: a SavedModel
    directory written by ``model.export()`` (Keras 3, tf_keras and Keras 2.13+). It may hold
    ``{epoch}`` and log keys, as ModelCheckpoint's does (``"best-{epoch:02d}.keras"``).
    ``probes``: a path (.npy/.npz), arrays (one input) or a dict of arrays by input name; None
    generates them from the model's input signature (``num_probes``, ``probe_seed``).
    ``seed``: the seed your training used, recorded. ``save_best_only``, ``monitor``, ``mode``: as
    ModelCheckpoint's; without ``save_best_only`` the model is saved once, at the end of ``fit``.
    Other keyword arguments go to ``envprint.save`` (``tolerance=``, ``input_shapes=``, ...).
    ``mlflow``: also log the model and its record to the active MLflow run
    (``envprint.mlflow.log_record``); None (the default) does so when training runs inside
    ``mlflow.start_run()``, False never, True always (an error without a run).
    ``registered_model_name``: with MLflow, also register the logged model under that name.

    ``results`` lists each SaveResult (the record's directory and Fingerprint), last one last;
    ``logged`` each MLflow LoggedRecord.
    """

    def __init__(
        self,
        filepath: str | Path,
        *,
        probes: Any = None,
        seed: int | None = None,
        save_best_only: bool = False,
        monitor: str = "val_loss",
        mode: str = "auto",
        num_probes: int = 8,
        probe_seed: int = 0,
        mlflow: bool | None = None,
        registered_model_name: str | None = None,
        **save_options: Any,
    ) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise UsageError(f"FingerprintCallback: mode {mode!r} is not one of auto, min, max")
        if mode == "auto":
            mode = "max" if "acc" in monitor or monitor.startswith("fmeasure") else "min"
        self.filepath = str(filepath)
        self.probes = probes
        self.seed = seed
        self.save_best_only = save_best_only
        self.monitor = monitor
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.num_probes = num_probes
        self.probe_seed = probe_seed
        self.save_options = save_options
        self.results: list[Any] = []
        self.mlflow = mlflow
        self.registered_model_name = registered_model_name
        self.logged: list[Any] = []
        self._last: tuple[int, dict[str, Any]] = (0, {})  # the last epoch seen and its logs

    def _improved(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        self._last = (epoch, logs)
        if not self.save_best_only:
            return
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"FingerprintCallback: '{self.monitor}' is not in the logs ({', '.join(sorted(logs)) or 'none'}); "
                "nothing saved: pass monitor= one of them",
                stacklevel=2,
            )
            return
        value = float(value)
        if self._improved(value):
            self.best = value
            self.save(epoch, logs)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if not self.save_best_only:
            epoch, last_logs = self._last
            self.save(epoch, {**last_logs, **dict(logs or {})})

    def _target(self, epoch: int, logs: Mapping[str, Any]) -> Path:
        try:
            return Path(self.filepath.format(epoch=epoch + 1, **logs))
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"FingerprintCallback: filepath {self.filepath!r} names {exc}, which is not epoch nor in the logs"
            ) from None

    def _save_model(self, target: Path) -> None:
        if target.suffix.lower() in KERAS_FILE_SUFFIXES:
            self.model.save(target)
        elif FLAVOR == "keras3":
            self.model.export(str(target), verbose=False)
        else:  # Keras 2 and tf_keras: export() takes no verbose
            self.model.export(str(target))

    def save(self, epoch: int, logs: Mapping[str, Any] | None = None) -> Any:
        """Save the model and record it now (the callback's hooks call this); returns the SaveResult."""
        from envprint.check.saver import save as record

        target = self._target(epoch, logs or {})
        target.parent.mkdir(parents=True, exist_ok=True)
        exported = target.suffix.lower() not in KERAS_FILE_SUFFIXES
        if exported and (target.exists() or target.is_symlink()):
            _refuse_non_export(target)  # before the work; publish_directory checks again under its lock
        elif not exported:
            refuse_non_record(default_sidecar(target))
        staging = make_staging_dir(target)
        try:
            staged = staging / target.name
            self._save_model(staged)
            result = record(
                staged,
                probes=write_probes(staging, self.probes),
                num_probes=self.num_probes,
                probe_seed=self.probe_seed,
                seed=self.seed,
                **self.save_options,
            )
            if staged.is_dir():  # export(): the record is inside; one directory, one step
                publish_directory(staged, target, force=True, guard=_refuse_non_export)
            else:
                staged.replace(target)
                publish_directory(result.sidecar, default_sidecar(target), force=True)
            record_dir = default_sidecar(target)  # once published: inside an export directory, beside a file
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        result.sidecar = record_dir
        self.results.append(result)
        if self._log_to_mlflow():
            from envprint.integrations.mlflow import log_record

            self.logged.append(
                log_record(target, fingerprint=record_dir, registered_model_name=self.registered_model_name)
            )
        return result

    def _log_to_mlflow(self) -> bool:
        if self.mlflow is not None:
            return self.mlflow
        # Only a training script that uses MLflow has imported it; nothing imports it to find out.
        mlflow = sys.modules.get("mlflow")
        return mlflow is not None and mlflow.active_run() is not None
