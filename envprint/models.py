"""The pydantic models: everything envprint writes to disk or emits as JSON is defined here.

Owns: the fingerprint (schema version 1), the fingerprint diff, and ``json_schemas()`` that
feeds ``schemas/``. Must not import TensorFlow, Keras or any envprint module but ``errors``:
``envprint diff`` and the schema tests load this module on hosts without TensorFlow.

Conventions:
- every model is strict (``extra="forbid"``) and frozen: a record is a value, not a workspace;
- a fact that could not be read is ``None`` and its section's ``unavailable`` maps the field
  name to the reason. No ``"N/A"`` strings: ``None`` is the only "unknown".
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FINGERPRINT_SCHEMA_VERSION = 1
DIFF_SCHEMA_VERSION = 1
REPORT_SCHEMA_VERSION = 2  # 2: typed fields instead of notes, passed, tolerance needed
ERROR_SCHEMA_VERSION = 1
SAVE_SCHEMA_VERSION = 1

# A leaf value as it appears in a diff: JSON scalars, or a list of strings (CPU flags, ...).
Scalar = str | int | float | bool | None
Leaf = Scalar | list[str]

Unavailable = dict[str, str]


class Record(BaseModel):
    """Base of every persisted model: unknown keys are an error, instances are immutable."""

    # defer_build: a validator is built on first use, so `envprint diff` pays only for the models
    # it reads, not for every record envprint knows.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class PythonInfo(Record):
    version: str = Field(description="Python version, e.g. '3.11.7'.")
    implementation: str = Field(description="'CPython', 'PyPy', ...")
    compiler: str | None = Field(None, description="Compiler that built the interpreter.")


class PlatformInfo(Record):
    system: str = Field(description="'Linux', 'Darwin', 'Windows'.")
    release: str = Field(description="Kernel or OS release.")
    machine: str = Field(description="'x86_64', 'aarch64', 'arm64', ...")
    libc: str | None = Field(None, description="C library and version, e.g. 'glibc 2.36'.")
    unavailable: Unavailable = Field(default_factory=dict)


class CpuInfo(Record):
    model: str | None = Field(None, description="CPU model name.")
    vendor: str | None = Field(None, description="'GenuineIntel', 'AuthenticAMD', 'Apple', ...")
    logical_cores: int | None = Field(None, description="os.cpu_count().")
    physical_cores: int | None = Field(None, description="Distinct physical cores.")
    flags: list[str] | None = Field(
        None,
        description="Instruction-set extensions that change which kernels TensorFlow and oneDNN "
        "pick (avx2, fma, avx512f, amx_tile, sve, ...), sorted. Only those, not every flag.",
    )
    memory_bytes: int | None = Field(None, description="Total physical memory.")
    unavailable: Unavailable = Field(default_factory=dict)


class PackagesInfo(Record):
    tensorflow_distribution: str | None = Field(
        None,
        description="The installed distribution that provides TensorFlow (tensorflow, "
        "tensorflow-cpu, tf-nightly, tensorflow-macos, ...), or None when none is installed.",
    )
    key: dict[str, str | None] = Field(
        description="Versions of the packages that decide numerics (TensorFlow's distribution, "
        "keras, tf-keras, numpy, ml-dtypes, h5py, protobuf); None when not installed."
    )
    installed: dict[str, str] = Field(
        description="Every installed distribution, normalized name -> version (importlib.metadata)."
    )


class OneDnnInfo(Record):
    enabled: bool | None = Field(None, description="Whether TensorFlow is using oneDNN kernels now.")
    env: str | None = Field(None, description="TF_ENABLE_ONEDNN_OPTS as set, None when unset.")
    default: bool | None = Field(
        None, description="TensorFlow's default for this platform and version when the variable is unset."
    )
    unavailable: Unavailable = Field(default_factory=dict)


class BuildInfo(Record):
    is_cuda_build: bool | None = None
    is_rocm_build: bool | None = None
    is_tensorrt_build: bool | None = None
    cuda_version: str | None = Field(None, description="CUDA version TensorFlow was compiled against.")
    cudnn_version: str | None = Field(None, description="cuDNN version TensorFlow was compiled against.")
    cuda_compute_capabilities: list[str] | None = None


class TensorflowInfo(Record):
    version: str
    git_version: str | None = None
    compiler_version: str | None = None
    build: BuildInfo
    keras_flavor: Literal["keras3", "tf_keras", "keras2"] | None = Field(
        None, description="Which Keras tf.keras is: Keras 3, tf_keras (TF_USE_LEGACY_KERAS=1), or Keras 2."
    )
    keras_version: str | None = None
    keras_backend: str | None = None
    dtype_policy: str | None = Field(None, description="Keras global dtype policy, e.g. 'mixed_float16'.")
    op_determinism: bool | None = Field(None, description="tf.config.experimental.enable_op_determinism().")
    tensor_float_32: bool | None = Field(None, description="TF32 execution on Ampere+ GPUs.")
    jit: str | None = Field(None, description="tf.config.optimizer.get_jit(): '' (off) or 'autoclustering'.")
    grappler: dict[str, bool] = Field(
        default_factory=dict, description="tf.config.optimizer.get_experimental_options()."
    )
    onednn: OneDnnInfo
    unavailable: Unavailable = Field(default_factory=dict)


class Device(Record):
    name: str = Field(description="TensorFlow's physical device name, e.g. '/physical_device:GPU:0'.")
    device_type: str = Field(description="'CPU', 'GPU', 'TPU'.")
    model: str | None = Field(None, description="GPU name, e.g. 'NVIDIA A100-SXM4-80GB'.")
    compute_capability: str | None = Field(None, description="e.g. '8.0'.")


class NvidiaGpu(Record):
    index: int
    name: str
    memory_bytes: int | None = None


class LoadedLibrary(Record):
    name: str = Field(description="Library family: 'cudart', 'cublas', 'cudnn', 'nccl', 'dnnl', 'mkl', 'openblas', ...")
    path: str = Field(description="Resolved path of the shared object mapped into the process.")
    version: str | None = Field(None, description="Version read from the file name, e.g. '8.9.7'.")


class DevicesInfo(Record):
    physical: list[Device] | None = Field(None, description="tf.config.list_physical_devices().")
    driver_version: str | None = Field(None, description="NVIDIA driver version (NVML, else nvidia-smi).")
    cuda_driver_version: str | None = Field(None, description="Highest CUDA version the driver supports.")
    gpus: list[NvidiaGpu] | None = Field(None, description="GPUs as NVML or nvidia-smi sees them.")
    cuda_visible_devices: str | None = None
    loaded_libraries: list[LoadedLibrary] | None = Field(
        None, description="Numerics libraries mapped into this process (Linux: /proc/self/maps)."
    )
    nvidia_wheels: dict[str, str] = Field(
        default_factory=dict, description="Installed nvidia-* distributions (CUDA libraries from pip)."
    )
    unavailable: Unavailable = Field(default_factory=dict)


class ThreadsInfo(Record):
    cpu_count: int | None = Field(None, description="os.cpu_count().")
    affinity: int | None = Field(None, description="CPUs this process may run on (sched_getaffinity).")
    tf_intra_op: int | None = Field(None, description="tf.config.threading intra-op setting; 0 = TensorFlow's default.")
    tf_inter_op: int | None = Field(None, description="tf.config.threading inter-op setting; 0 = TensorFlow's default.")
    tf_intra_op_effective: int | None = Field(
        None,
        description="Intra-op threads TensorFlow uses: the setting, else TF_NUM_INTRAOP_THREADS, else the CPUs available.",
    )
    tf_inter_op_effective: int | None = Field(
        None,
        description="Inter-op threads TensorFlow uses: the setting, else TF_NUM_INTEROP_THREADS, else the CPUs available.",
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Thread-count variables as set: OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS, TF_NUM_*.",
    )
    blas: list[str] | None = Field(
        None, description="BLAS/OpenMP libraries NumPy loaded, as 'internal_api version threads=N'."
    )
    unavailable: Unavailable = Field(default_factory=dict)


class SeedsInfo(Record):
    declared: int | None = Field(None, description="The seed the user declared, if any.")
    source: Literal["seed_everything", "cli", "argument"] | None = Field(
        None, description="How it was declared: envprint.seed_everything(), the CLI's --seed, or capture(seed=...)."
    )
    pythonhashseed: str | None = Field(None, description="PYTHONHASHSEED as set.")


class EnvInfo(Record):
    variables: dict[str, str] = Field(
        default_factory=dict, description="Allow-listed variables that change numerics or device choice."
    )
    redacted: list[str] = Field(
        default_factory=list, description="Allow-listed names whose values look secret and were not recorded."
    )


# --------------------------------------------------------------------------- model and probes (save)

ModelFormat = Literal["keras", "h5", "savedmodel", "tflite"]


class TensorSpec(Record):
    name: str
    shape: list[int | None] = Field(description="None for a dynamic dimension (the batch, usually).")
    dtype: str = Field(description="NumPy dtype name, e.g. 'float32'.")


class ModelIdentity(Record):
    """What makes this model this model: its bytes, its weights, its interface and its layers."""

    format: ModelFormat
    name: str = Field(description="File or directory name of the model at save time.")
    files: dict[str, str] = Field(
        description="sha256 of every model file, by path relative to the model (one entry '.' for a single file)."
    )
    weights_digest: str | None = Field(
        None,
        description="sha256 over every weight's dtype, shape and bytes (scheme 'tensors-v2'): the same for the same "
        "weights however the model was built or saved, different when any weight changes.",
    )
    weights_digest_scheme: str | None = Field(
        None,
        description="'tensors-v2' (.keras, .h5, SavedModel, in-memory Keras: comparable across them), "
        "'tflite-constants-v1', or 'named-v1' (envprint 0.1.0: weight names included; still checked).",
    )
    saved_model_fingerprint: dict[str, int] | None = Field(
        None, description="tf.saved_model.experimental.read_fingerprint() of a SavedModel."
    )
    signature: str | None = Field(None, description="SavedModel signature the probes ran through.")
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    parameter_count: int | None = None
    layer_classes: list[str] = Field(default_factory=list)
    stochastic_layers: list[str] = Field(
        default_factory=list,
        description="Layers that are random in training mode, as 'name (Class)': Dropout, GaussianNoise, Random*, ...",
    )
    dtype_policy: str | None = None
    unavailable: Unavailable = Field(default_factory=dict)


class ProbeRecipe(Record):
    source: Literal["generated", "file"]
    num_probes: int
    seed: int | None = Field(None, description="Seed of the generator (generated probes).")
    distribution: str | None = Field(None, description="How float and integer inputs were drawn (generated probes).")
    file: str | None = Field(None, description="Name of the --probes file they came from.")
    inputs: list[TensorSpec] = Field(description="Shape and dtype of each probe array.")
    cast_rule: str | None = Field(
        None,
        description="How probes are cast to the model's input dtypes, at save and at verify: 'value-preserving-v1' "
        "(floats rounded to nearest; integers only when every value survives; nothing else). None: envprint 0.1.0.",
    )
    casts: dict[str, str] = Field(
        default_factory=dict,
        description="Inputs whose --probes array was cast at save, e.g. {'ids': 'int64 -> int32'}.",
    )


class ArrayFile(Record):
    file: str = Field(description="File name inside the sidecar directory.")
    sha256: str
    arrays: dict[str, list[int]] = Field(description="Array name -> shape.")


class SelfCheck(Record):
    """What identical predictions of the probes did at save time, on the training host."""

    repeat_max_abs: dict[str, float] = Field(description="Per output: max |difference| between two identical calls.")
    batch1_max_abs: dict[str, float] = Field(description="Per output: max |difference|, batch of 1 vs the full batch.")
    call_max_abs: dict[str, float] | None = Field(
        None, description="Per output: max |difference|, predict() vs __call__(training=False) (Keras models)."
    )
    deterministic: bool = Field(description="False when two identical calls disagreed (dropout left active, ...).")
    warnings: list[str] = Field(default_factory=list)


class Tolerance(Record):
    exact: bool = Field(False, description="Demand bit equality.")
    rtol: float | None = Field(None, description="Relative tolerance; None: the per-dtype default.")
    atol: float | None = Field(None, description="Absolute tolerance; None: the per-dtype default.")
    margin: float | None = Field(
        None,
        description="save --tolerance-from: the factor the measured drift was multiplied by to give rtol/atol.",
    )
    derived_from: str | None = Field(
        None, description="save --tolerance-from: the verify report (JSON) whose measured drift set rtol/atol."
    )


class Fingerprint(Record):
    """Everything about a host that can change a model's predictions."""

    schema_version: Literal[1] = FINGERPRINT_SCHEMA_VERSION
    envprint_version: str
    created_at: _dt.datetime = Field(description="UTC time of capture.")
    python: PythonInfo
    platform: PlatformInfo
    cpu: CpuInfo
    packages: PackagesInfo
    tensorflow: TensorflowInfo | None = Field(None, description="None when TensorFlow is not importable.")
    devices: DevicesInfo
    threads: ThreadsInfo
    seeds: SeedsInfo
    env: EnvInfo
    unavailable: Unavailable = Field(
        default_factory=dict, description="Whole sections that could not be read, with why."
    )
    # Written by `envprint save`; absent from a plain `envprint show`.
    model: ModelIdentity | None = None
    probes: ProbeRecipe | None = None
    probe_arrays: ArrayFile | None = None
    reference_arrays: ArrayFile | None = None
    self_check: SelfCheck | None = None
    tolerance: Tolerance | None = None


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
        return _default_passed(data, lambda d: bool(d.get("identical")))

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
    worst: list[WorstElement] = Field(default_factory=list, description="The first offending elements, worst first.")
    error_histogram: ErrorHistogram | None = Field(
        None, description="Distribution of the error (outputs that differ, float dtypes): drawn by the HTML report."
    )


class ModelDifference(Record):
    """One way the model verified is not the fingerprinted one (inputs and outputs as 'name shape dtype')."""

    field: Literal["inputs", "outputs", "parameter_count", "layer_classes"]
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


def _default_passed(data: object, rule) -> object:
    """Documents written before ``passed`` existed read with the value the command's exit code gave."""
    if isinstance(data, dict) and "passed" not in data:
        data = {**data, "passed": rule(data)}
    return data


def _exit_code_passed(data: dict) -> bool:
    return data.get("exit_code") == 0


class Report(Record):
    """What verify found. ``str(report)`` and ``report.to_text()`` give the text the CLI prints."""

    schema_version: Literal[2] = REPORT_SCHEMA_VERSION
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
    outputs_digest: str | None = Field(
        None,
        description="sha256 over the outputs obtained here (each output's name, dtype, shape and bytes, by name): "
        "hosts with the same digest gave bit-identical outputs. Used to group hosts (fleet, aggregate). "
        "None when the probes could not be fed.",
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_follows_the_verdict(cls, data: object) -> object:
        if isinstance(data, dict) and "passed" not in data and "verdict" in data:
            data = {**data, "passed": data["verdict"] != "mismatch"}
        return data

    @model_validator(mode="after")
    def _passed_agrees(self) -> Report:
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

    def raise_for_status(self) -> Report:
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
    kind: Literal["usage", "fingerprint", "model", "dependency", "internal", "interrupted"]
    message: str = Field(description="The one line also printed on stderr: what, where, what next.")


class ErrorDocument(Record):
    """What ``--json`` prints when a command could not run: never an empty file."""

    schema_version: Literal[1] = ERROR_SCHEMA_VERSION
    verdict: Literal["error"] = "error"
    passed: Literal[False] = False
    error: ErrorInfo


class SaveSummary(Record):
    """What ``envprint save --json`` prints: what was written where, its digests and the self-check."""

    schema_version: Literal[1] = SAVE_SCHEMA_VERSION
    sidecar: str = Field(description="The directory the record was written to.")
    written: dict[str, str] = Field(description="File name inside the sidecar -> sha256 of its bytes.")
    model: ModelIdentity
    probes: ProbeRecipe
    self_check: SelfCheck
    tolerance: Tolerance
    signed: bool = Field(description="Whether signature.json was written.")
    warnings: list[str] = Field(default_factory=list)
    passed: Literal[True] = Field(True, description="Always true: a save that could not finish is an error document.")


PERSISTED_MODELS: dict[str, tuple[type[BaseModel], int]] = {
    "fingerprint": (Fingerprint, FINGERPRINT_SCHEMA_VERSION),
    "diff": (FingerprintDiff, DIFF_SCHEMA_VERSION),
    "report": (Report, REPORT_SCHEMA_VERSION),
    "error": (ErrorDocument, ERROR_SCHEMA_VERSION),
    "save": (SaveSummary, SAVE_SCHEMA_VERSION),
}


def json_schemas() -> dict[str, dict]:
    """File name -> JSON Schema of every model envprint persists or emits."""
    out = {}
    for name, (model, version) in PERSISTED_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[f"{name}.v{version}.schema.json"] = schema
    return out


# --------------------------------------------------------------------------- sweep, fleet, aggregate
# Many models in this environment (sweep), one model on many hosts (fleet on Ray, aggregate of
# `verify --json` reports from any engine). Each host or model that could not be verified is
# data here too: its exit code and one line, never a missing row.

SWEEP_SCHEMA_VERSION = 1
FLEET_SCHEMA_VERSION = 1
AGGREGATE_SCHEMA_VERSION = 1

ItemVerdict = Literal["identical", "within_tolerance", "mismatch", "error"]


SweepDifference = Literal["weights_changed", "record_edited", "random_at_inference", "output"]


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


class SweepSummary(Record):
    """The last document of `envprint sweep --json` (after one line per model), and its table."""

    schema_version: Literal[1] = SWEEP_SCHEMA_VERSION
    kind: Literal["sweep_summary"] = "sweep_summary"
    engine: Literal["local", "ray"]
    jobs: int = Field(description="Worker processes (local pool) or CPUs in the Ray cluster.")
    total: int = Field(description="Models found.")
    done: int = Field(description="Models with a result (fewer than total when interrupted).")
    interrupted: bool = False
    by_verdict: dict[str, int] = Field(description="identical / within_tolerance / mismatch / error -> count.")
    by_cause: dict[str, int] = Field(description="Leading cause id -> count, over models whose outputs differ.")
    models: list[SweepItem] = Field(description="Worst first: mismatches, then errors, within tolerance, identical.")
    exit_code: int = Field(
        description="The command's exit code: the highest 'could not verify' code, else 1 on a mismatch, else 0."
    )
    passed: bool = Field(
        description="exit_code is 0: every model (host) passed. One field for CI, as in every document."
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_follows_the_exit_code(cls, data: object) -> object:
        return _default_passed(data, _exit_code_passed)


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


class ClassDiff(Record):
    """What differs between the representatives of two classes (a = class A, the largest)."""

    a: str
    b: str
    host_a: str
    host_b: str
    entries: list[DiffEntry] = Field(
        description="Numerics-relevant fingerprint fields that differ between the two hosts."
    )


class FleetReport(Record):
    """One model over many hosts: `envprint fleet` (Ray) and, per model, `envprint aggregate`."""

    schema_version: Literal[1] = FLEET_SCHEMA_VERSION
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
    passed: bool = Field(
        description="exit_code is 0: every model (host) passed. One field for CI, as in every document."
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_follows_the_exit_code(cls, data: object) -> object:
        return _default_passed(data, _exit_code_passed)


class AggregateReport(Record):
    """`envprint aggregate`: the reports read, grouped per model into equivalence classes."""

    schema_version: Literal[1] = AGGREGATE_SCHEMA_VERSION
    kind: Literal["aggregate_report"] = "aggregate_report"
    sources: int = Field(description="Reports read.")
    models: list[FleetReport]
    exit_code: int
    passed: bool = Field(
        description="exit_code is 0: every model (host) passed. One field for CI, as in every document."
    )

    @model_validator(mode="before")
    @classmethod
    def _passed_follows_the_exit_code(cls, data: object) -> object:
        return _default_passed(data, _exit_code_passed)


PERSISTED_MODELS.update(
    {
        "sweep-summary": (SweepSummary, SWEEP_SCHEMA_VERSION),
        "fleet-report": (FleetReport, FLEET_SCHEMA_VERSION),
        "aggregate-report": (AggregateReport, AGGREGATE_SCHEMA_VERSION),
    }
)
