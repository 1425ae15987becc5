"""MLflow: log a saved model's envprint record to a run, and verify a model straight from MLflow.

Owns: ``log_record`` (the model and its record as run artifacts, the record's key facts as run
tags; or, for a model MLflow's keras/tensorflow flavour logged, the record beside the flavour's
artifacts in their ``envprint/``), ``log_model`` and ``autolog_callback`` (the keras flavour and
the record in one step, by hand or at the end of ``fit``). ``verify`` of a ``runs:/<run_id>/<path>``
or ``models:/<name>/<version>`` URI is the library's (``envprint.verify`` takes the URI;
``check/mlflow_source.py`` downloads), called through ``envprint.verify``. The public path is
``envprint.mlflow``.

mlflow is an optional extra (``envprint[mlflow]``; mlflow-skinny is enough), imported only inside
these functions. Imports the public API (envprint, errors) and the record layer, never the CLI.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envprint.errors import DependencyError, FingerprintError, ModelError, UsageError
from envprint.record.mlflow_model import (
    MLMODEL_FILE,
    RECORD_ARTIFACT_PATH,
    flavour_model,
    import_mlflow,
    is_mlflow_uri,
)

MODEL_ARTIFACT_PATH = "model"


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
    import_mlflow()
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
    mlflow = import_mlflow()
    from envprint.record.signing import SIGNATURE_FILE

    if hasattr(model_path, "model_uri"):  # the ModelInfo a flavour's log_model returned
        model_path = model_path.model_uri
    if is_mlflow_uri(model_path):
        return _record_flavour_model(mlflow, str(model_path), dict(save_options or {}), registered_model_name)
    model_path = Path(model_path)
    fp_path, fp = _model_record(model_path, fingerprint)
    if registered_model_name and not log_model:
        raise UsageError("log_record: registered_model_name needs log_model=True (the registry points at the model)")
    run_id = _run_id(mlflow, run_id)
    client = mlflow.tracking.MlflowClient()
    tags = record_tags(fp, signed=(fp_path.parent / SIGNATURE_FILE).is_file())
    try:
        model_uri = _log_model_files(client, run_id, model_path) if log_model else None
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


def _model_record(model_path: Path, fingerprint: str | Path | None) -> tuple[Path, Any]:
    """The fingerprint.json of a model and its Fingerprint; FingerprintError for a host's fingerprint."""
    from envprint.record.sidecar import locate_fingerprint
    from envprint.record.store import read_fingerprint

    fp_path = locate_fingerprint(model_path, fingerprint)
    fp = read_fingerprint(fp_path)
    if fp.model is None:
        raise FingerprintError(
            f"{fp_path}: a fingerprint of a host, not of a model; record the model first: envprint save {model_path}"
        )
    return fp_path, fp


def _run_id(mlflow: Any, run_id: str | None) -> str:
    """``run_id``, else the active run's; UsageError when there is none."""
    if run_id is not None:
        return run_id
    active = mlflow.active_run()
    if active is None:
        raise UsageError("log_record: no active MLflow run; call it inside 'with mlflow.start_run():' or pass run_id")
    return active.info.run_id


def _log_model_files(client: Any, run_id: str, model_path: Path) -> str:
    """The model's files as the run's model/ artifacts (a SavedModel's directory whole); returns their runs:/ URI."""
    if model_path.is_dir():  # a SavedModel: its files are the artifact, its record inside it
        client.log_artifacts(run_id, str(model_path), MODEL_ARTIFACT_PATH)
    else:
        client.log_artifact(run_id, str(model_path), MODEL_ARTIFACT_PATH)
    return f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"


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


def verify(uri: str, *, fingerprint: str | Path | None = None, **options: Any) -> Any:
    """``envprint.verify`` of a model in MLflow: a ``runs:/`` or ``models:/`` URI. Returns the Report.

    ``options`` are ``envprint.verify``'s (tolerance, safe_mode, signing_key, ...), which resolves
    the URI itself (``envprint.check.mlflow_source``); kept for code written against it.
    """
    import envprint

    if not is_mlflow_uri(uri):
        raise UsageError(f"{uri}: not an MLflow URI; give runs:/<run_id>/<path> or models:/<name>/<version>")
    return envprint.verify(uri, fingerprint=fingerprint, **options)
