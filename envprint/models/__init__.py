"""The pydantic models: everything envprint writes to disk or emits as JSON is defined here.

Data only, split by what it describes: ``base`` (the strict, frozen ``Record``, schema versions,
leaf types), ``fingerprint`` (the host and what save records), ``report`` (diff, causes, output
comparisons, the verify report, errors, the save summary), ``many`` (sweep, fleet, aggregate) and
``schemas`` (``json_schemas()``, which feeds ``schemas/``). Every public name is importable from
``envprint.models``. Must not import TensorFlow, Keras or any envprint module but ``errors``:
``envprint diff`` and the schema tests load this package on hosts without TensorFlow.

Conventions:
- every model is strict (``extra="forbid"``) and frozen: a record is a value, not a workspace;
- a fact that could not be read is ``None`` and its section's ``unavailable`` maps the field
  name to the reason. No ``"N/A"`` strings: ``None`` is the only "unknown".
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from envprint.models.base import (
    AGGREGATE_SCHEMA_VERSION,
    DIFF_SCHEMA_VERSION,
    ERROR_SCHEMA_VERSION,
    FINGERPRINT_SCHEMA_VERSION,
    FLEET_SCHEMA_VERSION,
    REPORT_SCHEMA_VERSION,
    SAVE_SCHEMA_VERSION,
    SWEEP_SCHEMA_VERSION,
    ArrayFile,
    Leaf,
    Record,
    Scalar,
    Unavailable,
)
from envprint.models.endpoint import EndpointFacts, EndpointMisfit
from envprint.models.fingerprint import (
    BuildInfo,
    ComputeDtype,
    ComputePrecision,
    CpuInfo,
    Device,
    DevicesInfo,
    EnvInfo,
    Fingerprint,
    JaxInfo,
    KerasInfo,
    LoadedLibrary,
    ModelFormat,
    ModelIdentity,
    NvidiaGpu,
    OneDnnInfo,
    OpenVinoInfo,
    PackagesInfo,
    PlatformInfo,
    ProbeRecipe,
    PythonInfo,
    SeedsInfo,
    SelfCheck,
    TensorflowInfo,
    TensorSpec,
    ThreadsInfo,
    Tolerance,
    TorchInfo,
)
from envprint.models.layers import LayerLocation, LayerStep, LayerTrace, LocateStatus, TracedLayer
from envprint.models.precision import Magnitude, PrecisionCheck
from envprint.models.report import (
    NONFINITE,
    PREFLIGHT_THRESHOLD,
    DiffEntry,
    DiffStatus,
    ErrorDocument,
    ErrorHistogram,
    ErrorInfo,
    Explanation,
    FingerprintDiff,
    IdentityCheck,
    InvestigationResult,
    InvestigationStatus,
    ModelDifference,
    OutputComparison,
    Report,
    SaveSummary,
    Verdict,
    WorstElement,
    use_wording,
)
from envprint.models.variants import (
    Variant,
    VariantClass,
    VariantMatch,
    VariantMatchStatus,
    Variants,
    VariantSettings,
    VariantStatus,
)

# The sweep/fleet/aggregate records and the JSON Schema machinery are loaded on first use (PEP 562):
# `envprint.verify` in a server's start-up builds neither (issue 18).
_LAZY = {
    **dict.fromkeys(
        (
            "AggregateReport",
            "ClassDiff",
            "EquivalenceClass",
            "FleetReport",
            "HostResult",
            "HostStatus",
            "ItemVerdict",
            "SweepDifference",
            "SweepItem",
            "SweepSummary",
        ),
        "many",
    ),
    "PERSISTED_MODELS": "schemas",
    "json_schemas": "schemas",
}

if TYPE_CHECKING:
    from envprint.models.many import (
        AggregateReport,
        ClassDiff,
        EquivalenceClass,
        FleetReport,
        HostResult,
        HostStatus,
        ItemVerdict,
        SweepDifference,
        SweepItem,
        SweepSummary,
    )
    from envprint.models.schemas import PERSISTED_MODELS, json_schemas

__all__ = [
    "SweepDifference",
    "use_wording",
    "FINGERPRINT_SCHEMA_VERSION",
    "DIFF_SCHEMA_VERSION",
    "REPORT_SCHEMA_VERSION",
    "ERROR_SCHEMA_VERSION",
    "SAVE_SCHEMA_VERSION",
    "Scalar",
    "Leaf",
    "Unavailable",
    "Record",
    "PythonInfo",
    "PlatformInfo",
    "ComputeDtype",
    "ComputePrecision",
    "CpuInfo",
    "PackagesInfo",
    "OneDnnInfo",
    "BuildInfo",
    "TensorflowInfo",
    "KerasInfo",
    "JaxInfo",
    "OpenVinoInfo",
    "TorchInfo",
    "Device",
    "NvidiaGpu",
    "LoadedLibrary",
    "DevicesInfo",
    "ThreadsInfo",
    "SeedsInfo",
    "EnvInfo",
    "ModelFormat",
    "TensorSpec",
    "ModelIdentity",
    "ProbeRecipe",
    "ArrayFile",
    "TracedLayer",
    "LayerTrace",
    "LocateStatus",
    "LayerStep",
    "LayerLocation",
    "SelfCheck",
    "Tolerance",
    "Fingerprint",
    "DiffStatus",
    "DiffEntry",
    "Explanation",
    "PREFLIGHT_THRESHOLD",
    "FingerprintDiff",
    "Verdict",
    "WorstElement",
    "ErrorHistogram",
    "NONFINITE",
    "Magnitude",
    "OutputComparison",
    "PrecisionCheck",
    "ModelDifference",
    "IdentityCheck",
    "InvestigationStatus",
    "InvestigationResult",
    "Report",
    "EndpointFacts",
    "EndpointMisfit",
    "ErrorInfo",
    "ErrorDocument",
    "SaveSummary",
    "PERSISTED_MODELS",
    "json_schemas",
    "SWEEP_SCHEMA_VERSION",
    "FLEET_SCHEMA_VERSION",
    "AGGREGATE_SCHEMA_VERSION",
    "ItemVerdict",
    "SweepItem",
    "SweepSummary",
    "HostStatus",
    "HostResult",
    "EquivalenceClass",
    "ClassDiff",
    "FleetReport",
    "AggregateReport",
    "Variant",
    "VariantClass",
    "VariantMatch",
    "VariantMatchStatus",
    "Variants",
    "VariantSettings",
    "VariantStatus",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envprint.models' has no attribute {name!r}")
    value = getattr(import_module(f"envprint.models.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
