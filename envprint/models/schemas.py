"""The JSON Schema of every model envprint persists or emits, as written to ``schemas/``."""

from pydantic import BaseModel

from envprint.models.base import (
    AGGREGATE_SCHEMA_VERSION,
    DIFF_SCHEMA_VERSION,
    ERROR_SCHEMA_VERSION,
    FINGERPRINT_SCHEMA_VERSION,
    FLEET_SCHEMA_VERSION,
    REPORT_SCHEMA_VERSION,
    SAVE_SCHEMA_VERSION,
    SWEEP_SCHEMA_VERSION,
)
from envprint.models.fingerprint import Fingerprint
from envprint.models.many import AggregateReport, FleetReport, SweepSummary
from envprint.models.report import ErrorDocument, FingerprintDiff, Report, SaveSummary

PERSISTED_MODELS: dict[str, tuple[type[BaseModel], int]] = {
    "fingerprint": (Fingerprint, FINGERPRINT_SCHEMA_VERSION),
    "diff": (FingerprintDiff, DIFF_SCHEMA_VERSION),
    "report": (Report, REPORT_SCHEMA_VERSION),
    "error": (ErrorDocument, ERROR_SCHEMA_VERSION),
    "save": (SaveSummary, SAVE_SCHEMA_VERSION),
    "sweep-summary": (SweepSummary, SWEEP_SCHEMA_VERSION),
    "fleet-report": (FleetReport, FLEET_SCHEMA_VERSION),
    "aggregate-report": (AggregateReport, AGGREGATE_SCHEMA_VERSION),
}


def json_schemas() -> dict[str, dict]:
    """File name -> JSON Schema of every model envprint persists or emits."""
    out = {}
    for name, (model, version) in PERSISTED_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[f"{name}.v{version}.schema.json"] = schema
    return out
