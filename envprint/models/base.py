"""What every envprint record shares: the strict, frozen base model, the schema versions, the leaf types.

Must not import TensorFlow, Keras or any envprint module but ``errors``: ``envprint diff`` and
the schema tests load ``envprint.models`` on hosts without TensorFlow.

Conventions:
- every model is strict (``extra="forbid"``) and frozen: a record is a value, not a workspace;
- a fact that could not be read is ``None`` and its section's ``unavailable`` maps the field
  name to the reason. No ``"N/A"`` strings: ``None`` is the only "unknown".
"""

from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

# A document's schema is MAJOR.MINOR: ``schema_version`` (the major, an int since 0.1.0) and
# ``schema_minor`` (since 0.2.0; a document without one is minor 0). A minor release only adds
# optional fields, so a reader meets a newer minor by reading what it knows and naming what it
# could not check; a major change (a field removed, renamed or retyped) is refused by older readers.
# Bump the minor with every added field, the major (and reset the minor) with anything else.
FINGERPRINT_SCHEMA_VERSION: Final = 1
DIFF_SCHEMA_VERSION: Final = 1
REPORT_SCHEMA_VERSION: Final = 2  # 2: typed fields instead of notes, passed, tolerance needed
ERROR_SCHEMA_VERSION: Final = 1
SAVE_SCHEMA_VERSION: Final = 1
SWEEP_SCHEMA_VERSION: Final = 1
FLEET_SCHEMA_VERSION: Final = 1
AGGREGATE_SCHEMA_VERSION: Final = 1

# 1 everywhere: ``schema_minor`` itself is the field 0.2.0 added to every document.
FINGERPRINT_SCHEMA_MINOR: Final = (
    5  # 2: variants; 3: model.compute_precision, tolerance.precision; 4: keras; 5: layer_trace
)
DIFF_SCHEMA_MINOR: Final = 1
REPORT_SCHEMA_MINOR: Final = 6  # 2: max_steps; 3: variant; 4: precision, outputs[].scale; 5: endpoint; 6: layers
ERROR_SCHEMA_MINOR: Final = 2  # 2: kind "endpoint"
SAVE_SCHEMA_MINOR: Final = 2  # 2: variants
SWEEP_SCHEMA_MINOR: Final = 2  # 2: not_recorded
FLEET_SCHEMA_MINOR: Final = 2  # 2: a class's variant
AGGREGATE_SCHEMA_MINOR: Final = 2  # 2: a class's variant


def minor_field(default: int) -> Any:
    """The ``schema_minor`` field of a document written at minor ``default``."""
    return Field(
        default,
        ge=0,
        description="Minor version of the schema that wrote this document (absent before envprint 0.2.0: 0). "
        "A reader of an older minor reads what it knows and names the fields it could not check.",
    )


# A leaf value as it appears in a diff: JSON scalars, or a list of strings (CPU flags, ...).
Scalar = str | int | float | bool | None
Leaf = Scalar | list[str]

Unavailable = dict[str, str]


class Record(BaseModel):
    """Base of every persisted model: unknown keys are an error, instances are immutable."""

    # defer_build: a validator is built on first use, so `envprint diff` pays only for the models
    # it reads, not for every record envprint knows.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    # Keys of a newer-minor document that this envprint does not know, set only by
    # ``record.store`` on the reading path ({(key, index, ...): value}) so that a document read and
    # written again keeps them; what envprint builds itself never has any.
    _unknown: dict[tuple[str | int, ...], Any] = PrivateAttr(default_factory=dict)


class ArrayFile(Record):
    """Arrays in a file of the record (.npz), by digest: probes, reference, variants' outputs."""

    file: str = Field(description="File name inside the sidecar directory.")
    sha256: str
    arrays: dict[str, list[int]] = Field(description="Array name -> shape.")


def default_passed(data: object, rule: Callable[[dict], bool]) -> object:
    """Documents written before ``passed`` existed read with the value the command's exit code gave."""
    if isinstance(data, dict) and "passed" not in data:
        data = {**data, "passed": rule(data)}
    return data


def exit_code_passed(data: dict) -> bool:
    return data.get("exit_code") == 0
