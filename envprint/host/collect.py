"""Host facts that need no TensorFlow: Python, OS, packages, threads, seeds, environment.

Owns: one small getter per fact. Each takes its side effects (file reader, command runner,
environment) as parameters so a test can hand it a fake host, and none of them ever raises:
a fact that cannot be read is ``None`` plus a reason in the section's ``unavailable``.
Must not import TensorFlow (the CPU's facts live in ``cpu.py``, GPU and driver facts in ``gpu.py``,
TensorFlow's own in ``_tf``).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

from envprint.host.names import normalize_name
from envprint.models import EnvInfo, PackagesInfo, PlatformInfo, PythonInfo, SeedsInfo, ThreadsInfo

ReadText = Callable[[str], str]
Runner = Callable[[Sequence[str], float], str]


def read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def run_command(argv: Sequence[str], timeout: float = 5.0) -> str:
    """Run a command without a shell and return its stdout; raise OSError/SubprocessError on failure."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


def why(exc: BaseException) -> str:
    """A one-line reason for ``unavailable``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- python and platform


def python_info() -> PythonInfo:
    return PythonInfo(
        version=platform.python_version(),
        implementation=platform.python_implementation(),
        compiler=platform.python_compiler() or None,
    )


def platform_info() -> PlatformInfo:
    unavailable = {}
    libc = None
    if platform.system() == "Linux":
        name, version = platform.libc_ver()
        if name:
            libc = f"{name} {version}".strip()
        else:
            unavailable["libc"] = "platform.libc_ver() found no C library (static or musl build)"
    else:
        unavailable["libc"] = f"not reported on {platform.system()}"
    return PlatformInfo(
        system=platform.system(),
        release=platform.release(),
        machine=platform.machine(),
        libc=libc,
        unavailable=unavailable,
    )


# --------------------------------------------------------------------------- packages

# Distributions that provide the `tensorflow` module, most common first.
TENSORFLOW_DISTRIBUTIONS = (
    "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos", "tensorflow-intel",
    "tensorflow-aarch64", "tensorflow-cpu-aws", "tensorflow-rocm", "intel-tensorflow", "tf-nightly",
    "tf-nightly-cpu", "tf-nightly-gpu",
)  # fmt: skip
KEY_PACKAGES = ("keras", "tf-keras", "numpy", "ml-dtypes", "h5py", "protobuf")


# "<name>-<version>.dist-info": the installer wrote both into the folder name (PEP 427/491).
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


def _name_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    # Reading METADATA means opening and parsing a file per package (~35 ms for 55 packages);
    # the .dist-info folder name already says the same. Anything else falls back to METADATA.
    folder = getattr(dist, "_path", None)
    m = _DIST_INFO.match(getattr(folder, "name", "") or "")
    if m:
        return m.group("name"), m.group("version")
    meta = dist.metadata
    return (meta["Name"] if meta else None), dist.version


def installed_distributions(distributions: Callable = metadata.distributions) -> dict[str, str]:
    """Every importable distribution, name -> version. The first on sys.path wins, as for import."""
    found: dict[str, str] = {}
    for dist in distributions():
        name, version = _name_version(dist)
        if name and version:
            found.setdefault(normalize_name(name), version)
    return dict(sorted(found.items()))


def packages_info(installed: Mapping[str, str]) -> PackagesInfo:
    tf_dist = next((d for d in TENSORFLOW_DISTRIBUTIONS if d in installed), None)
    key = {name: installed.get(name) for name in ((tf_dist,) if tf_dist else ()) + KEY_PACKAGES}
    return PackagesInfo(tensorflow_distribution=tf_dist, key=key, installed=dict(installed))


# --------------------------------------------------------------------------- environment

# Variables that change numerics, kernel choice or device choice (OV_/OPENVINO_: Keras on OpenVINO). By prefix or name.
ENV_PREFIXES = (
    "TF_", "CUDA_", "CUDNN_", "CUBLAS_", "NCCL_", "NVIDIA_", "XLA_", "OMP_", "MKL_", "KMP_", "OPENBLAS_",
    "GOTO_", "BLIS_", "ONEDNN_", "DNNL_", "KERAS_", "HIP_", "ROCM_", "HSA_", "TPU_", "JAX_", "OV_", "OPENVINO_",
)  # fmt: skip
ENV_NAMES = frozenset({"PYTHONHASHSEED", "LD_LIBRARY_PATH", "LD_PRELOAD", "TF32_OVERRIDE", "VECLIB_MAXIMUM_THREADS"})
# Logging knobs: allow-listed by prefix but irrelevant to numerics, and the CLI sets them.
# TPU_ML_PLATFORM* are set by `import tensorflow` itself (2.16+): they repeat tensorflow.version.
ENV_IGNORED = frozenset(
    {
        "TF_CPP_MIN_LOG_LEVEL",
        "TF_CPP_MAX_VLOG_LEVEL",
        "TF_CPP_VMODULE",
        "TF_CPP_MIN_VLOG_LEVEL",
        "TPU_ML_PLATFORM",
        "TPU_ML_PLATFORM_VERSION",
    }
)
# Terraform shares the TF_ prefix; its TF_VAR_* inputs routinely hold credentials. Never record them.
ENV_FOREIGN_PREFIXES = (
    "TF_VAR_",
    "TF_CLI_",
    "TF_TOKEN_",
    "TF_LOG",
    "TF_REGISTRY_",
    "TF_PLUGIN_",
    "TF_IN_AUTOMATION",
    "TF_INPUT",
    "TF_WORKSPACE",
    "TF_DATA_DIR",
    "TF_STATE",
)
# Never record the value of a variable whose name suggests a secret, whatever its prefix.
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE", "PRIVATE")
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
)  # fmt: skip


def allow_listed(name: str) -> bool:
    if name in ENV_IGNORED or name.startswith(ENV_FOREIGN_PREFIXES):
        return False
    return name in ENV_NAMES or name.startswith(ENV_PREFIXES)


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def env_info(environ: Mapping[str, str] = os.environ) -> EnvInfo:
    """The allow-listed variables; thread counts are reported in ``threads`` instead, secrets never."""
    variables, redacted = {}, []
    for name in sorted(environ):
        if not allow_listed(name) or name in THREAD_VARIABLES:
            continue
        if looks_secret(name):
            redacted.append(name)
        else:
            variables[name] = environ[name]
    return EnvInfo(variables=variables, redacted=redacted)


# --------------------------------------------------------------------------- threads


def affinity_count() -> int | None:
    getter = getattr(os, "sched_getaffinity", None)
    return len(getter(0)) if getter else None


def blas_threads() -> tuple[list[str] | None, str | None]:
    """NumPy's BLAS/OpenMP libraries and their thread counts, via threadpoolctl."""
    # Importing threadpoolctl sets KMP_DUPLICATE_LIB_OK=True in os.environ (to tolerate two
    # OpenMP runtimes). envprint leaves the process as it found it, and must not record its own
    # side effect as the user's environment: put the variable back as it was.
    kmp = os.environ.get("KMP_DUPLICATE_LIB_OK")
    try:
        from threadpoolctl import threadpool_info
    except ImportError as exc:
        return None, f"threadpoolctl not importable: {why(exc)}"
    finally:
        if kmp is None:
            os.environ.pop("KMP_DUPLICATE_LIB_OK", None)
        else:
            os.environ["KMP_DUPLICATE_LIB_OK"] = kmp
    try:
        import numpy  # noqa: F401  (load NumPy's BLAS so threadpoolctl can see it)

        pools = threadpool_info()
    except Exception as exc:  # threadpoolctl inspects native libraries; never let that abort capture
        return None, why(exc)
    described = sorted(
        f"{p.get('internal_api')} {p.get('version') or '?'} threads={p.get('num_threads')}" for p in pools
    )
    return described, None


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def threads_info(
    tf_settings: tuple[int, int] | None,
    tf_reason: str | None = None,
    environ: Mapping[str, str] = os.environ,
    blas: Callable[[], tuple[list[str] | None, str | None]] = blas_threads,
) -> ThreadsInfo:
    """Thread settings. ``tf_settings`` is (intra, inter) from tf.config.threading, None without TensorFlow."""
    unavailable: dict[str, str] = {}
    available = affinity_count()
    if available is None:
        unavailable["affinity"] = "os.sched_getaffinity is not available on this platform"
    host_default = available or os.cpu_count()
    intra = inter = intra_eff = inter_eff = None
    if tf_settings is not None:
        intra, inter = tf_settings
        # TensorFlow: an explicit setting wins, then TF_NUM_*_THREADS, then all schedulable CPUs.
        intra_eff = intra or _env_int(environ, "TF_NUM_INTRAOP_THREADS") or host_default
        inter_eff = inter or _env_int(environ, "TF_NUM_INTEROP_THREADS") or host_default
    else:
        for field in ("tf_intra_op", "tf_inter_op", "tf_intra_op_effective", "tf_inter_op_effective"):
            unavailable[field] = tf_reason or "TensorFlow is not imported"
    blas_list, blas_reason = blas()
    if blas_reason:
        unavailable["blas"] = blas_reason
    return ThreadsInfo(
        cpu_count=os.cpu_count(),
        affinity=available,
        tf_intra_op=intra,
        tf_inter_op=inter,
        tf_intra_op_effective=intra_eff,
        tf_inter_op_effective=inter_eff,
        variables={n: environ[n] for n in THREAD_VARIABLES if n in environ},
        blas=blas_list,
        unavailable=unavailable,
    )


# --------------------------------------------------------------------------- seeds


def seeds_info(declared: int | None, source: str | None, environ: Mapping[str, str] = os.environ) -> SeedsInfo:
    return SeedsInfo(
        declared=declared, source=source if declared is not None else None, pythonhashseed=environ.get("PYTHONHASHSEED")
    )
