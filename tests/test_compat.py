"""TensorFlow's and Keras's own rules, as envprint records and predicts them: oneDNN's default, Keras file loading.

oneDNN: TensorFlow (tensorflow/core/util/port.cc, DefaultOneDnnPolicy) turns it on by default on
Linux x86-64 only for CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; an AVX2-only AMD EPYC
runs without it. Both branches are tested from recorded CPU flags, and the live one against what
TensorFlow itself does in a fresh process (its "oneDNN custom operations are on" log line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envprint.host.compat import keras_can_load, onednn_default, onednn_env_value

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# /proc/cpuinfo flags of an Intel Xeon (Sapphire Rapids class) host, as envprint records them.
XEON_FLAGS = ["avx", "avx2", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx512bw", "avx512f", "avx_vnni",
              "amx_bf16", "amx_int8", "amx_tile", "fma", "sse4_2"]  # fmt: skip


def test_onednn_is_off_by_default_on_an_avx2_only_epyc() -> None:
    recorded = json.loads((FIXTURES / "handmade_gpu_host_a100.json").read_text())["cpu"]
    assert recorded["model"] == "AMD EPYC 7742 64-Core Processor"
    assert onednn_default((2, 21), "Linux", "x86_64", recorded["flags"]) == (
        False,
        "Linux x86-64 and the CPU has none of avx512_vnni, avx512_bf16, avx_vnni, amx_tile, amx_int8, amx_bf16: "
        "off by default",
    )


def test_onednn_is_on_by_default_on_a_cpu_with_vnni_or_amx() -> None:
    assert onednn_default((2, 21), "Linux", "x86_64", XEON_FLAGS) == (
        True,
        "Linux x86-64 and the CPU has avx512_vnni, avx512_bf16, avx_vnni, amx_tile, amx_int8, amx_bf16: on by default",
    )
    assert onednn_default((2, 15), "Linux", "x86_64", ["avx2", "avx_vnni"])[0] is True


@pytest.mark.parametrize(
    ("version", "system", "machine", "flags", "expected"),
    [
        ((2, 8), "Linux", "x86_64", XEON_FLAGS, False),  # before 2.9, only TF_ENABLE_ONEDNN_OPTS=1
        ((2, 21), "Linux", "x86_64", None, None),  # flags unread: the rule cannot be applied
        ((2, 21), "Linux", "aarch64", ["asimd", "sve"], None),  # Neoverse V1 only: flags do not tell
        ((2, 16), "Windows", "AMD64", [], True),
        ((2, 15), "Windows", "AMD64", [], False),
        ((2, 21), "Darwin", "arm64", ["bf16"], False),
    ],
)
def test_onednn_default_elsewhere(version, system, machine, flags, expected) -> None:
    assert onednn_default(version, system, machine, flags)[0] is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("1", True), ("TRUE", True), ("0", False), ("false", False), ("yes", None), ("2", None)],
)
def test_the_variable_is_read_as_tensorflow_reads_it(value, expected) -> None:
    # ReadBoolFromEnvVar: '0'/'false'/'1'/'true' in any case; anything else keeps the default (with a warning).
    assert onednn_env_value(value) is expected


def test_onednn_record_infers_the_default_from_the_cpu_flags_when_the_variable_is_set(tf, monkeypatch) -> None:
    import platform

    from envprint._tf.runtime import onednn_info

    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.skip("the CPU-flag rule is Linux x86-64's")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    info = onednn_info(tf, cpu_flags=lambda: ["avx2", "fma"])  # enabled stays the runtime's own answer
    assert (info.env, info.default) == ("1", False)
    assert info.unavailable == {
        "default": "not observable with TF_ENABLE_ONEDNN_OPTS=1; inferred from TensorFlow's rule: Linux x86-64 and "
        "the CPU has none of avx512_vnni, avx512_bf16, avx_vnni, amx_tile, amx_int8, amx_bf16: off by default"
    }


_CAPTURE = (
    "import json, envprint, platform\n"
    "from envprint.host import cpu\n"
    "from envprint._tf import import_tensorflow, tf_version_tuple\n"
    "from envprint.host.compat import onednn_default\n"
    "o = envprint.capture().tensorflow.onednn\n"
    "rule = onednn_default(tf_version_tuple(import_tensorflow()), platform.system(), platform.machine(),"
    " cpu.cpu_info().flags)[0]\n"
    "print(json.dumps({**o.model_dump(), 'rule': rule}))\n"
)


def _fresh(env_value: str | None) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow logs whether it turned oneDNN on
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    done = subprocess.run([sys.executable, "-c", _CAPTURE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("env_value", [None, "0", "1"])
def test_the_recorded_onednn_state_is_what_tensorflow_does_here(tf, env_value) -> None:
    if sys.platform != "linux":
        pytest.skip("TensorFlow's oneDNN log line and CPU rule are checked on Linux")
    o, stderr = _fresh(env_value)
    tensorflow_says_on = "oneDNN custom operations are on" in stderr
    assert o["enabled"] is tensorflow_says_on, stderr[-2000:]
    assert o["env"] == env_value
    assert o["default"] is o["rule"], o  # the rule, applied to this CPU, is what the runtime does unset
    if env_value is None:
        assert "default" not in o["unavailable"]  # observed, not inferred
    else:
        assert o["enabled"] is (env_value == "1")
        assert o["unavailable"]["default"].startswith(f"not observable with TF_ENABLE_ONEDNN_OPTS={env_value}; ")


@pytest.mark.parametrize(
    ("fmt", "saved", "running", "expected"),
    [
        ("keras", "3.15.0", "2.15.0", "fails"),
        ("h5", "3.15.0", "2.15.0", "fails"),
        ("keras", "3.15.0", "3.12.0", "may_fail"),
        ("h5", "3.15.1", "3.12.0", "may_fail"),
        ("keras", "3.12.0", "3.15.0", "loads"),
        ("keras", "3.15.0", "3.15.1", "loads"),
        ("savedmodel", "3.15.0", "2.15.0", "loads"),
        ("tflite", "3.15.0", "2.15.0", "loads"),
        ("keras", None, "3.12.0", "loads"),
    ],
)
def test_keras_can_load(fmt, saved, running, expected) -> None:
    assert keras_can_load(fmt, saved, running)[0] == expected
