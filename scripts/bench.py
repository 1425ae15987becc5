#!/usr/bin/env python
"""Benchmarks: envprint side by side with the bare baseline it stands beside, in one run.

Each case runs A (baseline) and B (envprint) interleaved, A B A B ..., after a warm-up, so a
drifting shared machine affects both alike; it reports medians and the median of the per-pair
B/A ratios. Prints a Markdown table and writes JSON (--out).

    python scripts/bench.py [--runs 9] [--out bench-results/bench.json] [--cases cli,capture]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PY = sys.executable
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def timed_process(argv: list[str]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        return time.perf_counter() - t0

    return run


def interleave(a: Callable[[], float], b: Callable[[], float], runs: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        a(), b()
    ta, tb = [], []
    for _ in range(runs):
        ta.append(a())
        tb.append(b())
    ratios = [y / x for x, y in zip(ta, tb, strict=True)]
    return {
        "baseline_median_s": statistics.median(ta),
        "envprint_median_s": statistics.median(tb),
        "ratio_median": statistics.median(ratios),
        "runs": runs,
    }


def case_cli(runs: int, workdir: Path) -> list[dict]:
    fp = workdir / "fp.json"
    fp.write_text(subprocess.run([PY, "-m", "envprint", "show", "--json", "--no-tensorflow"], check=True,
                                 capture_output=True, text=True, env=ENV).stdout)
    baseline = timed_process([PY, "-c", "import typer, pydantic"])
    envprint_exe = str(Path(PY).with_name("envprint"))
    out = []
    for name, argv in (("envprint --help", [envprint_exe, "--help"]),
                       ("envprint diff a.json b.json", [envprint_exe, "diff", str(fp), str(fp)])):
        r = interleave(baseline, timed_process(argv), runs)
        out.append({"case": name, "baseline": "python -c 'import typer, pydantic'", **r})
    return out


CAPTURE_CHILD = r"""
import json, sys, time
t0 = time.perf_counter(); import tensorflow; t_import = time.perf_counter() - t0
import envprint
from envprint import capture as cap, collect, gpu
envprint.capture()  # warm: first call pays lazy imports (threadpoolctl)
times = []
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter(); envprint.capture(); times.append(time.perf_counter() - t0)
def timeit(fn, n=5):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]
from envprint._tf import runtime
installed = collect.installed_distributions()
sections = {
    "packages (importlib.metadata scan)": lambda: collect.packages_info(collect.installed_distributions()),
    "cpu (/proc/cpuinfo)": collect.cpu_info,
    "threads (threadpoolctl)": lambda: collect.threads_info((0, 0)),
    "gpu (NVML / nvidia-smi)": gpu.nvidia_facts,
    "loaded libraries (/proc/self/maps)": gpu.loaded_libraries,
    "tensorflow facts": lambda: runtime.tensorflow_info(tensorflow, installed),
    "env": collect.env_info,
}
print(json.dumps({"import_s": t_import, "capture_s": sorted(times)[len(times) // 2],
                  "sections": {k: timeit(v) for k, v in sections.items()}}))
"""


def case_capture(runs: int, workdir: Path) -> list[dict]:
    done = subprocess.run([PY, "-c", CAPTURE_CHILD, str(runs)], check=True, capture_output=True, text=True, env=ENV)
    r = json.loads(done.stdout)
    return [{
        "case": "envprint.capture() after import tensorflow",
        "baseline": "import tensorflow",
        "baseline_median_s": r["import_s"],
        "envprint_median_s": r["capture_s"],
        "ratio_median": r["capture_s"] / r["import_s"],
        "runs": runs,
        "sections_s": r["sections"],
    }]


CASES = {"cli": case_cli, "capture": case_capture}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def table(results: list[dict]) -> str:
    lines = ["| case | baseline | baseline median | envprint median | ratio (median of pairs) |",
             "|---|---|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['baseline']} | {r['baseline_median_s'] * 1000:.0f} ms | "
                     f"{r['envprint_median_s'] * 1000:.0f} ms | {r['ratio_median']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            results.extend(CASES[name](args.runs, Path(tmp)))
    print(f"Machine: {machine()}\n")
    print(table(results))
    for r in results:
        for section, seconds in r.get("sections_s", {}).items():
            print(f"  {r['case']}: {section}: {seconds * 1000:.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
