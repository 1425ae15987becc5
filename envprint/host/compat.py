"""What TensorFlow and Keras do, as pure rules over versions and CPU flags, read from their sources.

Owns: ``onednn_default`` (whether TensorFlow turns oneDNN on when TF_ENABLE_ONEDNN_OPTS is
unset, on a given platform and CPU), ``onednn_env_value`` (how TensorFlow reads that variable),
and ``keras_can_load`` (whether a Keras file written by one Keras version loads under another).
Standard library and ``packaging`` only: ``envprint._tf.runtime`` records facts with them, and
``--preflight`` and ``diff`` predict from two fingerprints with them, on hosts without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from envprint import formats

# tensorflow/core/util/port.cc (DefaultOneDnnPolicy; util.cc IsMKLEnabled before 2.13): on Linux,
# oneDNN is on by default only on CPUs with neural-network instructions; the names are those of
# /proc/cpuinfo. TensorFlow 2.9 made it the default; before, only TF_ENABLE_ONEDNN_OPTS=1 turned it on.
ONEDNN_DEFAULT_X86_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def onednn_env_value(value: str | None) -> bool | None:
    """TF_ENABLE_ONEDNN_OPTS as TensorFlow reads it (ReadBoolFromEnvVar): '0'/'false' and '1'/'true'
    in any case; unset, empty or anything else leaves TensorFlow's default (None here)."""
    text = (value or "").strip().lower()
    return True if text in ("1", "true") else False if text in ("0", "false") else None


def onednn_default(
    tf_version: tuple[int, int], system: str, machine: str, cpu_flags: Iterable[str] | None
) -> tuple[bool | None, str]:
    """(TensorFlow's oneDNN default on this platform and CPU, the rule that decided it).

    None when the rule needs what is not known (the CPU flags) or depends on the CPU model
    (recent releases turn it on on Arm Neoverse V1 only, which flags do not tell).
    """
    arch = machine.lower()
    if system == "Linux" and arch in ("x86_64", "amd64"):
        if tf_version < (2, 9):
            return False, "TensorFlow < 2.9 uses oneDNN only with TF_ENABLE_ONEDNN_OPTS=1"
        if cpu_flags is None:
            return None, "the CPU flags could not be read, and on Linux x86-64 the default depends on them"
        flags = set(cpu_flags)
        found = [f for f in ONEDNN_DEFAULT_X86_FLAGS if f in flags]
        if found:
            return True, f"Linux x86-64 and the CPU has {', '.join(found)}: on by default"
        return False, f"Linux x86-64 and the CPU has none of {', '.join(ONEDNN_DEFAULT_X86_FLAGS)}: off by default"
    if system == "Windows" and arch in ("x86_64", "amd64"):
        return tf_version >= (2, 16), "Windows x86-64: on by default since TensorFlow 2.16"
    if system == "Linux" and arch in ("aarch64", "arm64"):
        return None, "Linux Arm: on by default only on some CPUs (Neoverse V1), which the CPU flags do not tell"
    return False, f"{system} {machine}: TensorFlow's builds here do not use oneDNN by default"


LoadPrediction = Literal["loads", "fails", "may_fail"]


def _version(text: str | None) -> tuple[int, int, int] | None:
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(str(text))
    except (InvalidVersion, TypeError):
        return None
    return (v.major, v.minor, v.micro)


def keras_can_load(fmt: str, saved_by: str | None, running: str | None) -> tuple[LoadPrediction, str]:
    """Whether a model file of ``fmt`` written by Keras ``saved_by`` loads under Keras ``running``.

    SavedModel and .tflite load through TensorFlow whatever Keras wrote them. A .keras or .h5
    file written by Keras 3 cannot load under Keras 2 (its config is in Keras 3's dialect), and
    one written by a newer Keras 3 release may hold config keys an older one refuses (Keras 3.15's
    ``quantization_config`` under Keras 3.12). An unknown version predicts nothing.
    """
    if not formats.get(fmt).keras_file:
        others = " and ".join(f.label.removesuffix(" model") for f in formats.FORMATS if not f.keras_file)
        return "loads", f"{others} load through TensorFlow, whatever Keras wrote them"
    saved, here = _version(saved_by), _version(running)
    if saved is None or here is None:
        return "loads", "the saving or the running Keras version is unknown: nothing to predict"
    if saved[0] > here[0]:
        return "fails", f"Keras {here[0]} cannot read a file written by Keras {saved[0]}"
    if saved[0] == here[0] and saved[:2] > here[:2]:
        return (
            "may_fail",
            f"written by Keras {saved_by}, newer than Keras {running}, whose layers may refuse its config",
        )
    return "loads", f"Keras {running} reads files written by Keras {saved_by}"
