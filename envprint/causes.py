"""The cause registry: every cause id, the fingerprint paths that are its differences, and what it does.

Owns: the data that says, per cause id, which diff paths belong to it (``TOPICS``), its numeric
signature and fit (``CATALOGUE``), and what a difference predicts before verify (``PREDICTIONS``).
Pure data: must not import TensorFlow, Keras or NumPy, nor any envprint module but ``models``.
``diff`` takes its topics from here, ``explain`` scores these entries, ``restore`` builds steps.
"""

from __future__ import annotations

from dataclasses import dataclass

# Path pattern -> (topic, can change numerics). First match wins; the order of first appearance
# of each topic is also the order in which differences are listed (most decisive first).
TOPICS: tuple[tuple[str, str, bool], ...] = (
    ("tensorflow.dtype_policy", "dtype_policy", True),
    ("tensorflow.onednn*", "onednn", True),
    ("env.variables.TF_ENABLE_ONEDNN_OPTS", "onednn", True),
    ("tensorflow.op_determinism", "determinism_settings", True),
    ("tensorflow.tensor_float_32", "determinism_settings", True),
    ("tensorflow.jit", "determinism_settings", True),
    ("tensorflow.grappler*", "determinism_settings", True),
    ("env.variables.NVIDIA_TF32_OVERRIDE", "determinism_settings", True),
    ("env.variables.TF_DETERMINISTIC_OPS", "determinism_settings", True),
    ("env.variables.TF_CUDNN_DETERMINISTIC", "determinism_settings", True),
    ("env.variables.*XLA_FLAGS", "determinism_settings", True),
    ("tensorflow", "tensorflow_version", True),
    ("tensorflow.version", "tensorflow_version", True),
    ("tensorflow.git_version", "tensorflow_version", True),
    ("tensorflow.compiler_version", "tensorflow_version", True),
    ("packages.tensorflow_distribution", "tensorflow_version", True),
    ("packages.key.tensorflow*", "tensorflow_version", True),
    ("packages.key.tf-nightly*", "tensorflow_version", True),
    ("packages.key.intel-tensorflow", "tensorflow_version", True),
    ("tensorflow.keras_*", "keras_version", True),
    ("packages.key.keras", "keras_version", True),
    ("packages.key.tf-keras", "keras_version", True),
    ("packages.key.numpy", "numpy_version", True),
    ("packages.key.*", "other_package", True),
    ("tensorflow.build*", "cuda_stack", True),
    ("devices.driver_version", "cuda_stack", True),
    ("devices.cuda_driver_version", "cuda_stack", True),
    # Mapped libraries by family: the CUDA stack; oneDNN/MKL and their OpenMP; NumPy's BLAS;
    # TensorFlow's own framework library (its version is TensorFlow's).
    ("devices.loaded_libraries.dnnl", "onednn", True),
    ("devices.loaded_libraries.mkl", "onednn", True),
    ("devices.loaded_libraries.iomp5", "onednn", True),
    ("devices.loaded_libraries.gomp", "threads", True),
    ("devices.loaded_libraries.omp", "threads", True),
    ("devices.loaded_libraries.openblas", "numpy_version", True),
    ("devices.loaded_libraries.tensorflow_framework", "tensorflow_version", True),
    ("devices.loaded_libraries*", "cuda_stack", True),
    ("devices.nvidia_wheels*", "cuda_stack", True),
    ("env.variables.LD_LIBRARY_PATH", "cuda_stack", True),
    ("devices*", "device", True),
    ("env.variables.CUDA_VISIBLE_DEVICES", "device", True),
    ("cpu.model", "cpu_isa", True),
    ("cpu.vendor", "cpu_isa", True),
    ("cpu.flags", "cpu_isa", True),
    ("platform.machine", "cpu_isa", True),
    ("threads*", "threads", True),
    ("cpu.logical_cores", "threads", True),
    ("cpu.physical_cores", "threads", True),
    # A declared seed decides training, and inference only through random ops (which the
    # stochastic checks catch): listed, but not among the differences that move the numbers.
    ("seeds*", "seed", False),
    ("python*", "python_version", True),
    ("env*", "environment", True),
    ("packages.installed.*", "other_package", False),
    ("model.weights_digest*", "model_changed", True),
    ("model.files*", "model_file_rewritten", True),
    ("model*", "model_changed", True),
    ("probes*", "probes_changed", True),
    ("probe_arrays*", "probes_changed", True),
    ("reference_arrays*", "probes_changed", True),
    ("self_check*", "stochastic_inference", True),
    ("*", "context", False),
)

# The entry that decides a version cause's grade when both sides have it: a distribution swap
# (tensorflow -> tensorflow-cpu) leaves packages.key.tensorflow on one side only, not a major change.
# fmt: off
VERSION_PATH = {"tensorflow_version": "tensorflow.version", "keras_version": "tensorflow.keras_version",
                "python_version": "python.version"}
# fmt: on


@dataclass(frozen=True)
class Cause:
    title: str
    signature: str  # what it typically does: semantic, reduction_order, precision, stochastic or identity
    fit: tuple[float, ...]  # per FIT_KINDS: how well it explains that observation; () for identity causes
    graded: bool  # a version: fit is scaled by GRADE
    remedy: tuple[str, ...]  # parts joined by '; ', {names} filled from VALUES, empty parts dropped


# Dict order is the tie-break order. fit columns: reduction_order, precision, semantic, dtype, stochastic.
# fmt: off
CATALOGUE: dict[str, Cause] = {
    "model_changed": Cause("the model is not the one fingerprinted", "semantic", (), False, (
        "this is not the model that was fingerprinted: deploy the saved model file ({model_digest}) "
        "or re-run envprint save on the new one",)),
    "model_file_rewritten": Cause("model files rewritten, weights identical", "identity", (), False, (
        "no action needed: the weights are the saved ones",)),
    "probes_changed": Cause("probe or reference arrays edited after save", "identity", (), False, (
        "restore {sidecar_files} from the saved sidecar (fingerprint.json holds their sha256), "
        "or re-run envprint save on the training host",)),
    "stochastic_inference": Cause("a random layer is active at inference", "stochastic", (), False, (
        "call the model with training=False (model.predict(x) or model(x, training=False))",
        "remove any call with training=True on {stochastic_layers}", "or seed random ops: {seed_call}")),
    "tensorflow_version": Cause("TensorFlow version", "reduction_order", (0.8, 0.6, 0.6, 0.5, 0.1), True, (
        "{tf_install}",)),
    "keras_version": Cause("Keras version", "semantic", (0.4, 0.5, 0.8, 0.7, 0.1), True, ("{pins}", "{settings}")),
    "numpy_version": Cause("NumPy version", "semantic", (0.3, 0.3, 0.5, 0.4, 0.1), True, ("{pins}",)),
    "python_version": Cause("Python version", "reduction_order", (0.15, 0.1, 0.2, 0.1, 0.05), True, (
        "run under Python {python_version} like the saved host (e.g. uv venv --python {python_version})",)),
    "other_package": Cause("another package", "reduction_order", (0.15, 0.15, 0.2, 0.1, 0.05), True, ("{pins}",)),
    "cuda_stack": Cause("CUDA stack", "reduction_order", (0.75, 0.4, 0.2, 0.05, 0.1), False, (
        "{cuda}", "{cuda_pins}")),
    "device": Cause("device", "reduction_order", (0.8, 0.7, 0.2, 0.1, 0.1), False, ("{device}",)),
    "cpu_isa": Cause("CPU model or instruction set", "reduction_order", (0.8, 0.3, 0.1, 0.05, 0.05), False, (
        "run on a CPU like the saved host ({cpu_model}; flags {cpu_flags})",
        "or accept the drift: verify --rtol, or re-run envprint save on this host")),
    "threads": Cause("thread counts", "reduction_order", (0.5, 0.15, 0.05, 0.0, 0.1), False, (
        "export TF_NUM_INTRAOP_THREADS={intra} TF_NUM_INTEROP_THREADS={inter}, or call "
        "tf.config.threading.set_intra_op_parallelism_threads({intra}) and "
        "set_inter_op_parallelism_threads({inter}) before the first op",)),
    "onednn": Cause("oneDNN setting", "reduction_order", (0.9, 0.3, 0.1, 0.05, 0.05), False, (
        "export TF_ENABLE_ONEDNN_OPTS={onednn_flag} before TensorFlow is imported "
        "(the saved host ran with oneDNN {onednn_state})",)),
    "determinism_settings": Cause("determinism or XLA settings", "reduction_order", (0.85, 0.3, 0.1, 0.05, 0.1),
                                  False, ("{settings}",)),
    "dtype_policy": Cause("Keras dtype policy", "precision", (0.2, 0.95, 0.85, 0.95, 0.05), False, (
        "{dtype_policy} before loading the model",)),
    "seed": Cause("declared seed", "stochastic", (0.05, 0.05, 0.05, 0.05, 0.6), False, ("{seed_call}", "{settings}")),
    "environment": Cause("environment variable", "reduction_order", (0.2, 0.2, 0.2, 0.1, 0.1), False, ("{settings}",)),
    "unknown": Cause("no recorded difference explains it", "semantic", (), False, (
        "run envprint verify --investigate",)),
}
# Per-entry fit overrides: TF32 is a precision change, not a reduction-order one.
PATH_FIT = (("tensorflow.tensor_float_32|env.variables.NVIDIA_TF32_OVERRIDE", (0.4, 0.9, 0.2, 0.05, 0.1)),)
# fmt: on

# (cause, path pattern, WHEN key, score, expectation with {a} {b} {path} {change}). First match per entry.
# Measured: 2-core CPU, TF 2.21, Keras 3, 32 probes; MLP 64-256-256-10, a small CNN, MobileNetV2 96x96.
# fmt: off
PREDICTIONS: tuple[tuple[str, str, str, float, str], ...] = (
    ("dtype_policy", "*", "any", 0.95, "saved with dtype policy {a}, this host uses {b}: expect a large relative change "
     "and possibly top-1 flips (measured float32 -> mixed_bfloat16: max rel 2.8e-01 and 97% top-1 on an MLP)"),
    ("onednn", "tensorflow.onednn.enabled", "any", 0.7, "saved with oneDNN {a_onoff}, this host has it {b_onoff}: "
     "expect float noise of up to a few hundred ULP (measured: 720 ULP on MobileNetV2, 0 on an MLP and a small CNN)"),
    ("onednn", "*", "any", 0.5, "{path} {a} -> {b}: oneDNN kernels may switch: expect ULP-level noise"),
    ("determinism_settings", "tensorflow.tensor_float_32", "gpu_off_to_on", 0.85,
     "TF32 off -> on on a GPU: expect relative error near 1e-3 in matmuls and convolutions"),
    ("determinism_settings", "tensorflow.tensor_float_32|*TF32*", "gpu", 0.6, "{path} {a} -> {b} on a GPU: TF32 rounding differs "
     "between the reference and this host: expect relative error near 1e-3"),
    ("determinism_settings", "tensorflow.tensor_float_32|*TF32*", "any", 0.05, "{path} {a} -> {b}, but neither host has a GPU: "
     "no effect expected"),
    ("determinism_settings", "tensorflow.jit", "any", 0.7, "XLA {a} -> {b}: fusion reorders float operations: expect "
     "ULP-level noise (measured with jit_compile: 805 ULP on an MLP, 274 on MobileNetV2)"),
    ("determinism_settings", "*XLA_FLAGS", "any", 0.5, "{path} {a} -> {b}: XLA may fuse differently: expect ULP noise"),
    ("determinism_settings", "tensorflow.op_determinism", "any", 0.15, "op determinism {a} -> {b}: no change measured "
     "on CPU (0 ULP on three models); on a GPU, reductions and convolutions may pick other kernels"),
    ("determinism_settings", "*", "any", 0.3, "{path} {a} -> {b}: graph rewrites can reorder float operations"),
    ("keras_version", "*", "keras3_to_2", 1.0, "Keras 3 -> Keras 2 ({a} -> {b}): a .keras file cannot load here; "
     "use the SavedModel or .h5"),
    ("keras_version", "*", "keras2_to_3", 0.9, "Keras 2 -> Keras 3 ({a} -> {b}): keras.models.load_model cannot read a "
     "SavedModel here (use keras.layers.TFSMLayer), and layers were reimplemented: expect ULP noise or more"),
    ("keras_version", "tensorflow.keras_flavor", "any", 0.9, "tf.keras is {a} at save and {b} here: another Keras "
     "loads the model: expect load errors or changed numerics"),
    ("numpy_version", "*", "numpy1_to_2", 0.4, "NumPy {a} -> {b}: NumPy 2 changed scalar type promotion (NEP 50): "
     "preprocessing in NumPy may change dtype and rounding"),
    ("threads", "*", "any", 0.2, "thread counts changed ({path}: {a} -> {b}): usually bit-identical (measured 2 -> 1: "
     "0 ULP on an MLP, a small CNN and MobileNetV2), though some reductions depend on the thread count"),
    ("device", "*", "cpu_to_gpu", 0.9, "saved on CPU, this host runs on a GPU: expect ULP noise, and relative error "
     "near 1e-3 where TF32 is on (the default on Ampere and newer)"),
    ("device", "*", "gpu_to_cpu", 0.9, "saved on a GPU, this host has none: expect ULP noise, and relative error "
     "near 1e-3 if the reference used TF32"),
    ("device", "*", "any", 0.6, "{path} {a} -> {b}: other devices run other kernels: expect ULP-level noise"),
    ("cuda_stack", "*", "any", 0.5, "CUDA stack differs ({path}: {a} -> {b}): cuDNN and cuBLAS may choose other "
     "algorithms: expect ULP-level noise"),
    ("cpu_isa", "*", "any", 0.5, "CPU differs ({path}: {moved}): oneDNN and Eigen dispatch on the instruction set: "
     "expect ULP-level noise"),
    ("seed", "*", "random_layers", 0.5, "seed {a} -> {b} matters: the model has random layers"),
    ("seed", "*", "any", 0.05, "seed {a} -> {b}: the probes are stored, so a seed only matters to random layers"),
    ("environment", "*", "any", 0.2, "{path} {a} -> {b}: a variable that can change numerics or device choice"),
    ("python_version", "*", "any", 0.1, "Python {a} -> {b} ({change}): rarely changes numerics by itself"),
    ("other_package", "*", "any", 0.2, "{path} {a} -> {b} ({change}): not a framework package; unlikely to matter"),
)
# fmt: on
# A version difference no row matched: score VERSION_SCORE x GRADE.
VERSION_PREDICTION = (
    "{path} {a} -> {b} ({change}): expect identical outputs or ULP-level noise, more for a major change"
)
VERSION_SCORE = {"tensorflow_version": 0.9, "keras_version": 0.7, "numpy_version": 0.4}
