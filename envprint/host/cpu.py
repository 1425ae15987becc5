"""The CPU's facts: model, instruction-set flags that change numerics, cores, memory.

Owns: ``cpu_info`` (Linux from /proc/cpuinfo and /proc/meminfo, macOS from sysctl) and the parsers
of those files. Like every getter in ``host``, it takes its file reader and command runner as
parameters, so that a test can hand it a fake host, and never raises. Must not import TensorFlow.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess

from envprint.host.collect import ReadText, Runner, read_text, run_command, why
from envprint.models import CpuInfo

# Instruction-set extensions that decide which kernels TensorFlow (Eigen) and oneDNN dispatch to.
# Two hosts differing here can reduce in a different order or in other precision (bf16, VNNI).
NUMERIC_CPU_FLAGS = frozenset(
    {
        # x86 (names as /proc/cpuinfo spells them)
        "sse4_1",
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512cd",
        "avx512bw",
        "avx512dq",
        "avx512vl",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "avx512ifma",
        "avx512vbmi",
        "avx_vnni",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
        "amx_fp16",
        # arm64 (Linux "Features" names)
        "asimd",
        "asimddp",
        "asimdhp",
        "sve",
        "sve2",
        "bf16",
        "i8mm",
        "sme",
    }  # fmt: skip
)

# macOS spells some x86 features differently (sysctl machdep.cpu.*features).
_MACOS_FLAG_NAMES = {"SSE4.1": "sse4_1", "SSE4.2": "sse4_2", "AVX1.0": "avx", "FMA": "fma", "F16C": "f16c",
                     "AVX2": "avx2", "AVX512F": "avx512f", "AVX512CD": "avx512cd", "AVX512BW": "avx512bw",
                     "AVX512DQ": "avx512dq", "AVX512VL": "avx512vl", "AVX512VNNI": "avx512_vnni"}  # fmt: skip
# Apple silicon reports features as hw.optional.arm.FEAT_* = 1.
_MACOS_ARM_FEATURES = {"FEAT_BF16": "bf16", "FEAT_I8MM": "i8mm", "FEAT_DotProd": "asimddp", "FEAT_FP16": "asimdhp"}


def parse_proc_cpuinfo(text: str) -> dict:
    """Model, vendor, numerics flags and physical cores from Linux /proc/cpuinfo (x86 and arm64)."""
    model = vendor = None
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    physical_id = "0"
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model", "cpu model") and model is None:
            model = value
        elif key in ("vendor_id", "CPU implementer") and vendor is None:
            vendor = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            cores.add((physical_id, value))
    return {
        "model": model,
        "vendor": vendor,
        "flags": sorted(flags & NUMERIC_CPU_FLAGS) if flags else None,
        "physical_cores": len(cores) or None,
    }


def parse_meminfo(text: str) -> int | None:
    m = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def _cpu_linux(read: ReadText, unavailable: dict[str, str]) -> dict:
    facts: dict = {}
    try:
        facts.update(parse_proc_cpuinfo(read("/proc/cpuinfo")))
    except OSError as exc:
        unavailable["cpuinfo"] = f"/proc/cpuinfo: {why(exc)}"
    try:
        facts["memory_bytes"] = parse_meminfo(read("/proc/meminfo"))
    except OSError as exc:
        unavailable["memory_bytes"] = f"/proc/meminfo: {why(exc)}"
    return facts


def _cpu_macos(run: Runner, unavailable: dict[str, str]) -> dict:
    def sysctl(name: str) -> str | None:
        try:
            return run(["sysctl", "-n", name], 5.0).strip()
        except (OSError, subprocess.SubprocessError) as exc:
            unavailable.setdefault(name, why(exc))
            return None

    flags: set[str] = set()
    for name in ("machdep.cpu.features", "machdep.cpu.leaf7_features"):
        for word in (sysctl(name) or "").split():
            if word in _MACOS_FLAG_NAMES:
                flags.add(_MACOS_FLAG_NAMES[word])
    if platform.machine() == "arm64":
        flags.add("asimd")
        for feat, flag in _MACOS_ARM_FEATURES.items():
            if sysctl(f"hw.optional.arm.{feat}") == "1":
                flags.add(flag)
    unavailable.pop("machdep.cpu.features", None)  # absent on Apple silicon, by design
    unavailable.pop("machdep.cpu.leaf7_features", None)
    memory = sysctl("hw.memsize")
    physical = sysctl("hw.physicalcpu")
    return {
        "model": sysctl("machdep.cpu.brand_string"),
        "vendor": sysctl("machdep.cpu.vendor") or ("Apple" if platform.machine() == "arm64" else None),
        "flags": sorted(flags),
        "physical_cores": int(physical) if physical and physical.isdigit() else None,
        "memory_bytes": int(memory) if memory and memory.isdigit() else None,
    }


def cpu_info(read: ReadText = read_text, run: Runner = run_command, system: str | None = None) -> CpuInfo:
    system = system or platform.system()
    unavailable: dict[str, str] = {}
    if system == "Linux":
        facts = _cpu_linux(read, unavailable)
    elif system == "Darwin":
        facts = _cpu_macos(run, unavailable)
    else:
        facts = {"model": platform.processor() or None}
        unavailable["flags"] = f"instruction-set flags are not read on {system}"
    facts["logical_cores"] = os.cpu_count()
    cpuinfo_reason = unavailable.pop("cpuinfo", None)
    for field in ("model", "vendor", "flags", "physical_cores", "memory_bytes"):
        if facts.get(field) is None and field not in unavailable:
            unavailable[field] = cpuinfo_reason or f"not reported on this {system} host"
    return CpuInfo(**{k: v for k, v in facts.items() if k in CpuInfo.model_fields}, unavailable=unavailable)
