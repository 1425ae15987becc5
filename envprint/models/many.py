"""Many checks at once: sweep, fleet, aggregate.

Many models in this environment (sweep), one model on many hosts (fleet on Ray, aggregate of
`verify --json` reports from any engine). Each host or model that could not be verified is
data here too: its exit code and one line, never a missing row.
"""

from typing import Literal

from pydantic import Field, model_validator

from envprint.models.base import (
    AGGREGATE_SCHEMA_MINOR,
    AGGREGATE_SCHEMA_VERSION,
    FLEET_SCHEMA_MINOR,
    FLEET_SCHEMA_VERSION,
    SWEEP_SCHEMA_MINOR,
    SWEEP_SCHEMA_VERSION,
    Record,
    default_passed,
    exit_code_passed,
    minor_field,
)
from envprint.models.report import DiffEntry, Explanation, OutputComparison, Verdict
from envprint.models.variants import VariantMatch

ItemVerdict = Literal["identical", "within_tolerance", "mismatch", "error"]

SweepDifference = Literal["weights_changed", "record_edited", "random_at_inference", "output"]


class PassedByExitCode(Record):
    """A summary of many models or hosts: ``passed`` is its exit code being 0 (read so from documents
    written before ``passed`` existed)."""

    passed: bool = Field(
        description="exit_code is 0: every model (host) passed. One field for CI, as in every document."
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_follows_the_exit_code(cls, data: object) -> object:
        return default_passed(data, exit_code_passed)


class SweepItem(Record):
    """One model of a sweep: its verdict, or why it could not be verified."""

    model: str = Field(description="The model's path as found or listed.")
    verdict: ItemVerdict = Field(description="'error' when the model could not be verified (see exit_code, error).")
    exit_code: int = Field(
        description="What `envprint verify MODEL` would exit with: 0, 1, or >= 2 (could not verify)."
    )
    error: str | None = Field(None, description="Why it could not be verified, one line.")
    leading_cause: str | None = Field(None, description="The first explanation's cause id, when outputs differ.")
    difference: SweepDifference | None = Field(
        None,
        description="What differs first, when outputs differ: 'weights_changed' (not the model that was saved), "
        "'record_edited' (probes or reference changed after save), 'random_at_inference', or 'output' (see output).",
    )
    output: OutputComparison | None = Field(
        None, description="difference 'output': the first output that is not bit-identical (its numbers, no histogram)."
    )
    note: str | None = Field(None, description="Written by envprint 0.1 only (a line of text); now difference, output.")
    max_ulp: int | None = Field(None, description="Largest ULP distance over the outputs (ranks the worst models).")
    max_rel: float | None = Field(None, description="Largest relative error over the outputs.")
    attempts: int = Field(1, description="2 when a worker died on the first attempt and the model was retried.")
    seconds: float | None = Field(None, description="Wall time of the verification inside its worker.")
    worker: int | None = Field(None, description="Process id of the worker (local pool) that verified it.")
    worker_rss_bytes: int | None = Field(None, description="The worker's resident memory after this model.")


class SweepSummary(PassedByExitCode):
    """The last document of `envprint sweep --json` (after one line per model), and its table."""

    schema_version: Literal[1] = SWEEP_SCHEMA_VERSION
    schema_minor: int = minor_field(SWEEP_SCHEMA_MINOR)
    kind: Literal["sweep_summary"] = "sweep_summary"
    engine: Literal["local", "ray"]
    jobs: int = Field(description="Worker processes (local pool) or CPUs in the Ray cluster.")
    total: int = Field(description="Models found.")
    done: int = Field(description="Models with a result (fewer than total when interrupted).")
    interrupted: bool = False
    by_verdict: dict[str, int] = Field(description="identical / within_tolerance / mismatch / error -> count.")
    by_cause: dict[str, int] = Field(description="Leading cause id -> count, over models whose outputs differ.")
    models: list[SweepItem] = Field(description="Worst first: mismatches, then errors, within tolerance, identical.")
    not_recorded: list[str] = Field(
        default_factory=list,
        description="Models found in a swept directory without a record beside them: not verified, not failed.",
    )
    exit_code: int = Field(
        description="The command's exit code: the highest 'could not verify' code, else 1 on a mismatch, else 0."
    )


HostStatus = Literal["verified", "error", "unreachable"]


class HostResult(Record):
    """One host (a Ray node, or the source of one `verify --json` report) and what it gave."""

    host: str = Field(description="Node address (fleet) or report source (aggregate: file name, or stdin:LINE).")
    node_id: str | None = Field(None, description="Ray node id (fleet).")
    status: HostStatus = Field(description="'unreachable': the node died or never ran its task; not a mismatch.")
    verdict: Verdict | None = None
    exit_code: int = Field(description="0, 1, or >= 2 when this host could not verify the model.")
    error: str | None = None
    outputs_digest: str | None = Field(None, description="Report.outputs_digest: sha256 of the outputs it obtained.")
    equivalence_class: str | None = Field(
        None, description="Name of its class ('A' is the largest), verified hosts only."
    )


class EquivalenceClass(Record):
    """Hosts that agree on (verdict, numerics-relevant differences from the record, outputs digest)."""

    name: str = Field(description="'A', 'B', ...: the largest class first.")
    verdict: Verdict
    hosts: list[str]
    representative: str = Field(description="The host whose report stands for the class.")
    outputs_digest: str | None = Field(
        None, description="sha256 of the outputs; None for reports without one (grouped by their statistics)."
    )
    outputs: list[OutputComparison] = Field(description="The representative's outputs against the record.")
    environment: list[DiffEntry] = Field(description="Numerics-relevant differences of these hosts from the record.")
    explanations: list[Explanation] = Field(
        default_factory=list, description="Why it differs from the record, most likely first."
    )
    variant: VariantMatch | None = Field(
        None,
        description="The variant recorded at save (save --variants) that the representative's outputs are "
        "bit-identical to, or none; None when the record holds no variants.",
    )


class ClassDiff(Record):
    """What differs between the representatives of two classes (a = class A, the largest)."""

    a: str
    b: str
    host_a: str
    host_b: str
    entries: list[DiffEntry] = Field(
        description="Numerics-relevant fingerprint fields that differ between the two hosts."
    )


class FleetReport(PassedByExitCode):
    """One model over many hosts: `envprint fleet` (Ray) and, per model, `envprint aggregate`."""

    schema_version: Literal[1] = FLEET_SCHEMA_VERSION
    schema_minor: int = minor_field(FLEET_SCHEMA_MINOR)
    kind: Literal["fleet_report"] = "fleet_report"
    model: str
    fingerprint: str | None = Field(None, description="The record the hosts verified against.")
    hosts: list[HostResult]
    classes: list[EquivalenceClass] = Field(description="Largest first.")
    between: list[ClassDiff] = Field(default_factory=list, description="Each other class against class A.")
    by_status: dict[str, int] = Field(
        description="identical / within_tolerance / mismatch / error / unreachable -> hosts."
    )
    exit_code: int


class AggregateReport(PassedByExitCode):
    """`envprint aggregate`: the reports read, grouped per model into equivalence classes."""

    schema_version: Literal[1] = AGGREGATE_SCHEMA_VERSION
    schema_minor: int = minor_field(AGGREGATE_SCHEMA_MINOR)
    kind: Literal["aggregate_report"] = "aggregate_report"
    sources: int = Field(description="Reports read.")
    models: list[FleetReport]
    exit_code: int
