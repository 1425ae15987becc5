"""GPU, driver and native-library facts that need no TensorFlow.

Owns: the NVIDIA driver and GPUs (NVML through nvidia-ml-py, else ``nvidia-smi`` with a short
timeout), the numerics libraries actually mapped into this process (``/proc/self/maps``), and
the nvidia-* wheels. TensorFlow's build info only says what CUDA/cuDNN it was *compiled*
against; a host can load another cuDNN from LD_LIBRARY_PATH or a pip wheel, and that is what
changes the numbers. Must not import TensorFlow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from types import ModuleType

from envprint.host.collect import ReadText, Runner, read_text, run_command, why
from envprint.models import LoadedLibrary, NvidiaGpu

NVIDIA_SMI_TIMEOUT_S = 5.0

# Library families whose version changes kernels or reduction order. Matched against the file
# name of each mapped shared object: lib<stem>.so[.version] (or .dylib).
LIBRARY_FAMILIES = {
    "cudart": "cudart", "cublas": "cublas", "cublasLt": "cublasLt", "cudnn": "cudnn", "nccl": "nccl",
    "cufft": "cufft", "curand": "curand", "cusolver": "cusolver", "cusparse": "cusparse", "nvrtc": "nvrtc",
    "nvinfer": "tensorrt", "cuda": "libcuda", "dnnl": "dnnl", "mkldnn": "dnnl", "mkl_rt": "mkl",
    "mkl_core": "mkl", "iomp5": "iomp5", "gomp": "gomp", "omp": "omp", "openblas": "openblas",
    "scipy_openblas": "openblas", "scipy_openblas64_": "openblas", "tensorflow_framework": "tensorflow_framework",
    "rocblas": "rocblas", "MIOpen": "miopen", "amdhip64": "hip",
}  # fmt: skip
# NumPy's wheels vendor OpenBLAS under a mangled name: libscipy_openblas64_-<hash>.so (NumPy 2),
# libopenblas64_p-r0-<hash>.3.23.dev.so (NumPy 1.26; the version sits before .so and is not recorded).
_LIB_RE = re.compile(
    r"lib(?P<stem>[A-Za-z_]+?[A-Za-z_0-9]*?)(?:64_?)?(?:p-r[0-9]+)?(?:-[0-9a-f]{8})?(?:\.[0-9][0-9A-Za-z.]*?)?"
    r"\.(?:so|dylib)(?:\.(?P<ver>[0-9][0-9.]*))?$"
)


def library_from_path(path: str) -> LoadedLibrary | None:
    """Classify one mapped file: ``.../libcudnn.so.8.9.7`` -> LoadedLibrary('cudnn', path, '8.9.7')."""
    m = _LIB_RE.search(os.path.basename(path))
    if not m:
        return None
    stem = m.group("stem")
    family = LIBRARY_FAMILIES.get(stem) or LIBRARY_FAMILIES.get(stem.rstrip("_"))
    if family is None:
        return None
    version = m.group("ver")
    if version is not None and "." not in version and os.path.islink(path):
        # libcudnn.so.8 is usually a link to libcudnn.so.8.9.7: the full version is in the target.
        target = library_from_path(os.path.realpath(path))
        version = target.version if target and target.version else version
    return LoadedLibrary(name=family, path=path, version=version)


def loaded_libraries(read: ReadText = read_text) -> tuple[list[LoadedLibrary] | None, str | None]:
    """Numerics libraries mapped into this process, from /proc/self/maps (Linux only)."""
    try:
        maps = read("/proc/self/maps")
    except OSError as exc:
        return None, f"/proc/self/maps: {why(exc)} (loaded libraries are read on Linux only)"
    # Each library is mapped several times (text, data, ...): classify each file once.
    paths = {parts[5] for parts in (line.split(maxsplit=5) for line in maps.splitlines()) if len(parts) == 6}
    found = [lib for lib in map(library_from_path, (p for p in paths if p.startswith("/"))) if lib is not None]
    return sorted(found, key=lambda lib: (lib.name, lib.path)), None


def nvidia_wheels(installed: Mapping[str, str]) -> dict[str, str]:
    """nvidia-cudnn-cu12 and friends: the CUDA libraries pip installed beside TensorFlow."""
    return {name: version for name, version in sorted(installed.items()) if name.startswith("nvidia-")}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def import_nvml() -> ModuleType:
    import pynvml  # provided by nvidia-ml-py

    return pynvml


def from_nvml(nvml: ModuleType) -> dict:
    """Driver, CUDA driver version and GPUs through NVML. Raises if NVML cannot initialise."""
    nvml.nvmlInit()
    try:
        facts: dict = {"driver_version": _text(nvml.nvmlSystemGetDriverVersion())}
        try:
            cuda = int(nvml.nvmlSystemGetCudaDriverVersion())  # e.g. 12040 -> "12.4"
            facts["cuda_driver_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except Exception as exc:  # older drivers lack the call; the rest is still worth having
            facts["unavailable"] = {"cuda_driver_version": f"NVML: {why(exc)}"}
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                NvidiaGpu(index=index, name=_text(nvml.nvmlDeviceGetName(handle)), memory_bytes=int(memory.total))
            )
        facts["gpus"] = gpus
        return facts
    finally:
        nvml.nvmlShutdown()


def parse_nvidia_smi(text: str) -> dict:
    """Parse ``nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader,nounits``."""
    gpus, driver = [], None
    for line in text.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            continue
        index, name, driver, memory_mib = fields
        memory = int(float(memory_mib) * 1024 * 1024) if re.fullmatch(r"[0-9.]+", memory_mib) else None
        gpus.append(NvidiaGpu(index=int(index), name=name, memory_bytes=memory))
    return {"driver_version": driver, "gpus": gpus}


def from_nvidia_smi(run: Runner, which: Callable[[str], str | None] = shutil.which) -> dict:
    exe = which("nvidia-smi")
    if exe is None:
        raise FileNotFoundError("nvidia-smi not on PATH")
    out = run(
        [exe, "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader,nounits"],
        NVIDIA_SMI_TIMEOUT_S,
    )
    return parse_nvidia_smi(out)


def nvidia_facts(
    nvml_import: Callable[[], ModuleType] = import_nvml,
    run: Runner = run_command,
    which: Callable[[str], str | None] = shutil.which,
) -> dict:
    """Driver and GPUs: NVML first, nvidia-smi second, else absent with both reasons.

    Returns a dict with driver_version, cuda_driver_version, gpus and unavailable (field -> reason).
    """
    reasons = []
    try:
        facts = from_nvml(nvml_import())
        facts.setdefault("unavailable", {})
        return facts
    except ImportError:
        reasons.append("nvidia-ml-py not installed")
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: a CPU host is normal
        reasons.append(f"NVML: {why(exc)}")
    try:
        facts = from_nvidia_smi(run, which)
        facts["unavailable"] = {"cuda_driver_version": "nvidia-smi does not report it; install nvidia-ml-py"}
        return facts
    except subprocess.TimeoutExpired:
        reasons.append(f"nvidia-smi timed out after {NVIDIA_SMI_TIMEOUT_S:g} s")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        reasons.append(why(exc) if isinstance(exc, FileNotFoundError) else f"nvidia-smi: {why(exc)}")
    reason = "; ".join(reasons)
    return {
        "driver_version": None,
        "cuda_driver_version": None,
        "gpus": None,
        "unavailable": {"driver_version": reason, "cuda_driver_version": reason, "gpus": reason},
    }
