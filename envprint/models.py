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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FINGERPRINT_SCHEMA_VERSION = 1
DIFF_SCHEMA_VERSION = 1

# A leaf value as it appears in a diff: JSON scalars, or a list of strings (CPU flags, ...).
Scalar = str | int | float | bool | None
Leaf = Scalar | list[str]

Unavailable = dict[str, str]


class Record(BaseModel):
    """Base of every persisted model: unknown keys are an error, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class FingerprintDiff(Record):
    schema_version: Literal[1] = DIFF_SCHEMA_VERSION
    a: str = Field(description="Label of the first fingerprint (its path, or 'current host').")
    b: str
    identical: bool
    entries: list[DiffEntry] = Field(description="Numerics-relevant entries first, then by path.")


PERSISTED_MODELS: dict[str, tuple[type[BaseModel], int]] = {
    "fingerprint": (Fingerprint, FINGERPRINT_SCHEMA_VERSION),
    "diff": (FingerprintDiff, DIFF_SCHEMA_VERSION),
}


def json_schemas() -> dict[str, dict]:
    """File name -> JSON Schema of every model envprint persists or emits."""
    out = {}
    for name, (model, version) in PERSISTED_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[f"{name}.v{version}.schema.json"] = schema
    return out
