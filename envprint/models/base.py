"""What every envprint record shares: the strict, frozen base model, the schema versions, the leaf types.

Must not import TensorFlow, Keras or any envprint module but ``errors``: ``envprint diff`` and
the schema tests load ``envprint.models`` on hosts without TensorFlow.

Conventions:
- every model is strict (``extra="forbid"``) and frozen: a record is a value, not a workspace;
- a fact that could not be read is ``None`` and its section's ``unavailable`` maps the field
  name to the reason. No ``"N/A"`` strings: ``None`` is the only "unknown".
"""

from typing import Final

from pydantic import BaseModel, ConfigDict

FINGERPRINT_SCHEMA_VERSION: Final = 1
DIFF_SCHEMA_VERSION: Final = 1
REPORT_SCHEMA_VERSION: Final = 2  # 2: typed fields instead of notes, passed, tolerance needed
ERROR_SCHEMA_VERSION: Final = 1
SAVE_SCHEMA_VERSION: Final = 1
SWEEP_SCHEMA_VERSION: Final = 1
FLEET_SCHEMA_VERSION: Final = 1
AGGREGATE_SCHEMA_VERSION: Final = 1

# A leaf value as it appears in a diff: JSON scalars, or a list of strings (CPU flags, ...).
Scalar = str | int | float | bool | None
Leaf = Scalar | list[str]

Unavailable = dict[str, str]


class Record(BaseModel):
    """Base of every persisted model: unknown keys are an error, instances are immutable."""

    # defer_build: a validator is built on first use, so `envprint diff` pays only for the models
    # it reads, not for every record envprint knows.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
