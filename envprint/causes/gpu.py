"""GPU causes (the CUDA stack, the device) and GPU presence, once.

Owns: the cuda_stack and device entries with their remedy values, preflight conditions and
restore steps (a CPU-only saved host is restored with CUDA_VISIBLE_DEVICES=-1 and the child
must report no GPU); ``has_gpu`` (a fingerprint's GPU hardware: TensorFlow's devices or NVML's),
``gpu_names``, ``current_gpus`` (this host's GPUs read from the diff, for a parent without
TensorFlow) and ``GPU_ONLY`` (fingerprint paths of settings only GPU kernels read). diff lists a
``GPU_ONLY`` difference, never counts it, where neither host has a GPU; every GPU condition of
scoring, preflight and restore reads presence from here.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable

from envprint.causes.base import (
    Cannot,
    Cause,
    DiffEntry,
    Family,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    fmt,
    label,
    untestable,
)
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
    "env.variables.*TF32*",
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


def any_gpu(c: Scoring) -> bool:
    """A GPU on the saved host or on this one."""
    return has_gpu(c.saved) is True or has_gpu(c.current) is True


def current_gpus(saved: Fingerprint, entries: Iterable[DiffEntry]) -> frozenset[str]:
    """This host's GPUs, read from the diff against the saved fingerprint (the parent has no TensorFlow)."""
    gpus = set(gpu_names(saved))
    for e in entries:
        if e.path == "devices.physical" and e.status == "only_in_a":  # TensorFlow lists no devices here
            gpus.clear()
        elif e.path.startswith("devices.physical[GPU:") and e.path.endswith("].device_type"):  # not fnmatch: [...]
            name = e.path[len("devices.physical[") : -len("].device_type")]
            if e.status == "only_in_b":
                gpus.add(name)
            elif e.status == "only_in_a":
                gpus.discard(name)
    return frozenset(gpus)


def _cuda(c: Scoring, entries: list[DiffEntry]) -> str:
    b, driver = c.saved.tensorflow and c.saved.tensorflow.build, c.saved.devices.driver_version
    if driver is None and not (b and b.is_cuda_build):
        return "the saved host ran without CUDA: run on the CPU (export CUDA_VISIBLE_DEVICES=-1)"
    versions = f"driver {fmt(driver)}, CUDA {fmt(b and b.cuda_version)}, cuDNN {fmt(b and b.cudnn_version)}"
    return f"match the saved CUDA stack: {versions}"


def _cuda_pins(c: Scoring, entries: list[DiffEntry]) -> str:
    wheels = c.saved.devices.nvidia_wheels
    return " ".join(["pip install"] + [f"'{k}=={v}'" for k, v in sorted(wheels.items())]) if wheels else ""


def _device(c: Scoring, entries: list[DiffEntry]) -> str:
    d = c.saved.devices
    if d.physical is None and d.gpus is None:
        return "run on the devices the saved host had (envprint diff lists them)"
    gpus = [x.model or x.name for x in d.physical or [] if x.device_type == "GPU"] or [g.name for g in d.gpus or []]
    if not gpus:
        return "export CUDA_VISIBLE_DEVICES=-1 to run on the CPU like the saved host"
    return f"run on the saved GPU ({gpus[0]}): export CUDA_VISIBLE_DEVICES={d.cuda_visible_devices or '0'}"


def _restore_device(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    saved = gpu_names(c.saved)
    if not saved and c.current_gpus:
        env: dict[str, str | None] = {"CUDA_VISIBLE_DEVICES": "-1"}
        return [
            Restore(
                "device",
                label(env, "(CPU only, like the saved host)"),
                env,
                expect={"gpus": 0},
                fields=field_paths(entries),
            )
        ]
    if saved and not c.current_gpus:
        return untestable(
            c, entries, f"the saved host ran on a GPU ({', '.join(sorted(set(saved.values())))}) and this host has none"
        )
    visible = ("env.variables.CUDA_VISIBLE_DEVICES", "devices.cuda_visible_devices")
    if all(e.path in visible for e in entries):  # the same GPUs, another selection of them
        env = {"CUDA_VISIBLE_DEVICES": c.saved.devices.cuda_visible_devices}
        return [Restore("device", label(env), env, fields=field_paths(entries))]
    return untestable(c, entries, "the devices differ and a device cannot be swapped here")


# fmt: off
FAMILY = Family(
    causes={
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
            (Rule("*", "cpu_to_gpu", 0.9, "saved on CPU, this host runs on a GPU: expect ULP noise, and relative "
                  "error near 1e-3 where TF32 is on (the default on Ampere and newer)", predicts="precision"),
             Rule("*", "gpu_to_cpu", 0.9, "saved on a GPU, this host has none: expect ULP noise, and relative error "
                  "near 1e-3 if the reference used TF32", predicts="precision"),
             Rule("*", "any", 0.6, "{path} {a} -> {b}: other devices run other kernels: expect ULP-level noise")),
            "device",
            paths=("devices*", "env.variables.CUDA_VISIBLE_DEVICES")),
    },
    values={"cuda": _cuda, "cuda_pins": _cuda_pins, "device": _device},
    when={
        "gpu": lambda c, e: any_gpu(c),
        "cpu_to_gpu": lambda c, e: has_gpu(c.saved) is not True and has_gpu(c.current) is True,
        "gpu_to_cpu": lambda c, e: has_gpu(c.saved) is True and has_gpu(c.current) is not True,
    },
    restorers={"device": _restore_device},
    facts=("gpus",),
)
# fmt: on
