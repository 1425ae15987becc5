"""The fingerprint: every fact about a host that can change a model's predictions, and what save records.

Schema version 1 (``FINGERPRINT_SCHEMA_VERSION``; minor 2 added ``variants``): Python, platform, CPU, packages, TensorFlow,
devices, threads, seeds and environment variables, plus the model's identity, probe recipe,
self-check and tolerance written by ``envprint save``.
"""

import datetime as _dt
from typing import Literal

from pydantic import Field

from envprint.models.base import (
    FINGERPRINT_SCHEMA_MINOR,
    FINGERPRINT_SCHEMA_VERSION,
    ArrayFile,
    Record,
    Unavailable,
    minor_field,
)
from envprint.models.layers import LayerTrace
from envprint.models.variants import Variants


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


class JaxInfo(Record):
    version: str | None = Field(None, description="jax's version; None when not installed.")
    jaxlib_version: str | None = Field(None, description="jaxlib's version (its XLA compiler and CPU kernels).")
    default_backend: str | None = Field(
        None, description="jax.default_backend() ('cpu', 'gpu', 'tpu'), read only when Keras runs on JAX."
    )
    x64: bool | None = Field(None, description="jax_enable_x64, read only when Keras runs on JAX.")
    unavailable: Unavailable = Field(default_factory=dict)


class OpenVinoInfo(Record):
    version: str | None = Field(None, description="openvino's version; None when not installed.")
    inference_precision: str | None = Field(
        None,
        description="The CPU plugin's INFERENCE_PRECISION_HINT as the runtime reports it ('f32', 'bf16', 'f16'): "
        "the precision OpenVINO computes a float32 model in on this CPU. Read only when Keras runs on OpenVINO.",
    )
    unavailable: Unavailable = Field(default_factory=dict)


class TorchInfo(Record):
    version: str | None = Field(None, description="torch's version; None when not installed.")
    intra_op_threads: int | None = Field(None, description="torch.get_num_threads(), read only if torch is imported.")
    inter_op_threads: int | None = Field(None, description="torch.get_num_interop_threads(), likewise.")
    unavailable: Unavailable = Field(default_factory=dict)


class KerasInfo(Record):
    """The Keras 3 backend that runs the model, and its stack (the fingerprint's ``keras``)."""

    backend: str | None = Field(
        None, description="The Keras backend: 'tensorflow', 'jax', 'openvino', 'torch' or 'numpy'."
    )
    backend_source: Literal["keras.config", "KERAS_BACKEND", "keras.json", "default"] | None = Field(
        None, description="What chose it: an imported Keras, the KERAS_BACKEND variable, keras.json, or the default."
    )
    jax: JaxInfo | None = Field(None, description="JAX's stack, where jax is installed.")
    openvino: OpenVinoInfo | None = Field(None, description="OpenVINO's stack, where openvino is installed.")
    torch: TorchInfo | None = Field(None, description="PyTorch's stack, where torch is installed.")
    unavailable: Unavailable = Field(default_factory=dict)


class TensorSpec(Record):
    name: str
    shape: list[int | None] = Field(description="None for a dynamic dimension (the batch, usually).")
    dtype: str = Field(description="NumPy dtype name, e.g. 'float32'.")


ComputeDtype = Literal["float64", "float32", "tf32", "float16", "bfloat16", "int8", "int16"]


class ComputePrecision(Record):
    """The precision a model computes in, read from the loaded model (and, for TF32, the runtime).

    One shape for every backend: a Keras dtype policy, a quantized TFLite's tensor types, TF32 on
    a GPU, an OpenVINO inference precision hint each fill ``compute`` and name their ``source``.
    """

    compute: ComputeDtype = Field(
        description="The lowest precision any layer or kernel computes in: it bounds how closely two runs can agree."
    )
    source: Literal["keras_layer_dtypes", "tflite_tensor_types", "tensorflow_tf32", "openvino_inference_precision"] = (
        Field(description="Where the fact was read.")
    )
    layers: dict[str, int] = Field(
        default_factory=dict,
        description="Layers (Keras) or tensors (TFLite) by compute dtype, the evidence for ``compute``.",
    )
    policy: str | None = Field(None, description="The model's Keras dtype policy, e.g. 'mixed_bfloat16'.")
    unavailable: Unavailable = Field(
        default_factory=dict, description="What was inferred rather than read, or could not be read, with why."
    )


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
    compute_precision: ComputePrecision | None = Field(
        None, description="The precision the model computes in (None: not read, see unavailable; envprint < 0.3)."
    )
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
        None,
        description="save --tolerance-from: the verify report (JSON) whose measured drift set rtol/atol; "
        "'variants' for save --tolerance-from-variants.",
    )
    precision: ComputeDtype | None = Field(
        None,
        description="The compute precision whose default tolerance applies where rtol/atol are None, when it is "
        "looser than the output dtype's (save: the model's own). None: the output dtype's default alone.",
    )


class Fingerprint(Record):
    """Everything about a host that can change a model's predictions."""

    schema_version: Literal[1] = FINGERPRINT_SCHEMA_VERSION
    schema_minor: int = minor_field(FINGERPRINT_SCHEMA_MINOR)
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
    keras: KerasInfo | None = Field(
        None, description="The Keras backend and its stack (schema minor 2; None in older records)."
    )
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
    variants: Variants | None = Field(
        None, description="save --variants: the probes predicted again under other settings on the saving machine."
    )
    layer_trace: LayerTrace | None = Field(None, description="save --layers: each layer's output, bounded per layer.")
