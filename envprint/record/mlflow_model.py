"""What verify (``check/mlflow_source.py``) and recording (``integrations/mlflow.py``) both know of
MLflow: its URI schemes, where a record lies among a run's artifacts, the guarded import of mlflow,
and where the model lies inside a model that an MLflow flavour (keras, tensorflow) saved, read from
its MLmodel: each once, not twice. Imports nothing above ``errors``; mlflow and PyYAML (a dependency
of mlflow-skinny) only inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envprint.errors import DependencyError, ModelError

MLMODEL_FILE = "MLmodel"
SCHEMES = ("runs:/", "models:/")
RECORD_ARTIFACT_PATH = "envprint"  # a run's (or a logged model's) record: its artifacts under envprint/


def is_mlflow_uri(model: Any) -> bool:
    """Whether ``model`` names a model in MLflow (``runs:/...`` or ``models:/...``) rather than a local path."""
    return isinstance(model, (str, Path)) and str(model).startswith(SCHEMES)


def import_mlflow() -> Any:
    """mlflow, or a DependencyError with the pip line (mlflow-skinny is enough)."""
    try:
        import mlflow
        from mlflow.artifacts import download_artifacts  # noqa: F401
        from mlflow.tracking import MlflowClient  # noqa: F401
    except ImportError:
        raise DependencyError(
            "MLflow support needs mlflow, which is not installed; install it: pip install 'envprint[mlflow]'"
        ) from None
    return mlflow


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
