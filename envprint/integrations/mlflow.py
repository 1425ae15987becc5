"""MLflow: log a saved model's envprint record to a run, and verify a model straight from MLflow.

Owns: ``log_record`` (the model and its record as run artifacts, the record's key facts as run
tags; or, for a model MLflow's keras/tensorflow flavour logged, the record beside the flavour's
artifacts in their ``envprint/``), ``log_model`` and ``autolog_callback`` (the keras flavour and
the record in one step, by hand or at the end of ``fit``), and ``local_copy`` / ``verify``: a ``runs:/<run_id>/<path>`` or ``models:/<name>/<version>``
(or ``models:/<name>@<alias>``) URI downloaded, with its record, to a temporary directory that is
removed afterwards. The public path is ``envprint.mlflow``.

mlflow is an optional extra (``envprint[mlflow]``; mlflow-skinny is enough), imported only inside
these functions. Imports envprint's lower layers only (store, models, errors), never the CLI.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envprint import formats
from envprint.errors import DependencyError, FingerprintError, ModelError, UsageError

SCHEMES = ("runs:/", "models:/")
RECORD_ARTIFACT_PATH = "envprint"
MODEL_ARTIFACT_PATH = "model"
_MODEL_SUFFIXES = formats.suffixes()


def _mlflow() -> Any:
    try:
        import mlflow
        from mlflow.artifacts import download_artifacts  # noqa: F401
        from mlflow.tracking import MlflowClient  # noqa: F401
    except ImportError:
        raise DependencyError(
            "MLflow support needs mlflow, which is not installed; install it: pip install 'envprint[mlflow]'"
        ) from None
    return mlflow


def is_mlflow_uri(model: Any) -> bool:
    """Whether ``model`` names a model in MLflow (``runs:/...`` or ``models:/...``) rather than a local path."""
    return isinstance(model, (str, Path)) and str(model).startswith(SCHEMES)


def _one_line(exc: BaseException) -> str:
    from envprint.errors import one_line

    return one_line(f"{type(exc).__name__}: {exc}", 300)


@dataclass(frozen=True)
class LoggedRecord:
    """What ``log_record`` logged: verify ``model_uri`` (or register it) to check the model elsewhere."""

    run_id: str
    model_uri: str | None
    record_uri: str
    tags: dict[str, str]
    model_version: str | None = None


def record_tags(fp: Any, signed: bool) -> dict[str, str]:
    """The record's key facts as MLflow run tags (``envprint.*``): facts of the saved host, no verdicts."""
    model, tf = fp.model, fp.tensorflow
    facts: dict[str, Any] = {
        "envprint_version": fp.envprint_version,
        "fingerprint_schema_version": fp.schema_version,
        "model_format": model.format if model else None,
        "model_name": model.name if model else None,
        "weights_digest": model.weights_digest if model else None,
        "weights_digest_scheme": model.weights_digest_scheme if model else None,
        "num_probes": fp.probes.num_probes if fp.probes else None,
        "deterministic": fp.self_check.deterministic if fp.self_check else None,
        "tensorflow_version": tf.version if tf else None,
        "tensorflow_distribution": fp.packages.tensorflow_distribution,
        "keras_version": tf.keras_version if tf else None,
        "keras_flavor": tf.keras_flavor if tf else None,
        "onednn_enabled": tf.onednn.enabled if tf else None,
        "python_version": fp.python.version,
        "platform": f"{fp.platform.system} {fp.platform.machine}",
        "cpu_model": fp.cpu.model,
        "signed": signed,
    }
    return {
        f"envprint.{k}": (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in facts.items() if v is not None
    }


# --------------------------------------------------------------------------- models MLflow's flavours logged

MLMODEL_FILE = "MLmodel"


def flavour_model(directory: Path) -> Path | None:
    """The model file (or SavedModel) inside a model that an MLflow flavour saved, read from its MLmodel.

    keras, and tensorflow of a Keras model: ``data/model.keras`` (``.h5``, or the ``data/model``
    export); tensorflow of a ``tf.Module``: its ``saved_model_dir`` (``tf2model``). None when
    ``directory`` holds no MLmodel.
    """
    mlmodel = directory / MLMODEL_FILE
    if not mlmodel.is_file():
        return None
    import yaml  # type: ignore[import-untyped]  # a dependency of mlflow-skinny; no stubs installed

    flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors") or {}
    conf = flavors.get("keras") or flavors.get("tensorflow")
    if conf is not None and "saved_model_dir" in conf:  # tensorflow flavour of a tf.Module: a SavedModel
        candidates = [directory / conf["saved_model_dir"]]
    elif conf is not None:  # a Keras model, by either flavour: data/model.keras (.h5, or an export directory)
        data = directory / conf.get("data", "data") / "model"
        candidates = [data.with_suffix(".keras"), data.with_suffix(".h5"), data]
    else:
        raise ModelError(
            f"{directory}: an MLflow model of the flavour(s) {', '.join(sorted(flavors)) or 'none'}; "
            "envprint reads the keras and tensorflow flavours"
        )
    for path in candidates:
        if path.is_file() or (path / "saved_model.pb").is_file():
            return path
    raise ModelError(
        f"{directory}: its MLmodel names a model at {candidates[0].relative_to(directory)}, which is missing"
    )


def _record_flavour_model(
    mlflow: Any, model_uri: str, save_options: dict[str, Any], registered_model_name: str | None
) -> LoggedRecord:
    """Record a model a flavour logged (keras, tensorflow) and put the record beside its artifacts, in envprint/."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    import envprint
    from envprint.record.signing import SIGNATURE_FILE

    if registered_model_name:
        raise UsageError(
            "log_record: registered_model_name is for a model log_record logs itself; register a flavour's model "
            "with mlflow.register_model(MODEL_URI, NAME): its versions carry the record"
        )
    with tempfile.TemporaryDirectory(prefix="envprint-mlflow-") as tmp:
        try:
            local = Path(download_artifacts(artifact_uri=model_uri, dst_path=str(Path(tmp) / "model")))
        except Exception as exc:  # MlflowException, OSError: whatever the store raises
            raise ModelError(f"{model_uri}: cannot download the model from MLflow ({_one_line(exc)})") from None
        model = flavour_model(local)
        if model is None:
            raise ModelError(
                f"{model_uri}: no MLmodel file, so not a model an MLflow flavour logged; for a model file of "
                "yours, pass its local path: log_record('model.keras')"
            )
        record = Path(tmp) / RECORD_ARTIFACT_PATH
        if "probes" in save_options:  # arrays, or a dict of them by input name, as the Keras callback takes
            from envprint.integrations.probe_files import write_probes

            save_options["probes"] = write_probes(Path(tmp), save_options["probes"])
        fp = envprint.save(model, out=record, **save_options).fingerprint
        tags = record_tags(fp, signed=(record / SIGNATURE_FILE).is_file())
        client = mlflow.tracking.MlflowClient()
        info = Model.load(str(local / MLMODEL_FILE))
        try:
            model_id = getattr(info, "model_id", None)
            if model_id:  # MLflow 3: the flavour's artifacts belong to a LoggedModel
                client.log_model_artifacts(model_id, str(record), RECORD_ARTIFACT_PATH)
                client.set_logged_model_tags(model_id, tags)
                target = f"models:/{model_id}"
            else:  # MLflow 2: the flavour's artifacts are a run's, under the model's artifact path
                client.log_artifacts(info.run_id, str(record), f"{info.artifact_path}/{RECORD_ARTIFACT_PATH}")
                target = f"runs:/{info.run_id}/{info.artifact_path}"
            if info.run_id:
                for key, value in tags.items():
                    client.set_tag(info.run_id, key, value)
        except mlflow.exceptions.MlflowException as exc:
            raise UsageError(f"{model_uri}: cannot log the record beside the model ({_one_line(exc)})") from None
    return LoggedRecord(
        run_id=info.run_id, model_uri=model_uri, record_uri=f"{target}/{RECORD_ARTIFACT_PATH}", tags=tags
    )


def log_model(
    model: Any,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    save_options: dict[str, Any] | None = None,
    **log_model_options: Any,
) -> LoggedRecord:
    """Log a Keras model in memory with MLflow's keras flavour, and its envprint record beside it.

    ``mlflow.keras.log_model(model, name=name, ...)`` (so ``mlflow.pyfunc.load_model`` and
    ``mlflow.keras.load_model`` load it, and ``registered_model_name`` registers it as MLflow does),
    then ``log_record`` of what it logged, ``save_options`` going to ``envprint.save``.
    ``envprint verify MODEL_URI`` (the returned ``model_uri``, or ``models:/NAME/VERSION``) checks it.
    """
    _mlflow()
    try:
        import mlflow.keras
    except ImportError as exc:
        raise DependencyError(
            f"MLflow's keras flavour is not importable ({_one_line(exc)}); mlflow-skinny leaves out what it needs: "
            "pip install pandas (or the full mlflow)"
        ) from None
    info = mlflow.keras.log_model(model, name=name, registered_model_name=registered_model_name, **log_model_options)
    return log_record(info, save_options=save_options)


def autolog_callback(name: str = "model", *, registered_model_name: str | None = None, **save_options: Any) -> Any:
    """A Keras callback that, at the end of ``fit``, logs the model with ``log_model`` (flavour and record).

    ``model.fit(x, y, callbacks=[envprint.mlflow.autolog_callback(probes=x[:16])])`` inside
    ``mlflow.start_run()``; ``save_options`` go to ``envprint.save``. What was logged is on the
    callback's ``logged`` attribute. Building it imports Keras.
    """
    from envprint._tf import import_keras

    keras = import_keras()

    class EnvprintMlflowCallback(keras.callbacks.Callback):  # type: ignore[name-defined]  # keras: the runtime module
        logged: LoggedRecord | None = None

        def on_train_end(self, logs: Any = None) -> None:
            self.logged = log_model(
                self.model, name, registered_model_name=registered_model_name, save_options=save_options
            )

    return EnvprintMlflowCallback()


def log_record(
    model_path: str | Path,
    *,
    fingerprint: str | Path | None = None,
    run_id: str | None = None,
    log_model: bool = True,
    registered_model_name: str | None = None,
    save_options: dict[str, Any] | None = None,
) -> LoggedRecord:
    """Log a saved model's envprint record to an MLflow run, and tag the run with its key facts.

    ``model_path`` may also be a model that MLflow's keras or tensorflow flavour logged (the
    ``model_uri`` of what ``mlflow.keras.log_model`` returned, ``models:/...`` or ``runs:/...``, or
    that ModelInfo itself): the model is recorded as that flavour stored it, with ``save_options``
    going to ``envprint.save`` (probes= a path, arrays or a dict of them, num_probes=, ...), and the record is logged beside the
    flavour's artifacts, in their ``envprint/``, where ``envprint verify MODEL_URI`` finds it; the
    flavour's MLmodel is left as it was, so ``mlflow.pyfunc.load_model`` and the flavour's own
    loader still load it. The record's facts tag the run (and, in MLflow 3, the logged model).

    ``model_path`` is a model that ``envprint.save`` (or ``envprint save``) recorded; ``fingerprint``
    its sidecar directory or fingerprint.json when not in the default place. The record's files go
    to the run's ``envprint/`` artifacts; with ``log_model`` the model goes to ``model/`` too, and
    ``envprint verify runs:/<run_id>/model`` (or the model registered from that URI) checks it on
    another host. The run is ``run_id``, else the active run (``with mlflow.start_run():``).
    ``registered_model_name`` also registers ``model/`` as a new version of that registered model,
    so that ``envprint verify models:/<name>/<version>`` finds the model and, through its run, the record.
    Raises FingerprintError when the model has no record, UsageError when there is no run.
    """
    mlflow = _mlflow()
    from envprint.record.sidecar import locate_fingerprint
    from envprint.record.signing import SIGNATURE_FILE
    from envprint.record.store import read_fingerprint

    if hasattr(model_path, "model_uri"):  # the ModelInfo a flavour's log_model returned
        model_path = model_path.model_uri
    if is_mlflow_uri(model_path):
        return _record_flavour_model(mlflow, str(model_path), dict(save_options or {}), registered_model_name)
    model_path = Path(model_path)
    fp_path = locate_fingerprint(model_path, fingerprint)
    fp = read_fingerprint(fp_path)
    if fp.model is None:
        raise FingerprintError(
            f"{fp_path}: a fingerprint of a host, not of a model; record the model first: envprint save {model_path}"
        )
    if registered_model_name and not log_model:
        raise UsageError("log_record: registered_model_name needs log_model=True (the registry points at the model)")
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise UsageError(
                "log_record: no active MLflow run; call it inside 'with mlflow.start_run():' or pass run_id"
            )
        run_id = active.info.run_id
    client = mlflow.tracking.MlflowClient()
    tags = record_tags(fp, signed=(fp_path.parent / SIGNATURE_FILE).is_file())
    try:
        model_uri = None
        if log_model:
            if model_path.is_dir():  # a SavedModel: its files are the artifact, its record inside it
                client.log_artifacts(run_id, str(model_path), MODEL_ARTIFACT_PATH)
            else:
                client.log_artifact(run_id, str(model_path), MODEL_ARTIFACT_PATH)
            model_uri = f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"
        client.log_artifacts(run_id, str(fp_path.parent), RECORD_ARTIFACT_PATH)
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        version = None
        if registered_model_name:
            version = _register(client, mlflow, registered_model_name, model_uri, run_id, tags)  # type: ignore[arg-type]  # set: registered_model_name needs log_model (refused above)
    except mlflow.exceptions.MlflowException as exc:
        raise UsageError(f"MLflow run {run_id}: cannot log the record ({_one_line(exc)})") from None
    return LoggedRecord(
        run_id=run_id,
        model_uri=model_uri,
        record_uri=f"runs:/{run_id}/{RECORD_ARTIFACT_PATH}",
        tags=tags,
        model_version=version,
    )


def _register(client: Any, mlflow: Any, name: str, source: str, run_id: str, tags: dict[str, str]) -> str:
    """A new version of registered model ``name`` (created if new) pointing at the run's model/ artifacts."""
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    try:
        client.create_registered_model(name)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    # Not mlflow.register_model: MLflow 3 registers only models logged by a flavor (a LoggedModel);
    # these are plain artifacts, which a model version may point at directly.
    return str(client.create_model_version(name, source=source, run_id=run_id, tags=tags).version)


def _model_in(path: Path, uri: str) -> Path:
    """The model inside a downloaded artifact: the file itself, a SavedModel, or the one model file in a folder."""
    if path.is_file() or formats.of_directory(path) is not None:
        return path
    found = sorted(p for p in path.iterdir() if p.suffix in _MODEL_SUFFIXES or formats.of_directory(p) is not None)
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in sorted(path.iterdir())) or "nothing"
    raise ModelError(
        f"{uri}: holds {names}, not one model; point at the model inside it, e.g. {uri.rstrip('/')}/model.keras"
    )


def _run_id(uri: str, mlflow: Any) -> str:
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
        raise ModelError(f"{uri}: no such registered model version ({_one_line(exc)})") from None
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


@contextlib.contextmanager
def local_copy(uri: str | Path, fingerprint: str | Path | None = None) -> Iterator[LocalCopy]:
    """Download the model ``uri`` names and its run's ``envprint/`` record; removed again on exit.

    A ``fingerprint`` given (a local path) is used instead of the run's record.
    """
    mlflow = _mlflow()
    from mlflow.artifacts import download_artifacts

    from envprint.record.sidecar import FINGERPRINT_FILE, SAVEDMODEL_SIDECAR, default_sidecar

    uri = str(uri)
    with tempfile.TemporaryDirectory(prefix="envprint-mlflow-") as tmp:
        try:
            downloaded = Path(download_artifacts(artifact_uri=uri, dst_path=str(Path(tmp) / "model")))
        except Exception as exc:  # MlflowException, OSError: whatever the store raises
            raise ModelError(f"{uri}: cannot download the model from MLflow ({_one_line(exc)})") from None
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
            run_id = _run_id(uri, mlflow)
            record_uri = f"runs:/{run_id}/{RECORD_ARTIFACT_PATH}"
            try:
                fingerprint = Path(
                    download_artifacts(
                        run_id=run_id, artifact_path=RECORD_ARTIFACT_PATH, dst_path=str(Path(tmp) / "record")
                    )
                )
            except Exception as exc:
                raise FingerprintError(
                    f"{record_uri}: no envprint record in the run ({_one_line(exc)}); "
                    "log one with envprint.mlflow.log_record(MODEL)"
                ) from None
        yield LocalCopy(model=model, fingerprint=Path(fingerprint), uri=uri, record_uri=record_uri)


def verify(uri: str, *, fingerprint: str | Path | None = None, **options: Any) -> Any:
    """``envprint.verify`` for a model in MLflow: a ``runs:/`` or ``models:/`` URI. Returns the Report.

    ``options`` are ``envprint.verify``'s (tolerance, safe_mode, signing_key, ...).
    """
    import envprint

    with local_copy(uri, fingerprint) as copy:
        return copy.relabel(envprint.verify(copy.model, fingerprint=copy.fingerprint, **options))
