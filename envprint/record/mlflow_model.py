"""Where the model lies inside a model that an MLflow flavour (keras, tensorflow) saved, read from its MLmodel.

Shared by ``check/mlflow_source.py`` (verify of a flavour's model URI) and ``integrations/mlflow.py``
(recording a flavour's model): one reading of the MLmodel file, not two. Imports nothing above
``errors``; PyYAML (a dependency of mlflow-skinny) only inside ``flavour_model``.
"""

from __future__ import annotations

from pathlib import Path

from envprint.errors import ModelError

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
