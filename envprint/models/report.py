"""What one check found: the fingerprint diff, the causes, each output's comparison, the verify report,
and what the CLI prints besides (errors, the save summary).
"""

from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from envprint.models.base import (
    DIFF_SCHEMA_MINOR,
    DIFF_SCHEMA_VERSION,
    ERROR_SCHEMA_MINOR,
    ERROR_SCHEMA_VERSION,
    REPORT_SCHEMA_MINOR,
    REPORT_SCHEMA_VERSION,
    SAVE_SCHEMA_MINOR,
    SAVE_SCHEMA_VERSION,
    Leaf,
    Record,
    default_passed,
    minor_field,
)
from envprint.models.endpoint import EndpointFacts
from envprint.models.fingerprint import ModelIdentity, ProbeRecipe, SelfCheck, Tolerance
from envprint.models.layers import LayerLocation
from envprint.models.precision import PrecisionCheck
from envprint.models.variants import VariantMatch, Variants

# --------------------------------------------------------------------------- diff

DiffStatus = Literal["changed", "only_in_a", "only_in_b"]


class DiffEntry(Record):
    path: str = Field(description="Dotted field path, e.g. 'tensorflow.onednn.enabled' or 'packages.installed.numpy'.")
    section: str = Field(description="Top-level section of the fingerprint.")
    status: DiffStatus
    a: Leaf = None
    b: Leaf = None
    topic: str = Field(description="What kind of difference this is, e.g. 'threads', 'onednn', 'tensorflow_version'.")
    numerics: bool = Field(description="True when the field is known to change numerics or device choice.")


class Explanation(Record):
    cause: str = Field(
        description="Stable cause id, e.g. 'model_changed', 'threads', 'onednn', 'stochastic_inference'."
    )
    score: float = Field(description="How well this cause accounts for what was observed, 0..1.")
    reasoning: str
    fields: list[DiffEntry] = Field(
        default_factory=list, description="Fingerprint fields with saved and current values."
    )
    remedy: str
    predicts: Literal["noise", "precision", "semantic"] | None = Field(
        None,
        description="Preflight only: the change expected: 'noise' (ULP-level, within the default tolerance), "
        "'precision' (beyond tolerance, top-1 mostly agrees) or 'semantic' (changed results or a load failure).",
    )


# verify --preflight fails (exit 1) when an expectation of a change beyond tolerance (or a load
# failure) is at least this likely. ULP-level noise, however likely, and anything below it are notes.
PREFLIGHT_THRESHOLD = 0.5


class FingerprintDiff(Record):
    schema_version: Literal[1] = DIFF_SCHEMA_VERSION
    schema_minor: int = minor_field(DIFF_SCHEMA_MINOR)
    a: str = Field(description="Label of the first fingerprint (its path, or 'current host').")
    b: str
    identical: bool
    entries: list[DiffEntry] = Field(description="Numerics-relevant entries first, then by path.")
    expectations: list[Explanation] = Field(
        default_factory=list,
        description="Predicted from the two fingerprints alone: what drift each difference would cause, most likely first.",
    )
    passed: bool = Field(
        description="The command's exit 0, one field for CI: diff: the fingerprints are identical; verify "
        "--preflight: no change beyond tolerance is expected. Read as 'identical' from documents without it."
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_defaults_to_identical(cls, data: object) -> object:
        return default_passed(data, lambda d: bool(d.get("identical")))

    @property
    def expects_change(self) -> bool:
        """Whether a change beyond tolerance is likely enough (PREFLIGHT_THRESHOLD) to fail ``verify --preflight``."""
        return any(x.score >= PREFLIGHT_THRESHOLD and x.predicts != "noise" for x in self.expectations)


# --------------------------------------------------------------------------- verify report

Verdict = Literal["identical", "within_tolerance", "mismatch"]


class WorstElement(Record):
    """One offending element. Numbers are strings (repr) so NaN and Inf stay valid JSON."""

    index: list[int]
    obtained: str
    expected: str
    difference: str


class ErrorHistogram(Record):
    """How one output's error is distributed, for plots (finite pairs of a float dtype with a ULP)."""

    ulp_edges: list[int] = Field(
        description="Bin i counts elements with ulp_edges[i] <= ULP distance < ulp_edges[i+1]; bin 0 is 0 ULP."
    )
    ulp_counts: list[int]
    rel_edges: list[float] = Field(
        description="Bin i counts elements with rel_edges[i] <= |obtained - expected| / |expected| < rel_edges[i+1] "
        "(errors outside the range counted in the first or last bin)."
    )
    rel_counts: list[int]
    rel_zero: int = Field(description="Elements with relative error 0.")
    rel_skipped: int = Field(description="Elements without a relative error: expected == 0, or a value not finite.")
    sample_expected: list[float] = Field(description="A strided sample of finite expected values ...")
    sample_obtained: list[float] = Field(description="... and the obtained values at the same elements.")


# The OutputComparison fields that count non-finite values appearing or vanishing, in report order.
NONFINITE = ("nan_appeared", "nan_vanished", "inf_appeared", "inf_vanished")


class OutputComparison(Record):
    name: str
    status: Verdict
    problem: str | None = Field(
        None,
        description="Why the arrays could not be compared element-wise: output missing or new, shape or dtype changed.",
    )
    expected_dtype: str | None = None
    obtained_dtype: str | None = None
    expected_shape: list[int] | None = None
    obtained_shape: list[int] | None = None
    size: int = Field(0, description="Elements compared.")
    n_differ: int = Field(0, description="Elements not bit-identical.")
    n_out_of_tolerance: int = Field(0, description="Elements with |obtained - expected| > atol + rtol * |expected|.")
    fraction_out_of_tolerance: float = 0.0
    max_abs: float | None = None
    max_rel: float | None = None
    max_ulp: int | None = Field(None, description="Largest distance in units in the last place (floating outputs).")
    max_steps: int | None = Field(
        None,
        description="Largest difference in integer steps (integer outputs: a quantized output's quantization steps).",
    )
    mean_abs: float | None = None
    nan_appeared: int = 0
    nan_vanished: int = 0
    inf_appeared: int = 0
    inf_vanished: int = 0
    top1_agreement: float | None = Field(
        None, description="Share of probes whose argmax agrees (classifier-shaped outputs)."
    )
    top5_agreement: float | None = Field(
        None,
        description="Share of probes whose five highest-scoring classes are the same set (classifier-shaped "
        "outputs with more than five classes).",
    )
    rtol_needed: float | None = Field(
        None,
        description="The smallest rtol that would have passed with this atol; None when no rtol would (a value "
        "differs where the reference is 0, NaN or Inf appear or vanish) or the output is not floating.",
    )
    atol_needed: float | None = Field(
        None,
        description="The smallest atol that would have passed with rtol 0; None when no atol would (NaN or Inf "
        "appear or vanish) or the output is not floating.",
    )
    atol: float | None = None
    rtol: float | None = None
    scale: float | None = Field(
        None,
        description="The expected output's largest finite |value| (floating outputs): what max_abs is measured against.",
    )
    worst: list[WorstElement] = Field(default_factory=list, description="The first offending elements, worst first.")
    error_histogram: ErrorHistogram | None = Field(
        None, description="Distribution of the error (outputs that differ, float dtypes): drawn by the HTML report."
    )


class ModelDifference(Record):
    """One way the model verified is not the fingerprinted one (inputs and outputs as 'name shape dtype')."""

    field: Literal["inputs", "outputs", "parameter_count", "layer_classes", "format"]
    saved: Leaf = None
    current: Leaf = None


class IdentityCheck(Record):
    weights: Literal["same", "changed", "unknown"]
    differences: list[ModelDifference] = Field(
        default_factory=list,
        description="What differs between the fingerprinted model and this one: inputs, outputs, parameter count, "
        "layer classes (only what both sides could read).",
    )
    model_name: str | None = Field(
        None, description="File or directory name of the model verified: what '.' in the file lists stands for."
    )
    weights_digest_scheme_saved: str | None = Field(None, description="How the saved weights digest was computed.")
    weights_digest_scheme_now: str | None = Field(
        None, description="How this model's weights digest was computed; weights are 'unknown' when the two differ."
    )
    files_changed: list[str] = Field(default_factory=list)
    files_missing: list[str] = Field(default_factory=list)
    files_added: list[str] = Field(default_factory=list)
    sidecar_files_changed: list[str] = Field(
        default_factory=list, description="probes.npz / reference.npz whose sha256 no longer matches the fingerprint."
    )


InvestigationStatus = Literal["confirmed", "ruled_out", "untestable", "reproduced", "not_reproduced"]


class InvestigationResult(Record):
    """One child process of ``verify --investigate``, or one cause that could not be tried here."""

    cause: str = Field(
        description="Cause id as in explanations ('onednn', 'threads', ...), or 'control' (nothing restored), "
        "'batch_size' (one probe per call) or 'all_settings' (every restorable setting at once)."
    )
    setting: str = Field(description="What was restored, e.g. 'TF_ENABLE_ONEDNN_OPTS=1'.")
    status: InvestigationStatus = Field(
        description="confirmed: restoring it brings the outputs to (or much closer to) the reference; ruled_out: "
        "no closer than the control; untestable: cannot be restored on this host (or the child failed); "
        "reproduced / not_reproduced: the control, a fresh process with nothing changed."
    )
    detail: str
    remedy: str | None = None
    fields: list[str] = Field(default_factory=list, description="Fingerprint paths this setting restores.")
    n_differ: int | None = Field(None, description="Elements not bit-identical to the reference, after restoring.")
    n_out_of_tolerance: int | None = None
    max_abs: float | None = None
    max_ulp: int | None = None
    seconds: float | None = Field(None, description="Wall time of the child process.")


class Report(Record):
    """What verify found. ``str(report)`` and ``report.to_text()`` give the text the CLI prints."""

    schema_version: Literal[2] = REPORT_SCHEMA_VERSION
    schema_minor: int = minor_field(REPORT_SCHEMA_MINOR)
    verdict: Verdict
    passed: bool = Field(description="verdict is 'identical' or 'within_tolerance' (exit 0).")
    model: str = Field(description="The model that was verified (path, or the object's name).")
    fingerprint: str = Field(description="The fingerprint.json it was verified against.")
    identity: IdentityCheck
    probes_run: bool = Field(
        True, description="False when the probes were not fed: another model that does not take the recorded inputs."
    )
    inputs_by_position: dict[str, str] = Field(
        default_factory=dict,
        description="Recorded input name -> this model's input name, where a single input was fed by position "
        "(formats rename tensors).",
    )
    outputs_by_position: dict[str, str] = Field(
        default_factory=dict,
        description="Recorded output name -> this model's output name, where a single output was compared by position.",
    )
    probe_casts: dict[str, str] = Field(
        default_factory=dict,
        description="Probe inputs cast for this model by the record's cast rule, e.g. {'tokens': 'int64 -> int32'}.",
    )
    outputs: list[OutputComparison]
    random_at_inference: list[str] = Field(
        default_factory=list,
        description="Outputs that changed between two identical predictions on this host (a random layer active "
        "at inference); outputs compares the first prediction with the reference.",
    )
    environment: FingerprintDiff = Field(description="Saved fingerprint (a) against this host (b).")
    explanations: list[Explanation] = Field(default_factory=list, description="Most likely cause first.")
    investigation: list[InvestigationResult] = Field(
        default_factory=list,
        description="verify --investigate: the control run first, then one entry per setting tried or cause "
        "that cannot be tried here.",
    )
    seed_applied: int | None = Field(
        None,
        description="The record's declared seed, applied before the model loaded and predicted because the model may "
        "be random at inference (as save did); None when no seed was applied.",
    )
    record_signature: Literal["verified", "unchecked", "unsigned"] = Field(
        "unsigned",
        description="The record's signature.json: 'verified' with the key given, 'unchecked' (signed, but no key "
        "was given), 'unsigned' (none). A bad signature is an error, never a report.",
    )
    signing_key_id: str | None = Field(
        None, description="Id of the key the signature was checked with (a digest of the key, never the key)."
    )
    precision: PrecisionCheck | None = Field(
        None, description="What the outputs did against the model's compute precision (None: the probes did not run)."
    )
    layers: LayerLocation | None = Field(
        None,
        description="verify --locate (or a --layers record's outputs differ): the first layer to depart, each one's error.",
    )
    outputs_digest: str | None = Field(
        None,
        description="sha256 over the outputs obtained here (each output's name, dtype, shape and bytes, by name): "
        "hosts with the same digest gave bit-identical outputs. Used to group hosts (fleet, aggregate). "
        "None when the probes could not be fed.",
    )
    variant: VariantMatch | None = Field(
        None,
        description="The record holds variants (save --variants) and the probes ran: which one this host's outputs "
        "are bit-identical to, or none.",
    )
    endpoint: EndpointFacts | None = Field(
        None,
        description="verify --endpoint: the server, the protocol, what it serves and its latency; None for a local verify.",
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_follows_the_verdict(cls, data: object) -> object:
        if isinstance(data, dict) and "passed" not in data and "verdict" in data:
            data = {**data, "passed": data["verdict"] != "mismatch"}
        return data

    @model_validator(mode="after")
    def _passed_agrees(self) -> "Report":
        if self.passed != (self.verdict != "mismatch"):
            raise ValueError(f"passed={self.passed} contradicts verdict {self.verdict!r}")
        return self

    # The words are render/'s, and render sits above this module: render.text hands its two functions
    # to Report when it is imported (``use_wording``), so models imports nothing from envprint but
    # errors and there is no cycle models -> render -> models. Every public way to a Report imports
    # render.text first: ``envprint.Report`` and ``envprint.verify`` (the package's lazy names),
    # check.verifier and the CLI.
    def to_text(self) -> str:
        """The report as the CLI prints it, without colour: for a log line or an e-mail."""
        return _wording("text")(self)

    def __str__(self) -> str:
        return self.to_text()

    def raise_for_status(self) -> "Report":
        """Raise MismatchError (carrying this report) when the verdict is 'mismatch'; return self otherwise."""
        if self.verdict == "mismatch":
            from envprint.errors import MismatchError

            problem = _wording("first_problem")(self)
            raise MismatchError(f"{self.model}: mismatch against {self.fingerprint}: {problem}", report=self)
        return self


_WORDING: dict[str, Callable[[Report], str]] = {}


def use_wording(text: Callable[[Report], str], first_problem: Callable[[Report], str]) -> None:
    """render.text's functions for ``str(report)``, ``to_text`` and ``raise_for_status`` (called on its import)."""
    _WORDING.update(text=text, first_problem=first_problem)


def _wording(name: str) -> Callable[[Report], str]:
    if name not in _WORDING:
        raise RuntimeError("Report's words are in envprint.render.text: import it (envprint.Report does) first")
    return _WORDING[name]


# --------------------------------------------------------------------------- what the CLI prints besides


class ErrorInfo(Record):
    exit_code: int = Field(description="The exit code of the command (2 usage, 3 fingerprint, 4 model, ...).")
    kind: Literal["usage", "fingerprint", "model", "dependency", "endpoint", "internal", "interrupted"]
    message: str = Field(description="The one line also printed on stderr: what, where, what next.")


class ErrorDocument(Record):
    """What ``--json`` prints when a command could not run: never an empty file."""

    schema_version: Literal[1] = ERROR_SCHEMA_VERSION
    schema_minor: int = minor_field(ERROR_SCHEMA_MINOR)
    verdict: Literal["error"] = "error"
    passed: Literal[False] = False
    error: ErrorInfo


class SaveSummary(Record):
    """What ``envprint save --json`` prints: what was written where, its digests and the self-check."""

    schema_version: Literal[1] = SAVE_SCHEMA_VERSION
    schema_minor: int = minor_field(SAVE_SCHEMA_MINOR)
    sidecar: str = Field(description="The directory the record was written to.")
    written: dict[str, str] = Field(description="File name inside the sidecar -> sha256 of its bytes.")
    model: ModelIdentity
    probes: ProbeRecipe
    self_check: SelfCheck
    tolerance: Tolerance
    signed: bool = Field(description="Whether signature.json was written.")
    variants: Variants | None = Field(None, description="save --variants: what was recorded and what it cost.")
    warnings: list[str] = Field(default_factory=list)
    passed: Literal[True] = Field(True, description="Always true: a save that could not finish is an error document.")
