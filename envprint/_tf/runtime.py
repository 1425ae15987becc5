"""TensorFlow's runtime facts: version, build, Keras, policies, determinism, oneDNN, devices, threads.

Owns: reading TensorFlow's state without changing it. Each fact is read on its own, so one
private API missing in some TensorFlow version costs that fact (``None`` with the reason),
never the capture. Reads only what an imported TensorFlow already knows: no device is
initialised here beyond ``list_physical_devices``, and Keras is not imported just to ask it.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from envprint._tf import keras_flavor, tf_version_tuple
from envprint.host import cpu
from envprint.host.collect import why
from envprint.models import BuildInfo, Device, OneDnnInfo, TensorflowInfo


def _read(unavailable: dict[str, str], field: str, getter: Callable[[], Any]) -> Any:
    try:
        return getter()
    except Exception as exc:  # any one fact failing must not abort the capture
        unavailable[field] = why(exc)
        return None


def build_info(tf: ModuleType) -> BuildInfo:
    raw = dict(tf.sysconfig.get_build_info())
    caps = raw.get("cuda_compute_capabilities")
    return BuildInfo(
        is_cuda_build=raw.get("is_cuda_build"),
        is_rocm_build=raw.get("is_rocm_build"),
        is_tensorrt_build=raw.get("is_tensorrt_build"),
        cuda_version=str(raw["cuda_version"]) if raw.get("cuda_version") else None,
        cudnn_version=str(raw["cudnn_version"]) if raw.get("cudnn_version") else None,
        cuda_compute_capabilities=[str(c) for c in caps] if caps else None,
    )


def onednn_info(tf: ModuleType, cpu_flags: Callable[[], list[str] | None] | None = None) -> OneDnnInfo:
    """oneDNN as this process runs it: ``enabled`` (the runtime's answer), ``env``, ``default``.

    TensorFlow decides once, at its first oneDNN question: TF_ENABLE_ONEDNN_OPTS when it is
    '0'/'1'/'false'/'true', else its default, which on Linux x86-64 depends on the CPU's
    instructions (``envprint.host.compat.onednn_default``). With the variable unset (or not a boolean)
    the runtime's answer *is* the default; with it set, the default cannot be observed and is
    inferred from TensorFlow's rule and ``cpu_flags`` (this host's, read only then), and
    ``unavailable['default']`` says so.
    """
    from envprint.host.compat import onednn_default, onednn_env_value

    unavailable: dict[str, str] = {}
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    explicit = onednn_env_value(env)

    def enabled() -> bool:
        # The C++ runtime's own answer (it reads the variable and applies the platform default).
        from tensorflow.python.util import _pywrap_util_port  # noqa: TID253 (inside a function)

        return bool(_pywrap_util_port.IsMklEnabled())

    value = _read(unavailable, "enabled", enabled)
    if value is not None and explicit is None:
        return OneDnnInfo(enabled=value, env=env, default=value, unavailable=unavailable)
    read_flags = cpu_flags or (lambda: cpu.cpu_info().flags)
    default, rule = onednn_default(tf_version_tuple(tf), platform.system(), platform.machine(), read_flags())
    unavailable["default"] = f"not observable with TF_ENABLE_ONEDNN_OPTS={env}; inferred from TensorFlow's rule: {rule}"
    if value is None:
        # TensorFlow's rule: a boolean variable wins over the default.
        value = explicit if explicit is not None else default
        unavailable["enabled"] += "; derived from TF_ENABLE_ONEDNN_OPTS and TensorFlow's default rule"
    return OneDnnInfo(enabled=value, env=env, default=default, unavailable=unavailable)


def _op_determinism(tf: ModuleType) -> bool:
    from tensorflow.python.framework import config  # noqa: TID253 (inside a function)

    return bool(config.is_op_determinism_enabled())


def _keras_state(tf: ModuleType, flavor: str, unavailable: dict[str, str]) -> tuple[str | None, str | None]:
    """(backend, global dtype policy), read only if Keras is already imported.

    If Keras has not been imported, nothing in this process can have changed its global policy,
    so it is Keras' default, 'float32'; importing Keras here would cost capture() seconds.
    """
    module_name = "tf_keras" if flavor == "tf_keras" else "keras"
    keras = sys.modules.get(module_name)
    if keras is None:
        return "tensorflow", "float32"
    backend = policy = None
    if flavor == "keras3":
        backend = _read(unavailable, "keras_backend", lambda: keras.config.backend())
        policy = _read(unavailable, "dtype_policy", lambda: keras.config.dtype_policy().name)
    else:
        backend = "tensorflow"
        policy = _read(unavailable, "dtype_policy", lambda: keras.mixed_precision.global_policy().name)
    return backend, policy


def tensorflow_info(tf: ModuleType, installed: dict[str, str]) -> TensorflowInfo:
    unavailable: dict[str, str] = {}
    flavor = keras_flavor(tf)
    keras_pkg = {"keras3": "keras", "tf_keras": "tf-keras", "keras2": "keras"}[flavor]
    backend, policy = _keras_state(tf, flavor, unavailable)
    jit = _read(unavailable, "jit", lambda: tf.config.optimizer.get_jit())
    return TensorflowInfo(
        version=tf.__version__,
        git_version=getattr(tf.version, "GIT_VERSION", None),
        compiler_version=getattr(tf.version, "COMPILER_VERSION", None),
        build=_read(unavailable, "build", lambda: build_info(tf)) or BuildInfo(),
        keras_flavor=flavor,
        keras_version=installed.get(keras_pkg),
        keras_backend=backend,
        dtype_policy=policy,
        op_determinism=_read(unavailable, "op_determinism", lambda: _op_determinism(tf)),
        tensor_float_32=_read(
            unavailable, "tensor_float_32", lambda: bool(tf.config.experimental.tensor_float_32_execution_enabled())
        ),
        jit=jit if isinstance(jit, str) or jit is None else ("autoclustering" if jit else ""),
        grappler={
            k: bool(v)
            for k, v in (
                _read(unavailable, "grappler", lambda: tf.config.optimizer.get_experimental_options()) or {}
            ).items()
        },
        onednn=onednn_info(tf),
        unavailable=unavailable,
    )


def physical_devices(tf: ModuleType) -> list[Device]:
    devices = []
    for dev in tf.config.list_physical_devices():
        model = capability = None
        if dev.device_type == "GPU":
            try:
                details = tf.config.experimental.get_device_details(dev)
            except Exception:  # details are a bonus; the device itself is the fact
                details = {}
            model = details.get("device_name")
            cc = details.get("compute_capability")
            capability = ".".join(str(x) for x in cc) if cc else None
        devices.append(Device(name=dev.name, device_type=dev.device_type, model=model, compute_capability=capability))
    return devices


def thread_settings(tf: ModuleType) -> tuple[int, int]:
    """(intra, inter) as set through tf.config.threading; 0 means TensorFlow's default."""
    return (
        int(tf.config.threading.get_intra_op_parallelism_threads()),
        int(tf.config.threading.get_inter_op_parallelism_threads()),
    )
