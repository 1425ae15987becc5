"""GPU, driver and loaded-library facts, from recorded NVML answers, nvidia-smi output and maps."""

from __future__ import annotations

import subprocess
import types

import pytest

from envprint.host import gpu

MAPS = """\
7f00-7f01 r-xp 00000000 08:01 1 /usr/local/lib/python3.11/dist-packages/nvidia/cudnn/lib/libcudnn.so.8.9.4
7f01-7f02 r-xp 00000000 08:01 2 /usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublasLt.so.12.2.5.6
7f02-7f03 r--p 00000000 08:01 2 /usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublasLt.so.12.2.5.6
7f03-7f04 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05
7f04-7f05 r-xp 00000000 08:01 4 /venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so
7f05-7f06 r-xp 00000000 08:01 5 /usr/lib/x86_64-linux-gnu/libc.so.6
7f06-7f07 rw-p 00000000 00:00 0 [heap]
"""


def test_loaded_libraries_name_each_numerics_library_once_with_its_version():
    libs, reason = gpu.loaded_libraries(read=lambda path: MAPS)
    assert reason is None
    assert [(lib.name, lib.version) for lib in libs] == [
        ("cublasLt", "12.2.5.6"),
        ("cudnn", "8.9.4"),
        ("libcuda", "535.104.05"),
        ("openblas", None),
    ]


def test_loaded_libraries_absent_with_reason_off_linux():
    def no_proc(path):
        raise FileNotFoundError(2, "No such file or directory", path)

    libs, reason = gpu.loaded_libraries(read=no_proc)
    assert libs is None
    assert reason.startswith("/proc/self/maps: FileNotFoundError")


class FakeNvml(types.SimpleNamespace):
    """The calls nvidia-ml-py answers on a one-A100 host, with the values NVML gives there.

    Sources in tests/fixtures/README.md. nvidia-ml-py returns ``str`` (its convertStrBytes
    decorator decodes the C buffers); the older pynvml bindings returned ``bytes``: both occur.
    """

    def __init__(self, text=str):
        super().__init__(shut=False, text=text)

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shut = True

    def nvmlSystemGetDriverVersion(self):
        return self.text("535.104.05")

    def nvmlSystemGetCudaDriverVersion(self):
        return 12020

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("handle", i)

    def nvmlDeviceGetName(self, handle):
        return self.text("NVIDIA A100-SXM4-40GB")

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(total=42949672960)


@pytest.mark.parametrize("text", [str, lambda value: value.encode()], ids=["nvidia-ml-py (str)", "old pynvml (bytes)"])
def test_nvml_gives_driver_cuda_version_and_gpus_and_is_shut_down(text):
    nvml = FakeNvml(text)
    facts = gpu.nvidia_facts(nvml_import=lambda: nvml)
    assert facts["driver_version"] == "535.104.05"
    assert facts["cuda_driver_version"] == "12.2"
    assert [(g.index, g.name, g.memory_bytes) for g in facts["gpus"]] == [(0, "NVIDIA A100-SXM4-40GB", 42949672960)]
    assert nvml.shut


def _no_nvml():
    raise ImportError("No module named 'pynvml'")


def test_nvidia_smi_is_the_fallback_when_nvml_is_missing():
    seen = {}

    def run(argv, timeout):
        seen["argv"], seen["timeout"] = argv, timeout
        return "0, NVIDIA H100 80GB HBM3, 550.54.15, 81559\n"

    facts = gpu.nvidia_facts(nvml_import=_no_nvml, run=run, which=lambda name: "/usr/bin/nvidia-smi")
    assert facts["driver_version"] == "550.54.15"
    assert facts["gpus"][0].name == "NVIDIA H100 80GB HBM3"
    assert facts["gpus"][0].memory_bytes == 81559 * 1024 * 1024
    assert seen["timeout"] == gpu.NVIDIA_SMI_TIMEOUT_S
    assert seen["argv"][0] == "/usr/bin/nvidia-smi"


def test_no_driver_is_absent_with_both_reasons():
    facts = gpu.nvidia_facts(nvml_import=_no_nvml, which=lambda name: None)
    assert facts["driver_version"] is None and facts["gpus"] is None
    assert (
        facts["unavailable"]["driver_version"]
        == "nvidia-ml-py not installed; FileNotFoundError: nvidia-smi not on PATH"
    )


def test_hung_nvidia_smi_is_bounded_by_its_timeout():
    def hang(argv, timeout):
        raise subprocess.TimeoutExpired(argv, timeout)

    facts = gpu.nvidia_facts(nvml_import=_no_nvml, run=hang, which=lambda name: "/usr/bin/nvidia-smi")
    assert facts["driver_version"] is None
    assert "nvidia-smi timed out after 5 s" in facts["unavailable"]["driver_version"]


def test_nvidia_wheels_are_picked_from_the_installed_list():
    installed = {"numpy": "1.26.4", "nvidia-cudnn-cu12": "8.9.4.25", "nvidia-nccl-cu12": "2.16.5"}
    assert gpu.nvidia_wheels(installed) == {"nvidia-cudnn-cu12": "8.9.4.25", "nvidia-nccl-cu12": "2.16.5"}
