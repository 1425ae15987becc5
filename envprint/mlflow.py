"""envprint's MLflow integration, by its public name: ``envprint.mlflow.log_record``, ``log_model``,
``autolog_callback`` and ``verify``.

A thin path to ``envprint.integrations.mlflow``; importing it does not import mlflow.
"""

from __future__ import annotations

from envprint.integrations.mlflow import (
    LoggedRecord,
    autolog_callback,
    is_mlflow_uri,
    log_model,
    log_record,
    record_tags,
    verify,
)

__all__ = ["LoggedRecord", "autolog_callback", "is_mlflow_uri", "log_model", "log_record", "record_tags", "verify"]
