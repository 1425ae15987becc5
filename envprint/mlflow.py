"""envprint's MLflow integration, by its public name: ``envprint.mlflow.log_record`` and ``envprint.mlflow.verify``.

A thin path to ``envprint.integrations.mlflow``; importing it does not import mlflow.
"""

from __future__ import annotations

from envprint.integrations.mlflow import LoggedRecord, is_mlflow_uri, log_record, record_tags, verify

__all__ = ["LoggedRecord", "is_mlflow_uri", "log_record", "record_tags", "verify"]
