"""The Keras backend that runs the model and its stack: JAX/jaxlib, OpenVINO and its CPU precision, PyTorch.

Owns: ``keras_info`` (the fingerprint's ``keras``), one small getter per fact. Versions come from the
installed distributions (free); a runtime fact is read only where it is cheap and meaningful:
JAX's default backend and x64 only when Keras runs on JAX, OpenVINO's CPU inference precision
only when Keras runs on OpenVINO (importing openvino and asking its Core costs about a second),
PyTorch's thread pools only when torch is already imported. A fact that cannot be read is None
with the reason, never an abort. Imports no TensorFlow and no Keras: the backend packages only,
inside the getters.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from envprint import formats
from envprint.host.collect import why
from envprint.models import JaxInfo, KerasInfo, OpenVinoInfo, TorchInfo

_SOURCES = ("keras.config", "KERAS_BACKEND", "keras.json", "default")


def _read(unavailable: dict[str, str], field: str, getter: Callable[[], Any]) -> Any:
    try:
        return getter()
    except Exception as exc:  # one fact failing never aborts the capture
        unavailable[field] = why(exc)
        return None


def _jax_runtime() -> Any:
    import jax

    return jax


def jax_info(installed: Mapping[str, str], running: bool, jax: Callable[[], Any] = _jax_runtime) -> JaxInfo | None:
    if "jax" not in installed:
        return None
    unavailable: dict[str, str] = {}
    backend = x64 = None
    if running:
        backend = _read(unavailable, "default_backend", lambda: str(jax().default_backend()))
        x64 = _read(unavailable, "x64", lambda: bool(jax().config.jax_enable_x64))
    else:
        unavailable["default_backend"] = unavailable["x64"] = "Keras does not run on JAX here"
    return JaxInfo(
        version=installed.get("jax"),
        jaxlib_version=installed.get("jaxlib"),
        default_backend=backend,
        x64=x64,
        unavailable=unavailable,
    )


def _openvino_cpu_precision() -> str:
    """The CPU plugin's INFERENCE_PRECISION_HINT, as OpenVINO reports it ('f32', 'bf16', 'f16')."""
    import openvino  # type: ignore[import-untyped]  # openvino ships no type information

    value = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    # An openvino Type: str() is 'f32'/'bf16' in some releases and "<Type: 'float32'>" in others;
    # its short name (get_type_name) is the stable spelling, the one the property accepts.
    name = getattr(value, "get_type_name", None)
    return str(name() if callable(name) else value)


def openvino_info(
    installed: Mapping[str, str], running: bool, precision: Callable[[], str] = _openvino_cpu_precision
) -> OpenVinoInfo | None:
    if "openvino" not in installed:
        return None
    unavailable: dict[str, str] = {}
    value = None
    if running:
        value = _read(unavailable, "inference_precision", precision)
    else:
        unavailable["inference_precision"] = "Keras does not run on OpenVINO here"
    return OpenVinoInfo(version=installed.get("openvino"), inference_precision=value, unavailable=unavailable)


def torch_info(installed: Mapping[str, str], modules: Mapping[str, Any] = sys.modules) -> TorchInfo | None:
    if "torch" not in installed:
        return None
    unavailable: dict[str, str] = {}
    torch = modules.get("torch")
    intra = inter = None
    if torch is not None:
        intra = _read(unavailable, "intra_op_threads", lambda: int(torch.get_num_threads()))
        inter = _read(unavailable, "inter_op_threads", lambda: int(torch.get_num_interop_threads()))
    else:
        unavailable["intra_op_threads"] = unavailable["inter_op_threads"] = "torch is not imported in this process"
    return TorchInfo(version=installed.get("torch"), intra_op_threads=intra, inter_op_threads=inter,
                     unavailable=unavailable)  # fmt: skip


def keras_info(
    installed: Mapping[str, str], selected: Callable[[], tuple[str, str]] = formats.selected_backend
) -> KerasInfo:
    """The Keras backend (as Keras 3 decides it) and its stack's facts."""
    backend, source = selected()
    return KerasInfo(
        backend=backend,
        backend_source=source if source in _SOURCES else None,
        jax=jax_info(installed, backend == "jax"),
        openvino=openvino_info(installed, backend == "openvino"),
        torch=torch_info(installed),
    )
