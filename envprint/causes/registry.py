"""The cause registry: one entry per cause id, holding everything envprint knows about that cause.

Owns: ``REGISTRY`` (cause id -> ``Cause``): the fingerprint paths that are its differences (the
diff topics come from here), its numeric signature and fit to each observed signature, the paths
that hold its effective state, its remedy template, its preflight rules, and its restorer (or why
it has none). Dict order is the order differences are listed in and the tie-break order of a
ranking: identity evidence first, then the most decisive settings.

Pure data: must not import TensorFlow, Keras or NumPy, nor any envprint module. Names in the data
point into the modules that act on it: remedy ``{names}`` into ``explain.VALUES``, preflight
``when`` keys into ``explain.WHEN``, restorer keys into ``restore.BUILDERS``; a test checks each.
Adding a cause is one entry here (plus its tests); see ARCHITECTURE.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

# Observed signatures a fit row scores, in this column order.
FIT_KINDS = ("reduction_order", "precision", "semantic", "dtype", "stochastic")


@dataclass(frozen=True)
class Rule:
    """A preflight prediction: for a difference on ``paths`` when ``when`` holds, ``text`` with this score."""

    paths: str  # fnmatch pattern, alternatives with '|'
    when: str  # a key of explain.WHEN
    score: float  # how likely the outputs change (x the version grade when ``graded``)
    text: str  # {a} {b} {path} {change} {moved} {a_onoff} {b_onoff}
    graded: bool = False
    # What the change would be: 'noise' (ULP-level, within the default tolerance: never fails
    # preflight), 'precision' (beyond tolerance, top-1 mostly agrees), 'semantic' (changed results
    # or a load failure). Only a change beyond tolerance fails verify --preflight.
    predicts: str = "noise"


@dataclass(frozen=True)
class Cannot:
    """No process can restore this cause here: why, and the remedy to give instead."""

    why: str
    remedy: str  # 'pins' (env-export + pip), 'python' (another interpreter), 'explanation' (the explained remedy)


@dataclass(frozen=True)
class Cause:
    title: str
    signature: str  # what it typically does: semantic, reduction_order, precision, stochastic or identity
    fit: tuple[float, ...] | str  # per FIT_KINDS; a str says why the diff does not score it
    remedy: tuple[str, ...]  # parts joined by '; ', {names} filled from explain.VALUES, empty parts dropped
    preflight: tuple[Rule, ...] | str  # first match per entry; a str says why it predicts nothing
    restorer: str | Cannot  # a key of restore.BUILDERS, a Cannot, or why it is not restored at all
    paths: tuple[str, ...] = ()  # fingerprint paths (fnmatch) whose differences are this cause
    # Paths that hold the cause's effective state: known and equal on both sides, the cause's other
    # differences (a variable, a library) changed nothing here and are listed only.
    effective: tuple[str, ...] = ()
    # Paths that only ask for the effective state (a variable, a default): when the effective state
    # is recorded on both sides, it alone is counted; these are listed only.
    follows: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()  # paths that are this cause's differences but cannot change numerics
    graded: bool = False  # a version: fit is scaled by the grade of the change (major, minor, patch)
    decisive: str | None = None  # the path that grades a version when both sides have it
    path_fit: tuple[tuple[str, tuple[float, ...]], ...] = ()  # fit overrides for some paths


NOT_FROM_DIFF = "identity evidence (explain.IDENTITY_RULES), not a fingerprint difference"
NOT_A_SETTING = "not a setting of the host: nothing to restore"
SEED_NOT_HOST = "a declared seed is how the reference was produced, not a fact of the host; verify applies it"
VERSION_TEXT = "{path} {a} -> {b} ({change}): expect identical outputs or ULP-level noise"
VERSION_MAJOR = "{path} {a} -> {b} ({change}): a major change may change results beyond tolerance or fail to load"

# Measured: 2-core CPU, TF 2.21, Keras 3, 32 probes; MLP 64-256-256-10, a small CNN, MobileNetV2 96x96.
# fit columns: reduction_order, precision, semantic, dtype, stochastic.
# fmt: off
REGISTRY: dict[str, Cause] = {
    "model_changed": Cause(
        "the model is not the one fingerprinted", "semantic", NOT_FROM_DIFF,
        ("this is not the model that was fingerprinted: deploy the saved model file ({model_digest}) "
         "or re-run envprint save on the new one",),
        "the weights are checked when the model loads, not predicted from fingerprints", NOT_A_SETTING,
        paths=("model.weights_digest*", "model*")),
    "model_file_rewritten": Cause(
        "model files rewritten, weights identical", "identity", NOT_FROM_DIFF,
        ("no action needed: the weights are the saved ones",),
        "the files are checked when the model loads, not predicted from fingerprints", NOT_A_SETTING,
        paths=("model.files*",)),
    "model_other_format": Cause(
        "the model in another format", "identity", NOT_FROM_DIFF,
        ("none needed when the outputs pass: weights cannot be compared across formats, so the outputs are the "
         "check; for a weights check too, run envprint save on this format",),
        "the format is checked when the model loads, not predicted from fingerprints", NOT_A_SETTING),
    "probes_changed": Cause(
        "probe or reference arrays edited after save", "identity", NOT_FROM_DIFF,
        ("restore {sidecar_files} from the saved sidecar (fingerprint.json holds their sha256), "
         "or re-run envprint save on the training host",),
        "the sidecar's digests are checked by verify, not predicted from fingerprints", NOT_A_SETTING,
        paths=("probes*", "probe_arrays*", "reference_arrays*")),
    "stochastic_inference": Cause(
        "a random layer is active at inference", "stochastic", NOT_FROM_DIFF,
        ("call the model with training=False (model.predict(x) or model(x, training=False))",
         "remove any call with training=True on {stochastic_layers}", "or seed random ops: {seed_call}"),
        "predicted from the saved self-check (explain.preflight), not from a difference", NOT_A_SETTING,
        paths=("self_check*",)),
    "dtype_policy": Cause(
        "Keras dtype policy", "precision", (0.2, 0.95, 0.85, 0.95, 0.05),
        ("{dtype_policy} before loading the model",),
        (Rule("*", "any", 0.95, "saved with dtype policy {a}, this host uses {b}: expect a large relative change "
              "and possibly top-1 flips (measured float32 -> mixed_bfloat16: max rel 2.8e-01 and 97% top-1 on an MLP)",
              predicts="precision"),),
        "dtype_policy",
        paths=("tensorflow.dtype_policy",)),
    "onednn": Cause(
        "oneDNN setting", "reduction_order", (0.9, 0.3, 0.1, 0.05, 0.05),
        ("{onednn}",),
        (Rule("tensorflow.onednn.enabled", "any", 0.7, "saved with oneDNN {a_onoff}, this host has it {b_onoff}: "
              "expect float noise of up to a few hundred ULP (measured: 720 ULP on MobileNetV2, 0 on an MLP and a "
              "small CNN)"),
         Rule("*", "any", 0.5, "{path} {a} -> {b}: oneDNN kernels may switch: expect ULP-level noise")),
        "onednn",
        # oneDNN/MKL and their OpenMP, as mapped into the process.
        paths=("tensorflow.onednn*", "env.variables.TF_ENABLE_ONEDNN_OPTS", "devices.loaded_libraries.dnnl",
               "devices.loaded_libraries.mkl", "devices.loaded_libraries.iomp5"),
        effective=("tensorflow.onednn.enabled",),
        follows=("tensorflow.onednn.env", "tensorflow.onednn.default", "env.variables.TF_ENABLE_ONEDNN_OPTS")),
    "determinism_settings": Cause(
        "determinism or XLA settings", "reduction_order", (0.85, 0.3, 0.1, 0.05, 0.1),
        ("{settings}",),
        (Rule("tensorflow.tensor_float_32", "gpu_off_to_on", 0.85,
              "TF32 off -> on on a GPU: expect relative error near 1e-3 in matmuls and convolutions",
              predicts="precision"),
         Rule("tensorflow.tensor_float_32|*TF32*", "gpu", 0.6, "{path} {a} -> {b} on a GPU: TF32 rounding differs "
              "between the reference and this host: expect relative error near 1e-3", predicts="precision"),
         Rule("tensorflow.tensor_float_32|*TF32*", "any", 0.05, "{path} {a} -> {b}, but no GPU is recorded on "
              "either host: no effect expected"),
         Rule("tensorflow.jit", "any", 0.7, "XLA {a} -> {b}: fusion reorders float operations: expect "
              "ULP-level noise (measured with jit_compile: 805 ULP on an MLP, 274 on MobileNetV2)"),
         Rule("*XLA_FLAGS", "any", 0.5, "{path} {a} -> {b}: XLA may fuse differently: expect ULP noise"),
         Rule("tensorflow.op_determinism", "any", 0.15, "op determinism {a} -> {b}: no change measured "
              "on CPU (0 ULP on three models); on a GPU, reductions and convolutions may pick other kernels"),
         Rule("*", "any", 0.3, "{path} {a} -> {b}: graph rewrites can reorder float operations")),
        "determinism",
        paths=("tensorflow.op_determinism", "tensorflow.tensor_float_32", "tensorflow.jit", "tensorflow.grappler*",
               "env.variables.NVIDIA_TF32_OVERRIDE", "env.variables.TF_DETERMINISTIC_OPS",
               "env.variables.TF_CUDNN_DETERMINISTIC", "env.variables.*XLA_FLAGS"),
        # TF32 is a precision change, not a reduction-order one.
        path_fit=(("tensorflow.tensor_float_32|env.variables.NVIDIA_TF32_OVERRIDE", (0.4, 0.9, 0.2, 0.05, 0.1)),)),
    "tensorflow_version": Cause(
        "TensorFlow version", "reduction_order", (0.8, 0.6, 0.6, 0.5, 0.1),
        ("{tf_install}",),
        (Rule("*", "major", 0.9, VERSION_MAJOR, graded=True, predicts="semantic"),
         Rule("*", "any", 0.9, VERSION_TEXT, graded=True)),
        Cannot("another TensorFlow is installed here; a process cannot swap it", "pins"),
        # TensorFlow's own framework library: its version is TensorFlow's.
        paths=("tensorflow", "tensorflow.version", "tensorflow.git_version", "tensorflow.compiler_version",
               "packages.tensorflow_distribution", "packages.key.tensorflow*", "packages.key.tf-nightly*",
               "packages.key.intel-tensorflow", "devices.loaded_libraries.tensorflow_framework"),
        graded=True, decisive="tensorflow.version"),
    "keras_version": Cause(
        "Keras version", "semantic", (0.4, 0.5, 0.8, 0.7, 0.1),
        ("{keras}",),
        # What loads depends on the record's format: TensorFlow, not Keras, loads a SavedModel.
        (Rule("tensorflow.keras_version", "keras_newer_file", 0.9, "Keras {a} -> {b}: a {format} file saved by Keras "
              "{a}, newer than this host's Keras {b}, which may refuse its config (measured: Keras 3.12 cannot read "
              "a .keras file from Keras 3.15): expect a load failure", predicts="semantic"),
         Rule("*", "keras3_to_2_file", 1.0, "Keras 3 -> Keras 2 ({a} -> {b}): a Keras 3 {format} file cannot load "
              "here; save a SavedModel (model.export) and verify that", predicts="semantic"),
         Rule("*", "keras_major_savedmodel", 0.1, "Keras {a} -> {b}: TensorFlow loads a SavedModel without Keras: "
              "no effect of Keras itself expected"),
         Rule("*", "keras3_to_2", 0.9, "Keras 3 -> Keras 2 ({a} -> {b}): a Keras 3 .keras or .h5 file cannot load "
              "here; a SavedModel can", predicts="semantic"),
         Rule("*", "keras2_to_3", 0.9, "Keras 2 -> Keras 3 ({a} -> {b}): layers were reimplemented and Keras 2 "
              "files load through a compatibility path: expect ULP noise or more, or a load error",
              predicts="semantic"),
         Rule("tensorflow.keras_flavor", "any", 0.9, "tf.keras is {a} at save and {b} here: another Keras "
              "loads the model: expect load errors or changed numerics", predicts="semantic"),
         Rule("*", "major", 0.7, VERSION_MAJOR, graded=True, predicts="semantic"),
         Rule("*", "any", 0.7, VERSION_TEXT, graded=True)),
        Cannot("another Keras is installed here; a process cannot swap it", "pins"),
        paths=("tensorflow.keras_*", "packages.key.keras", "packages.key.tf-keras"),
        # Which Keras runs is the fact; an installed Keras package nothing imports (tf-keras beside
        # Keras 3, keras beside tf-keras) changes nothing and is listed only.
        effective=("tensorflow.keras_flavor", "tensorflow.keras_version", "tensorflow.keras_backend"),
        follows=("packages.key.keras", "packages.key.tf-keras"),
        graded=True, decisive="tensorflow.keras_version"),
    "numpy_version": Cause(
        "NumPy version", "semantic", (0.3, 0.3, 0.5, 0.4, 0.1),
        ("{pins}",),
        (Rule("*", "numpy1_to_2", 0.4, "NumPy {a} -> {b}: NumPy 2 changed scalar type promotion (NEP 50): "
              "preprocessing in NumPy may change dtype and rounding", predicts="semantic"),
         Rule("*", "major", 0.4, VERSION_MAJOR, graded=True, predicts="semantic"),
         Rule("*", "any", 0.4, VERSION_TEXT, graded=True)),
        Cannot("another NumPy is installed here; a process cannot swap it", "pins"),
        paths=("packages.key.numpy",),
        # NumPy's own BLAS (mapped, and as threadpoolctl reports it with its threads): TensorFlow's
        # kernels never call it (Eigen and oneDNN do the model's math), so it is listed only.
        listed=("devices.loaded_libraries.openblas", "threads.blas"),
        graded=True, decisive="packages.key.numpy"),
    "other_package": Cause(
        "another package", "reduction_order", (0.15, 0.15, 0.2, 0.1, 0.05),
        ("{pins}",),
        (Rule("*", "any", 0.2, "{path} {a} -> {b} ({change}): not a framework package; unlikely to matter",
              graded=True),),
        Cannot("other package versions are installed here", "pins"),
        paths=("packages.key.*",), listed=("packages.installed.*",),
        graded=True),
    "cuda_stack": Cause(
        "CUDA stack", "reduction_order", (0.75, 0.4, 0.2, 0.05, 0.1),
        ("{cuda}", "{cuda_pins}"),
        (Rule("*", "any", 0.5, "CUDA stack differs ({path}: {a} -> {b}): cuDNN and cuBLAS may choose other "
              "algorithms: expect ULP-level noise"),),
        Cannot("the CUDA stack is part of the host", "explanation"),
        # Every other mapped library family (cudart, cublas, cudnn, nccl, ...).
        paths=("tensorflow.build*", "devices.driver_version", "devices.cuda_driver_version",
               "devices.loaded_libraries*", "devices.nvidia_wheels*", "env.variables.LD_LIBRARY_PATH")),
    "device": Cause(
        "device", "reduction_order", (0.8, 0.7, 0.2, 0.1, 0.1),
        ("{device}",),
        (Rule("*", "cpu_to_gpu", 0.9, "saved on CPU, this host runs on a GPU: expect ULP noise, and relative error "
              "near 1e-3 where TF32 is on (the default on Ampere and newer)", predicts="precision"),
         Rule("*", "gpu_to_cpu", 0.9, "saved on a GPU, this host has none: expect ULP noise, and relative error "
              "near 1e-3 if the reference used TF32", predicts="precision"),
         Rule("*", "any", 0.6, "{path} {a} -> {b}: other devices run other kernels: expect ULP-level noise")),
        "device",
        paths=("devices*", "env.variables.CUDA_VISIBLE_DEVICES")),
    "cpu_isa": Cause(
        "CPU model or instruction set", "reduction_order", (0.8, 0.3, 0.1, 0.05, 0.05),
        ("run on a CPU like the saved host ({cpu_model}; flags {cpu_flags})",
         "or accept the drift: verify --rtol, or re-run envprint save on this host"),
        (Rule("*", "any", 0.5, "CPU differs ({path}: {moved}): oneDNN and Eigen dispatch on the instruction set: "
              "expect ULP-level noise"),),
        Cannot("the CPU is part of the host", "explanation"),
        paths=("cpu.model", "cpu.vendor", "cpu.flags", "platform.machine")),
    "threads": Cause(
        "thread counts", "reduction_order", (0.5, 0.15, 0.05, 0.0, 0.1),
        ("{threads}",),
        (Rule("*", "any", 0.2, "thread counts changed ({path}: {a} -> {b}): usually bit-identical (measured 2 -> 1: "
              "0 ULP on an MLP, a small CNN and MobileNetV2), though some reductions depend on the thread count"),),
        "threads",
        # OpenMP runtimes, as mapped into the process.
        paths=("threads*", "cpu.logical_cores", "cpu.physical_cores", "devices.loaded_libraries.gomp",
               "devices.loaded_libraries.omp"),
        effective=("threads.tf_intra_op_effective", "threads.tf_inter_op_effective"),
        follows=("threads.variables.TF_NUM_INTRAOP_THREADS", "threads.variables.TF_NUM_INTEROP_THREADS")),
    # A declared seed describes how the reference was produced, not the host: diff compares it only
    # between two model records, and verify applies the record's seed itself before it predicts
    # a model that may be random at inference. Listed, never a cause.
    "seed": Cause(
        "declared seed", "stochastic", SEED_NOT_HOST,
        ("{seed_call}",),
        SEED_NOT_HOST, SEED_NOT_HOST,
        # PYTHONHASHSEED orders sets and dicts of str in Python code; no TensorFlow kernel reads it.
        listed=("seeds*", "env.variables.PYTHONHASHSEED")),
    "python_version": Cause(
        "Python version", "reduction_order", (0.15, 0.1, 0.2, 0.1, 0.05),
        ("run under Python {python_version} like the saved host (e.g. uv venv --python {python_version})",),
        (Rule("*", "any", 0.1, "Python {a} -> {b} ({change}): rarely changes numerics by itself", graded=True),),
        Cannot("this host runs another Python", "python"),
        paths=("python*",),
        graded=True, decisive="python.version"),
    "environment": Cause(
        "environment variable", "reduction_order", (0.2, 0.2, 0.2, 0.1, 0.1),
        ("{settings}",),
        (Rule("*", "any", 0.2, "{path} {a} -> {b}: a variable that can change numerics or device choice"),),
        "environment",
        paths=("env*",),
        # A cache location: where Keras keeps downloads and its config file, never numerics.
        listed=("env.variables.KERAS_HOME",)),
    "unknown": Cause(
        "no recorded difference explains it", "semantic", "what is left when no recorded difference fits",
        ("run envprint verify --investigate",),
        "nothing to predict: no difference", NOT_A_SETTING),
}
# fmt: on
CONTEXT = "context"  # the topic of a path no cause claims: listed, never a cause

# --------------------------------------------------------------------------- topics (diff)


def _specificity(pattern: str) -> tuple[bool, int]:
    """An exact path beats a pattern; a longer literal prefix beats a shorter one."""
    wild = min((i for i, ch in enumerate(pattern) if ch in "*?["), default=None)
    return wild is None, len(pattern) if wild is None else wild


# (pattern, cause id, can change numerics), most specific first: the first match is a path's topic.
TOPICS: tuple[tuple[str, str, bool], ...] = tuple(
    sorted(
        [(p, cause, True) for cause, c in REGISTRY.items() for p in c.paths]
        + [(p, cause, False) for cause, c in REGISTRY.items() for p in c.listed]
        + [("*", CONTEXT, False)],
        key=lambda t: _specificity(t[0]),
        reverse=True,
    )
)
ORDER = {cause: i for i, cause in enumerate([*REGISTRY, CONTEXT])}


def topic_of(path: str) -> tuple[str, bool]:
    """The cause id a fingerprint path belongs to, and whether a difference there can change numerics."""
    for pattern, topic, numerics in TOPICS:
        if fnmatchcase(path, pattern):
            return topic, numerics
    raise AssertionError("TOPICS ends with a catch-all")  # pragma: no cover


def absent(path: str) -> str:
    """How a missing value reads, everywhere: an environment variable is '(unset)', any other fact '(absent)'."""
    return "(unset)" if path.startswith(("env.variables.", "threads.variables.")) else "(absent)"
