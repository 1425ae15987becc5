"""A model named by an MLflow URI, resolved to local files for verify and preflight.

Owns: ``local_copy`` (``is_mlflow_uri``: record/mlflow_model.py): a ``runs:/<run_id>/<path>`` or
``models:/<name>/<version>`` (or ``models:/<name>@<alias>``) URI downloaded, with its run's
``envprint/`` record (for a model an MLflow flavour logged: the record beside its artifacts), to a
temporary directory that is removed afterwards; and the tracking store it is read from. A local store (sqlite, or a folder) that does not exist is refused before
MLflow opens it: opening one creates it, and MLflow's default is ``./mlflow.db`` in the working
directory, so a verify with no store set would leave an empty database behind and blame the run.

mlflow is an optional extra (``envprint[mlflow]``; mlflow-skinny is enough), imported only here,
inside these functions. Imports envprint's lower layers only (record, errors).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from envprint import formats
from envprint.errors import EnvprintError, FingerprintError, ModelError, one_line
from envprint.record.mlflow_model import RECORD_ARTIFACT_PATH, import_mlflow

TRACKING_ENV = "MLFLOW_TRACKING_URI"
_POINT_AT_STORE = (
    f"point {TRACKING_ENV} at the store that logged it (export {TRACKING_ENV}=http://HOST:5000, "
    "sqlite:////path/to/mlflow.db or file:///path/to/mlruns)"
)


def _why(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}", 300)


def _local_store_path(uri: str) -> Path | None:
    """The file or folder of a local tracking store (sqlite:///..., file:///... or a plain path); None for a server."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
        return Path("/" + path.lstrip("/")) if path.startswith("/") else (Path(path) if path else None)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):  # a bare path (C:\... on Windows)
        return Path(uri)
    return None


def tracking_store(mlflow: Any, uri: str) -> str:
    """The tracking store ``uri`` is read from; a ModelError, before MLflow creates it, when it is local and absent."""
    store = mlflow.get_tracking_uri()
    path = _local_store_path(store)
    if path is None or path.exists():
        return store
    if os.environ.get(TRACKING_ENV):
        where = f"{TRACKING_ENV} is {store}, which does not exist"
    else:
        where = (
            f"no MLflow tracking store is set ({TRACKING_ENV} is unset), and MLflow's default {store} does not exist"
        )
    raise ModelError(f"{uri}: {where}; {_POINT_AT_STORE}")


def _model_in(path: Path, uri: str) -> Path:
    """The model inside a downloaded artifact: the file itself, a SavedModel, or the one model file in a folder."""
    if path.is_file() or formats.of_directory(path) is not None:
        return path
    suffixes = formats.suffixes()
    found = sorted(p for p in path.iterdir() if p.suffix in suffixes or formats.of_directory(p) is not None)
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in sorted(path.iterdir())) or "nothing"
    raise ModelError(
        f"{uri}: holds {names}, not one model; point at the model inside it, e.g. {uri.rstrip('/')}/model.keras"
    )


def _run_id(uri: str, mlflow: Any, store: str) -> str:
    """The run that logged the model a URI names (whose envprint/ artifacts are its record)."""
    if uri.startswith("runs:/"):
        return uri[len("runs:/") :].split("/", 1)[0]
    name_version = uri[len("models:/") :].strip("/")
    client = mlflow.tracking.MlflowClient()
    try:
        if "@" in name_version:
            name, alias = name_version.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = name_version.rpartition("/")
            version = client.get_model_version(name, number)
    except mlflow.exceptions.MlflowException as exc:
        raise ModelError(f"{uri}: no such registered model version in {store} ({_why(exc)})") from None
    if not version.run_id:
        raise FingerprintError(f"{uri}: the model version was registered without a run, so it has no envprint record")
    return version.run_id


@dataclass(frozen=True)
class LocalCopy:
    """A model and its record downloaded from MLflow, and the URIs to name them by in a report."""

    model: Path
    fingerprint: Path | None
    uri: str
    record_uri: str | None

    def relabel(self, report: Any) -> Any:
        """``report`` naming the MLflow URIs, not the temporary files it was verified from."""
        update = {"model": self.uri}
        if self.record_uri:
            update["fingerprint"] = self.record_uri
        return report.model_copy(update=update)

    def relabel_error(self, exc: EnvprintError) -> EnvprintError:
        """``exc`` naming the URIs, not the temporary files (removed by the time anyone reads the message)."""
        message = str(exc)
        if self.record_uri and self.fingerprint is not None:
            message = message.replace(str(self.fingerprint), self.record_uri)
        message = message.replace(str(self.model), self.uri)
        if message == str(exc) or type(exc).__init__ is not EnvprintError.__init__:
            return exc
        relabelled = type(exc)(message)
        relabelled.__traceback__ = exc.__traceback__
        return relabelled


def _download_model(download: Any, uri: str, store: str, tmp: str) -> Path:
    try:
        return Path(download(artifact_uri=uri, dst_path=str(Path(tmp) / "model")))
    except Exception as exc:  # MlflowException, OSError: whatever the store raises
        raise ModelError(
            f"{uri}: cannot download the model from MLflow ({_why(exc)}); tracking store: {store}; "
            f"if the run was logged elsewhere, {_POINT_AT_STORE}"
        ) from None


def _download_record(download: Any, run_id: str, tmp: str) -> Path:
    record_uri = f"runs:/{run_id}/{RECORD_ARTIFACT_PATH}"
    try:
        return Path(download(run_id=run_id, artifact_path=RECORD_ARTIFACT_PATH, dst_path=str(Path(tmp) / "record")))
    except Exception as exc:
        raise FingerprintError(
            f"{record_uri}: no envprint record in the run ({_why(exc)}); log one with envprint.mlflow.log_record(MODEL)"
        ) from None


@contextlib.contextmanager
def local_copy(uri: str | Path, fingerprint: str | Path | None = None) -> Iterator[LocalCopy]:
    """Download the model ``uri`` names and its run's ``envprint/`` record; removed again on exit.

    A ``fingerprint`` given (a local path) is used instead of the run's record.
    """
    mlflow = import_mlflow()
    from mlflow.artifacts import download_artifacts

    from envprint.record.mlflow_model import flavour_model
    from envprint.record.sidecar import FINGERPRINT_FILE, SAVEDMODEL_SIDECAR, default_sidecar

    uri = str(uri)
    store = tracking_store(mlflow, uri)
    with tempfile.TemporaryDirectory(prefix="envprint-mlflow-") as tmp:
        downloaded = _download_model(download_artifacts, uri, store, tmp)
        flavoured = flavour_model(downloaded)
        model = flavoured or _model_in(downloaded, uri)
        record_uri = None
        inside = default_sidecar(model) / FINGERPRINT_FILE
        beside = downloaded / RECORD_ARTIFACT_PATH / FINGERPRINT_FILE
        if fingerprint is None and flavoured is not None and beside.is_file():
            # A model a flavour logged, its record logged beside the flavour's artifacts (log_record(MODEL_URI)).
            fingerprint = beside
            record_uri = f"{uri.rstrip('/')}/{RECORD_ARTIFACT_PATH}"
        elif fingerprint is None and model.is_dir() and inside.is_file():
            # A SavedModel carries its record inside (assets.extra/envprint/): verify against that copy,
            # whose files the digest of the model directory leaves out.
            fingerprint = inside
            record_uri = f"{uri.rstrip('/')}/{SAVEDMODEL_SIDECAR.as_posix()}"
        elif fingerprint is None:
            run_id = _run_id(uri, mlflow, store)
            record_uri = f"runs:/{run_id}/{RECORD_ARTIFACT_PATH}"
            fingerprint = _download_record(download_artifacts, run_id, tmp)
        yield LocalCopy(model=model, fingerprint=Path(fingerprint), uri=uri, record_uri=record_uri)
