"""GPU presence, once: which hosts have a GPU, and which settings change nothing without one.

Owns: ``has_gpu`` (a fingerprint's GPU hardware: TensorFlow's devices or NVML's), ``gpu_names``
(the saved host's GPUs, by TensorFlow device name) and ``GPU_ONLY`` (fingerprint paths of
settings that only GPU kernels read). diff lists a ``GPU_ONLY`` difference, never counts it,
where neither host has a GPU; preflight's GPU conditions and ``verify --investigate``'s device
steps read presence from here. Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from envprint.models import Fingerprint

# Settings read by GPU kernels only (cuDNN, cuBLAS, TF32 matmuls, device visibility): where
# neither host has a GPU they cannot change a CPU kernel, so they are listed, not counted.
# KERAS_HOME is not here: it is a cache location, never numerics (the environment cause lists it).
GPU_ONLY = (
    "tensorflow.tensor_float_32",
    "devices.cuda_visible_devices",
    "env.variables.CUDA_*",
    "env.variables.CUDNN_*",
    "env.variables.CUBLAS_*",
    "env.variables.NCCL_*",
    "env.variables.NVIDIA_*",
    "env.variables.TF32_OVERRIDE",
    "env.variables.TF_CUDNN_*",
    "env.variables.TF_GPU_*",
)


def gpu_names(fp: Fingerprint) -> dict[str, str]:
    """The GPUs TensorFlow listed: {device name without '/physical_device:': model (or name)}."""
    return {
        d.name.removeprefix("/physical_device:"): d.model or d.name
        for d in fp.devices.physical or []
        if d.device_type == "GPU"
    }


def has_gpu(fp: Fingerprint | None) -> bool | None:
    """Whether the host has GPU hardware: True, False, or None when nothing was recorded to tell.

    NVML's list counts too: CUDA_VISIBLE_DEVICES=-1 hides a GPU from TensorFlow, not from the
    host, and on such a host that variable is what keeps the model on the CPU.
    """
    if fp is None:
        return None
    if gpu_names(fp) or fp.devices.gpus:
        return True
    return False if fp.devices.physical is not None else None


def neither_has_gpu(a: Fingerprint | None, b: Fingerprint | None) -> bool:
    """Both hosts known to have no GPU: a GPU-only setting changes nothing between them."""
    return has_gpu(a) is False and has_gpu(b) is False
