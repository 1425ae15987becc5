#!/usr/bin/env python
"""Benchmarks: envprint side by side with the bare baseline it stands beside, in one run.

Each case runs A (baseline) and B (envprint) interleaved, A B A B ..., after a warm-up pair, so a
drifting shared machine affects both alike; it reports medians, the median of the per-pair B/A
ratios, the peak RSS of each process where a case runs whole processes, and PASS/MISS against
the targets below. Prints Markdown tables and writes JSON (--out).

    python scripts/bench.py [--cases cli,capture,verify,inprocess,save,variants,locate,growth] [--quick] [--big]
                            [--runs N] [--out bench-results/bench.json]

Cases (baseline -> envprint):
  cli        python -c 'import typer, pydantic' -> envprint --help; envprint diff a.json b.json
  capture    import tensorflow -> envprint.capture() once TensorFlow is imported, and its sections
  verify     the bare job (import TensorFlow, load the model, predict the probes) -> envprint verify
             MODEL, for an MLP and a MobileNetV2 (96x96, weights=None), as .keras and as SavedModel
  inprocess  import + load + predict, in one process -> envprint.verify(model, fingerprint=...)
  save       load, model.save() and one predict -> envprint save MODEL
  variants   envprint save MODEL -> envprint save MODEL --variants (the MLP and MobileNetV2 above)
  locate     envprint verify MODEL -> envprint verify MODEL --locate (MobileNetV2 96x96, a record saved
             with --layers); and the layer trace's share of that record's bytes
  growth     verify vs the bare job as probes, outputs and weights grow; digest time vs load time
             (--big adds the ~1 GB model: ~2 GB of disk, ~5 GB of RAM, a few minutes)
  sweep      20 `envprint verify` processes one after another -> envprint sweep --jobs 2 of the same
             20 small models; then sweeps of 10, 20, 50, 100 (per-model cost, peak RSS per worker)
  sweepray   the local pool -> sweep --ray local (Ray tasks) of the same 20; Ray's own start-up
  endpoint   the bare requests carrying the probes (same client, same batches) -> envprint verify
             --endpoint, against the TF Serving stand-in (scripts/bench_endpoint.py)

Targets: --help and diff <= 1.5x; whole-process verify <= 1.10x time and peak RSS; in-process
verify adds <= 5% to the bare start-up; capture() <= 3% of import tensorflow; a ~1 GB model's
integrity check (file digest + weights digest) <= 10% of its load (applied to every size row);
verify --locate <= 2x a plain verify, and the layer trace <= 10% of the record (MobileNetV2);
sweep of 20 <= 0.35x of 20 verify processes; the Ray path <= 1.3x the local pool; verify --endpoint
<= 1.2x the bare requests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_endpoint import case_endpoint

PY = sys.executable
# Measured as installed: pip writes every package's bytecode at install time, so the children may
# write and reuse envprint's own (an editable checkout under PYTHONDONTWRITEBYTECODE would otherwise
# compile envprint's modules from source in every process: ~30 ms of a 250 ms diff).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
_EXE = Path(PY).with_name("envprint")
ENVPRINT = [str(_EXE)] if _EXE.exists() else [PY, "-m", "envprint"]

# Pairs per case: the default run fits in ~15 minutes on 2 cores; raise --runs on a noisy host.
DEFAULT_RUNS = {"cli": 9, "capture": 9, "verify": 3, "inprocess": 3, "save": 3, "variants": 1, "locate": 3, "growth": 2,
                "sweep": 2, "sweepray": 2, "endpoint": 15}  # fmt: skip
QUICK_RUNS = {"cli": 5, "capture": 5, "verify": 2, "inprocess": 2, "save": 2, "variants": 1, "locate": 2, "growth": 1,
              "sweep": 1, "sweepray": 1, "endpoint": 5}  # fmt: skip

Sample = dict  # {"s": wall seconds, "cpu_s": user+sys seconds, "rss_mb": peak RSS, "out": stdout}


# ---------------------------------------------------------------------------------- measuring


def run_measured(argv: list[str], capture: bool = False) -> Sample:
    """Run one process to completion: wall time, its own peak RSS, and (capture) its stdout.

    os.wait4 reaps exactly this child and returns its own rusage, so ru_maxrss is this process's
    peak; getrusage(RUSAGE_CHILDREN) would be the maximum over every child reaped so far.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out if capture else subprocess.DEVNULL, stderr=err, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen not to wait
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(map(str, argv))[:300]} exited {proc.returncode}:\n{tail}")
        out.seek(0)
        text = out.read().decode() if capture else ""
    return {"s": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "out": text}


def process(argv: list[str | Path]) -> Callable[[], Sample]:
    return lambda: run_measured([str(a) for a in argv])


def interleave(a: Callable[[], Sample], b: Callable[[], Sample], runs: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        a(), b()
    sa, sb = [], []
    for _ in range(runs):
        sa.append(a())
        sb.append(b())
    return summarize(sa, sb)


def summarize(sa: list[Sample], sb: list[Sample]) -> dict:
    med = statistics.median
    out = {
        "runs": len(sa),
        "baseline_median_s": med(x["s"] for x in sa),
        "envprint_median_s": med(y["s"] for y in sb),
        "ratio_median": med(y["s"] / x["s"] for x, y in zip(sa, sb, strict=True)),
        "baseline_s": [x["s"] for x in sa],
        "envprint_s": [y["s"] for y in sb],
    }
    if all(x.get("cpu_s") for x in sa + sb):  # CPU time: less sensitive than wall time to a busy neighbour
        out.update(
            baseline_cpu_s=med(x["cpu_s"] for x in sa),
            envprint_cpu_s=med(y["cpu_s"] for y in sb),
            cpu_ratio_median=med(y["cpu_s"] / x["cpu_s"] for x, y in zip(sa, sb, strict=True)),
        )
    if all(x.get("rss_mb") for x in sa + sb):
        out.update(
            baseline_rss_mb=med(x["rss_mb"] for x in sa),
            envprint_rss_mb=med(y["rss_mb"] for y in sb),
            rss_ratio_median=med(y["rss_mb"] / x["rss_mb"] for x, y in zip(sa, sb, strict=True)),
        )
    return out


def target(metric: str, limit: float, label: str) -> dict:
    return {"metric": metric, "max": limit, "label": label}


def judge(row: dict) -> dict:
    judged = []
    for t in row.get("targets", []):  # copies: rows may share one list of targets
        value = row.get(t["metric"])
        judged.append(
            {**t, "value": value, "status": "n/a" if value is None else "PASS" if value <= t["max"] else "MISS"}
        )
    row["targets"] = judged
    return row


# ---------------------------------------------------------------------------------- fixtures

BUILD_CHILD = r"""
import gc, sys
from pathlib import Path
import keras, envprint
root, names = Path(sys.argv[1]), sys.argv[2].split(",")

def stack(width, depth=4):  # float32 Dense stack: 4 * (width**2 + width) * 4 bytes of weights
    return keras.Sequential([keras.Input((width,))] + [keras.layers.Dense(width) for _ in range(depth)])

BUILD = {
    "mlp": lambda: keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                                     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]),
    "mobilenet": lambda: keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None),
    "wide": lambda: keras.Sequential([keras.Input((16,)), keras.layers.Dense(10_000)]),
    "stack_1MB": lambda: stack(256),
    "stack_100MB": lambda: stack(2560),
    "stack_1GB": lambda: stack(8192),
}
EXPORT = {"mlp", "mobilenet"}
EXTRA_PROBES = {"mlp": [1, 32, 1024], "wide": [10, 100, 1000]}  # extra sidecars: NAME_pN/

keras.utils.set_random_seed(0)
for name in names:
    model = BUILD[name]()
    path = root / f"{name}.keras"
    model.save(path)
    envprint.save(path, force=True)
    if name in EXPORT:
        model.export(root / f"{name}_export", verbose=False)
        envprint.save(root / f"{name}_export", force=True)
    for n in EXTRA_PROBES.get(name, []):
        envprint.save(path, out=root / f"{name}_p{n}", num_probes=n, force=True)
    del model
    keras.backend.clear_session()
    gc.collect()
"""


@dataclass
class Context:
    workdir: Path
    runs: dict[str, int]
    big: bool = False
    built: set[str] = field(default_factory=set)

    def need(self, names: list[str]) -> Path:
        """Build the missing models (and their sidecars) in one process: one TensorFlow import."""
        missing = [n for n in names if n not in self.built]
        if missing:
            t0 = time.perf_counter()
            run_measured([PY, "-c", BUILD_CHILD, str(self.workdir), ",".join(missing)])
            print(f"built {', '.join(missing)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            self.built.update(missing)
        return self.workdir


def keras_path(root: Path, name: str) -> tuple[Path, Path]:
    return root / f"{name}.keras", root / f"{name}.keras.envprint"


def export_path(root: Path, name: str) -> tuple[Path, Path]:
    return root / f"{name}_export", root / f"{name}_export" / "assets.extra" / "envprint"


# The job a serving process runs anyway: import TensorFlow, load the model, predict the probes.
BARE_JOB = r"""
import gc, sys
if sys.argv[4:] == ["gc-off"]:  # as envprint's CLI runs (cli.main): no cyclic collection
    gc.disable()
import numpy as np
fmt, path, probes = sys.argv[1:4]
import tensorflow as tf
x = dict(np.load(probes))
n = len(next(iter(x.values())))
if fmt == "keras":
    import keras
    model = keras.models.load_model(path, compile=False)
    model.predict(next(iter(x.values())) if len(x) == 1 else x, batch_size=n, verbose=0)
else:
    fn = tf.saved_model.load(path).signatures["serving_default"]
    fn(**{k: tf.constant(v) for k, v in x.items()})
"""


def bare_job(fmt: str, model: Path, sidecar: Path, *flags: str) -> Callable[[], Sample]:
    return process([PY, "-c", BARE_JOB, fmt, model, sidecar / "probes.npz", *flags])


def verify_job(model: Path, sidecar: Path) -> Callable[[], Sample]:
    return process([*ENVPRINT, "verify", model, "--fingerprint", sidecar])


# ---------------------------------------------------------------------------------- cases


# The floor of any Typer >= 0.29 command that parses arguments: Typer builds a pydantic
# TypeAdapter per parameter, which `import typer, pydantic` (pydantic imports lazily) never pays.
TYPER_FLOOR = r"""
from pathlib import Path
import typer
app = typer.Typer()
@app.command()
def diff(a: Path, b: Path, json_out: bool = typer.Option(False, "--json")) -> None:
    pass
@app.command()
def other() -> None:
    pass
app()
"""


READ_FLOOR = r"""
import sys
from envprint.record.store import read_fingerprint
for path in sys.argv[1:]:
    read_fingerprint(path)
"""


def case_cli(ctx: Context) -> list[dict]:
    fp = ctx.workdir / "fp.json"
    fp.write_text(run_measured([*ENVPRINT, "show", "--json", "--no-tensorflow"], capture=True)["out"])
    baseline = process([PY, "-c", "import typer, pydantic"])
    diff = [*ENVPRINT, "diff", fp, fp]
    out = []
    for name, argv in (("envprint --help", [*ENVPRINT, "--help"]), ("envprint diff a.json b.json", diff)):
        r = interleave(baseline, process(argv), ctx.runs["cli"])
        out.append(
            {
                "case": name,
                "baseline": "python -c 'import typer, pydantic'",
                **r,
                "targets": [target("ratio_median", 1.5, "time <= 1.5x")],
            }
        )
    # No targets: where diff's time goes. Each floor is a part diff cannot skip: Typer parsing two
    # Path arguments; importing pydantic's BaseModel machinery; defining envprint's models and
    # validating the two files with them (no Typer, no diffing, no rendering).
    for label, floor in (
        ("minimal Typer app parsing 2 Path args", [PY, "-c", TYPER_FLOOR, "diff", fp, fp]),
        ("python -c 'from pydantic import BaseModel'", [PY, "-c", "from pydantic import BaseModel"]),
        ("read + validate the 2 files (store.read_fingerprint)", [PY, "-c", READ_FLOOR, fp, fp]),
    ):
        r = interleave(process(floor), process(diff), ctx.runs["cli"], warmup=0)
        out.append({"case": "envprint diff a.json b.json", "baseline": label, **r})
    return out


CAPTURE_CHILD = r"""
import json, sys, time
t0 = time.perf_counter(); import tensorflow; t_import = time.perf_counter() - t0
import envprint
from envprint.host import collect, cpu, gpu
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
    "cpu (/proc/cpuinfo)": cpu.cpu_info,
    "threads (threadpoolctl)": lambda: collect.threads_info((0, 0)),
    "gpu (NVML / nvidia-smi)": gpu.nvidia_facts,
    "loaded libraries (/proc/self/maps)": gpu.loaded_libraries,
    "tensorflow facts": lambda: runtime.tensorflow_info(tensorflow, installed),
    "env": collect.env_info,
}
print(json.dumps({"import_s": t_import, "capture_s": sorted(times)[len(times) // 2],
                  "sections": {k: timeit(v) for k, v in sections.items()}}))
"""


def case_capture(ctx: Context) -> list[dict]:
    runs = ctx.runs["capture"]
    r = json.loads(run_measured([PY, "-c", CAPTURE_CHILD, str(runs)], capture=True)["out"])
    return [
        {
            "case": "envprint.capture() after import tensorflow",
            "baseline": "import tensorflow",
            "baseline_median_s": r["import_s"],
            "envprint_median_s": r["capture_s"],
            "ratio_median": r["capture_s"] / r["import_s"],
            "runs": runs,
            "sections_s": r["sections"],
            "targets": [target("ratio_median", 0.03, "<= 3% of import")],
        }
    ]


MODELS = (("mlp", "MLP"), ("mobilenet", "MobileNetV2 96x96"))
VERIFY_TARGETS = [target("ratio_median", 1.10, "time <= 1.10x"), target("rss_ratio_median", 1.10, "RSS <= 1.10x")]


def case_verify(ctx: Context) -> list[dict]:
    root = ctx.need([m for m, _ in MODELS])
    rows = []
    for name, label in MODELS:
        for fmt, (model, sidecar) in (("keras", keras_path(root, name)), ("savedmodel", export_path(root, name))):
            # One warm-up pair per case (TensorFlow's libraries into the page cache); fixtures are fresh.
            r = interleave(
                bare_job(fmt, model, sidecar), verify_job(model, sidecar), ctx.runs["verify"], warmup=int(not rows)
            )
            rows.append(
                {
                    "case": f"envprint verify: {label}, {'.keras' if fmt == 'keras' else 'SavedModel'}",
                    "baseline": "bare job: import TF, load, predict",
                    **r,
                    "targets": VERIFY_TARGETS,
                }
            )
        # No target: envprint's own cost, against a bare job that also runs without the cyclic
        # collector, as envprint's CLI does (the difference the setting alone makes is not envprint's).
        model, sidecar = keras_path(root, name)
        r = interleave(
            bare_job("keras", model, sidecar, "gc-off"), verify_job(model, sidecar), ctx.runs["verify"], warmup=0
        )
        rows.append({"case": f"envprint verify: {label}, .keras", "baseline": "bare job, collector off too", **r})
    return rows


INPROCESS_CHILD = r"""
import gc, json, resource, sys, time
from pathlib import Path
path, sidecar, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np, tensorflow as tf, keras
model = keras.models.load_model(path, compile=False)
x = np.load(sidecar / "probes.npz")
x = x[x.files[0]]
model.predict(x, batch_size=len(x), verbose=0)
if mode == "pydantic":  # a server built on pydantic (FastAPI, KServe, MLflow's scoring server) has
    from pydantic import BaseModel  # defined and validated its request models before the check

    class PredictRequest(BaseModel):
        instances: list[list[float]]

    PredictRequest.model_validate({"instances": [[0.0]]})
bare, bare_cpu, bare_rss = time.perf_counter() - t0, time.process_time() - c0, peak()
# The start-up leaves a full collection of TensorFlow's ~300k objects due: whatever allocates next
# pays it (on 2 cores ~150 ms), envprint or the server. "settle" runs it here, outside both timers.
t0 = time.perf_counter()
if mode != "as-is":
    gc.collect()
gc_s = time.perf_counter() - t0
t0, c0 = time.perf_counter(), time.process_time()
import envprint, envprint.check.verifier  # the models (pydantic) come with it
imports = time.perf_counter() - t0
report = envprint.verify(model, fingerprint=sidecar)
first, first_cpu, first_rss = time.perf_counter() - t0, time.process_time() - c0, peak()
assert report.passed, report.verdict
t0 = time.perf_counter()
envprint.verify(model, fingerprint=sidecar)
second = time.perf_counter() - t0

# Where a warm verify spends its time: its steps one by one, through the public-ish functions
# (a step whose function changed is reported as missing, not as a crash of the benchmark).
from envprint.check import compare
from envprint.record import npz, store
from envprint.check.capture import capture
from envprint.causes.diff import diff_fingerprints
from envprint.causes.explain import explain
from envprint.models import IdentityCheck, Tolerance
from envprint._tf import identity, loading
fp = sidecar / "fingerprint.json"
saved = store.read_fingerprint(fp)
probes = npz.load_arrays(sidecar / saved.probe_arrays.file)
reference = npz.load_arrays(sidecar / saved.reference_arrays.file)
loaded = loading.wrap_model(model, saved.model.format)
obtained = loaded.predict(probes)
outputs = compare.compare_outputs(reference, obtained, Tolerance())
now = capture()
def timeit(fn, n=5):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]
sections = {
    "read fingerprint.json": lambda: store.read_fingerprint(fp),
    "load probes + reference .npz": lambda: [npz.load_arrays(sidecar / r.file)
                                             for r in (saved.probe_arrays, saved.reference_arrays)],
    "model_identity (weights digest)": lambda: identity.model_identity(loading.wrap_model(model, saved.model.format)),
    "predict x2 (check + randomness)": lambda: (loaded.predict(probes), loaded.predict(probes)),
    "compare_outputs": lambda: compare.compare_outputs(reference, obtained, Tolerance()),
    "capture()": capture,
    "diff_fingerprints + explain": lambda: explain(saved, diff_fingerprints(saved, now, "a", "b"),
                                                   IdentityCheck(weights="same"), outputs),
}
timed = {}
for name, fn in sections.items():
    try:
        timed[name] = timeit(fn)
    except Exception as exc:
        print(f"section {name!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
print(json.dumps({"bare_s": bare, "bare_cpu_s": bare_cpu, "gc_s": gc_s, "first_s": first, "first_cpu_s": first_cpu,
                  "imports_s": imports, "second_s": second, "bare_rss_mb": bare_rss, "first_rss_mb": first_rss,
                  "sections": timed}))
"""


def case_inprocess(ctx: Context) -> list[dict]:
    root = ctx.need([m for m, _ in MODELS])
    rows = []
    med = statistics.median
    for name, label in MODELS:
        model, sidecar = keras_path(root, name)
        argv = [PY, "-c", INPROCESS_CHILD, str(model), str(sidecar)]
        if not rows:
            run_measured([*argv, "settle"], capture=True)  # warm-up (page cache)
        # One process is one pair: the bare start-up (A), then verify of the loaded model (B). Each
        # run measures it with the collector settled first, as the start-up left it, and in a
        # server whose start-up imports pydantic itself.
        res = {mode: [] for mode in ("settle", "as-is", "pydantic")}
        for _ in range(ctx.runs["inprocess"]):
            for mode in res:
                res[mode].append(json.loads(run_measured([*argv, mode], capture=True)["out"]))
        for mode, runs in res.items():
            # CPU time of this process (all its threads): on a shared, busy machine the wall times of
            # A and B drift apart by seconds; cpu_ratio_median is the steadier "adds".
            sa = [{"s": r["bare_s"], "cpu_s": r["bare_cpu_s"], "rss_mb": r["bare_rss_mb"]} for r in runs]
            sb = [{"s": r["first_s"], "cpu_s": r["first_cpu_s"], "rss_mb": r["first_rss_mb"]} for r in runs]
            settled = mode == "settle"
            row = {
                "case": f"envprint.verify(model) in process: {label}, .keras"
                + {"settle": "", "as-is": ", collector not settled", "pydantic": ", server built on pydantic"}[mode],
                "baseline": "import TF + load + predict, same process",
                **summarize(sa, sb),
                "imports_s": med(r["imports_s"] for r in runs),
            }
            if settled:  # the target applies to envprint's own cost; the other rows show the context
                row.update(
                    gc_collect_s=med(r["gc_s"] for r in runs),
                    warm_second_call_s=med(r["second_s"] for r in runs),
                    sections_s={
                        k: med(r["sections"][k] for r in runs if k in r["sections"]) for k in runs[0]["sections"]
                    },
                    targets=[target("ratio_median", 0.03, "adds <= 3%")],
                )
            rows.append(row)
    return rows


BARE_SAVE = r"""
import sys
import numpy as np
path, probes, out = sys.argv[1:4]
import keras
model = keras.models.load_model(path, compile=False)
x = np.load(probes)
x = x[x.files[0]]
model.save(out)
model.predict(x, batch_size=len(x), verbose=0)
"""


def case_save(ctx: Context) -> list[dict]:
    root = ctx.need([m for m, _ in MODELS])
    rows = []
    for name, label in MODELS:
        model, sidecar = keras_path(root, name)
        bare = process([PY, "-c", BARE_SAVE, model, sidecar / "probes.npz", root / f"resaved_{name}.keras"])
        ours = process([*ENVPRINT, "save", model, "--out", root / f"saved_{name}.envprint", "--force"])
        r = interleave(bare, ours, ctx.runs["save"], warmup=int(not rows))
        rows.append({"case": f"envprint save: {label}, .keras", "baseline": "load, model.save(), one predict", **r})
    return rows


def case_variants(ctx: Context) -> list[dict]:
    """save -> save --variants (every kind this machine has: oneDNN flipped, the instruction-set caps,
    1 thread, one probe per call, JAX): what recording the fleet's variants costs, and in how many children."""
    root = ctx.need([m for m, _ in MODELS])
    rows = []
    for name, label in MODELS:
        model, _ = keras_path(root, name)
        out = root / f"variants_{name}.envprint"
        plain = process([*ENVPRINT, "save", model, "--out", root / f"plain_{name}.envprint", "--force"])
        ours = process([*ENVPRINT, "save", model, "--out", out, "--force", "--variants"])
        r = interleave(plain, ours, ctx.runs["variants"], warmup=0)
        recorded = json.loads((out / "fingerprint.json").read_text())["variants"]
        ok = sum(1 for v in recorded["variants"] if v["status"] == "recorded")
        rows.append({"case": f"envprint save --variants: {label}, .keras ({ok} of {len(recorded['variants'])} variants recorded, "
                     f"{len(recorded['classes'])} classes, {recorded['parallel']} children at once, children "
                     f"{recorded['seconds']:.0f} s)", "baseline": "envprint save", **r})  # fmt: skip
    return rows


def case_locate(ctx: Context) -> list[dict]:
    """verify --locate against a plain verify of the same record (MobileNetV2 96x96, 8 probes); the trace's share."""
    root = ctx.need(["mobilenet"])
    model, _ = keras_path(root, "mobilenet")
    record = root / "layers_mobilenet.envprint"
    subprocess.run([*ENVPRINT, "save", model, "--out", record, "--layers", "--force"], check=True, capture_output=True)
    plain = process([*ENVPRINT, "verify", model, "--fingerprint", record])
    located = process([*ENVPRINT, "verify", model, "--fingerprint", record, "--locate"])
    r = interleave(plain, located, ctx.runs.get("locate", 2))
    limit = [target("ratio_median", 2.0, "verify --locate <= 2x a plain verify")]
    text = (record / "fingerprint.json").read_text(encoding="utf-8")
    without = {k: v for k, v in json.loads(text).items() if k != "layer_trace"}  # as envprint writes it, less the trace
    trace = len(text.encode()) - len(
        (json.dumps(without, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    )
    trace += (record / "layers.npz").stat().st_size
    total = sum(f.stat().st_size for f in record.iterdir())
    share = {"trace_bytes": trace, "record_bytes": total, "trace_share": trace / (total - trace)}
    return [
        {"case": "verify --locate: MobileNetV2 96x96", "baseline": "plain verify", **r, "targets": limit},
        {"case": "save --layers: trace size, MobileNetV2 96x96, 8 probes", **share,
         "targets": [target("trace_share", 0.10, "the trace adds <= 10% to the record")]},
    ]  # fmt: skip


SIZE_CHILD = r"""
import gc, json, sys, time
from pathlib import Path
path = Path(sys.argv[1])
import tensorflow, keras
from envprint.record import digests
from envprint.check import verifier
from envprint._tf import identity, loading
def timed(fn):
    t0 = time.perf_counter(); out = fn(); return out, time.perf_counter() - t0
_, files_s = timed(lambda: digests.tree_digests(path, exclude=[]))  # also warms the page cache
del _
loading.load_model(path, fmt="keras"); gc.collect()  # warm-up: the first load pays one-time costs
# The load alone, then verify's arrangement (the files hashed on a second thread while the model
# loads), alternated twice; the faster of each.
alone, both = [], []
for _ in range(2):
    model, s = timed(lambda: loading.load_model(path, fmt="keras")); alone.append(s); del model; gc.collect()
    (model, _), s = timed(lambda: verifier.load_and_hash(path, exclude=[], fmt="keras")); both.append(s)
    if len(both) < 2:
        del model; gc.collect()
load_s, both_s = min(alone), min(both)
# needed only when the files changed, or for a model already in memory
_, weights_s = timed(lambda: identity.model_identity(model))
print(json.dumps({"load_s": load_s, "file_digest_s": files_s, "weights_digest_s": weights_s,
                  "load_and_file_digest_s": both_s, "bytes": path.stat().st_size}))
"""


def _series(
    ctx: Context, series: str, unit: str, points: list[tuple[float, Path, Path]], warmup: int = 0
) -> list[dict]:
    rows = []
    for size, model, sidecar in points:
        r = interleave(
            bare_job("keras", model, sidecar),
            verify_job(model, sidecar),
            ctx.runs["growth"],
            warmup=warmup if not rows else 0,
        )
        rows.append(
            {
                "case": f"growth: {series}, {size:,.0f} {unit}",
                "series": series,
                "size": size,
                "unit": unit,
                "baseline": "bare job",
                **r,
            }
        )
    return rows


def case_growth(ctx: Context) -> list[dict]:
    sizes = ["stack_1MB", "stack_100MB"] + (["stack_1GB"] if ctx.big else [])
    root = ctx.need(["mlp", "wide", *sizes])
    rows = _series(
        ctx, "MLP probes", "probes", [(n, root / "mlp.keras", root / f"mlp_p{n}") for n in (1, 32, 1024)], warmup=1
    )
    rows += _series(
        ctx,
        "output elements",
        "elements",
        [(n * 10_000, root / "wide.keras", root / f"wide_p{n}") for n in (10, 100, 1000)],
    )
    points = []
    for name in sizes:
        model, sidecar = keras_path(root, name)
        points.append((model.stat().st_size / 1e6, model, sidecar))
    size_rows = _series(ctx, "model weights", "MB", points)
    for row, (_, model, _) in zip(size_rows, points, strict=True):
        argv = [PY, "-c", SIZE_CHILD, str(model)]
        res = [json.loads(run_measured(argv, capture=True)["out"]) for _ in range(ctx.runs["growth"])]
        keys = ("load_s", "file_digest_s", "weights_digest_s", "load_and_file_digest_s")
        med = {k: statistics.median(r[k] for r in res) for k in keys}
        row.update(
            **med,
            # What verify adds to the load: the file digest runs beside it; byte-identical files
            # need no weights digest.
            check_added_to_load=statistics.median(r["load_and_file_digest_s"] / r["load_s"] - 1 for r in res),
            # Both digests one after the other, no overlap (files changed, or a model in memory).
            sequential_share_of_load=statistics.median(
                (r["file_digest_s"] + r["weights_digest_s"]) / r["load_s"] for r in res
            ),
            targets=[target("check_added_to_load", 0.10, "check adds <= 10% to load")],
        )
    return rows + size_rows


# ---------------------------------------------------------------------------------- sweep (many models)

SWEEP_BUILD_CHILD = r"""
import sys
from pathlib import Path
import keras, envprint
root, n = Path(sys.argv[1]), int(sys.argv[2])
g = lambda s: keras.initializers.GlorotUniform(seed=s)
for i in range(n):  # small MLPs and CNNs, as the test suite builds them
    if i % 2:
        inp = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=g(i))(inp)
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        inp = keras.Input((32,))
        x = keras.layers.Dense(64, activation="relu", kernel_initializer=g(i))(inp)
    model = keras.Model(inp, keras.layers.Dense(10, kernel_initializer=g(i + 1000))(x))
    path = root / f"m{i:03d}.keras"
    model.save(path)
    envprint.save(path, force=True)
    keras.backend.clear_session()
"""
SWEEP_SIZES = (10, 20, 50, 100)


def _sweep_models(ctx: Context) -> list[Path]:
    root = ctx.workdir / "sweep"
    if not root.exists():
        root.mkdir()
        t0 = time.perf_counter()
        run_measured([PY, "-c", SWEEP_BUILD_CHILD, str(root), str(max(SWEEP_SIZES))])
        print(f"built {max(SWEEP_SIZES)} sweep models in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return sorted(root.glob("m*.keras"))


def _listing(ctx: Context, models: list[Path]) -> Path:
    path = ctx.workdir / f"sweep_{len(models)}.txt"
    path.write_text("".join(f"{m}\n" for m in models))
    return path


def _sweep_run(listing: Path, *flags: str) -> Callable[[], Sample]:
    argv = [*ENVPRINT, "sweep", "--list", str(listing), "--json", *flags]
    return lambda: run_measured(argv, capture=True)


def _one_after_another(models: list[Path]) -> Callable[[], Sample]:
    def run() -> Sample:
        samples = [run_measured([*ENVPRINT, "verify", str(m)]) for m in models]
        return {
            "s": sum(x["s"] for x in samples),
            "cpu_s": sum(x["cpu_s"] for x in samples),
            "rss_mb": max(x["rss_mb"] for x in samples),
        }

    return run


def _summary(sample: Sample) -> dict:
    return json.loads(sample["out"].strip().splitlines()[-1])


def case_sweep(ctx: Context) -> list[dict]:
    """sweep --jobs 2 vs `envprint verify` per model; per-model cost as N grows; worker RSS over 100 models."""
    models = _sweep_models(ctx)
    runs = ctx.runs.get("sweep", 2)
    twenty = _listing(ctx, models[:20])
    row = interleave(_one_after_another(models[:20]), _sweep_run(twenty, "--jobs", "2"), runs, warmup=0)
    rows = [{"case": "envprint sweep of 20 small models, --jobs 2", "baseline": "20 envprint verify processes, one after another",
             **row, "targets": [target("ratio_median", 0.35, "time <= 0.35x")]}]  # fmt: skip
    for n in SWEEP_SIZES:
        # No recycling here: a leak must show in the RSS, not be hidden by fresh workers.
        sample = _sweep_run(_listing(ctx, models[:n]), "--jobs", "2", "--max-models-per-worker", "1000")()
        items = _summary(sample)["models"]
        per_worker: dict[int, list[int]] = {}
        for item in sorted(items, key=lambda i: i["model"]):  # handed out in name order: each worker's history
            per_worker.setdefault(item["worker"], []).append(item["worker_rss_bytes"])
        rows.append({
            "case": f"sweep growth {n}", "series": "sweep", "size": n, "unit": "models", "sweep_s": sample["s"],
            "model_s_median": statistics.median(i["seconds"] for i in items),
            # per worker: RSS after its 3rd model (warm), after its last, and its peak
            "worker_rss_mb": {str(k): [v[min(2, len(v) - 1)] / 2**20, v[-1] / 2**20, max(v) / 2**20]
                              for k, v in per_worker.items()},
        })  # fmt: skip
    return rows


def case_sweepray(ctx: Context) -> list[dict]:
    """The same sweep of 20 as Ray tasks on a local Ray started by the command, vs the local pool; Ray's start-up."""
    models = _sweep_models(ctx)
    runs = ctx.runs.get("sweepray", 2)
    twenty = _listing(ctx, models[:20])
    env = {"RAY_AUTH_MODE": "disabled"}  # a throwaway local cluster: no token written to ~/.ray
    os.environ.update(env)
    ENV.update(env)
    row = interleave(
        _sweep_run(twenty, "--jobs", "2"), _sweep_run(twenty, "--ray", "local", "--jobs", "2"), runs, warmup=0
    )
    startup = [run_measured([PY, "-c", "import ray; ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False); "
                             "ray.shutdown()"])["s"] for _ in range(runs)]  # fmt: skip
    imp = [run_measured([PY, "-c", "import ray"])["s"] for _ in range(runs)]
    rows = [{"case": "envprint sweep of 20 small models, --ray local --jobs 2", "baseline": "the local pool, --jobs 2",
             **row, "ray_import_s": statistics.median(imp), "ray_init_shutdown_s": statistics.median(startup),
             "targets": [target("ratio_median", 1.3, "time <= 1.3x")]}]  # fmt: skip
    # The same sweep on a Ray cluster already running on this machine (2 CPUs): Ray's start-up is paid
    # once by `ray start`, not by each sweep. The head runs in its own session, stopped by its group.
    with _ray_head(2) as address:
        row = interleave(_sweep_run(twenty, "--jobs", "2"), _sweep_run(twenty, "--ray", address), runs, warmup=0)
    rows.append({"case": "envprint sweep of 20 small models, --ray ADDRESS (a running 2-CPU cluster)",
                 "baseline": "the local pool, --jobs 2", **row,
                 "targets": [target("ratio_median", 1.3, "time <= 1.3x")]})  # fmt: skip
    return rows


@contextlib.contextmanager
def _ray_head(cpus: int):
    import shutil
    import signal
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="epray-", dir="/tmp")  # Ray's socket paths must stay short
    head = subprocess.Popen(
        [str(Path(PY).with_name("ray")), "start", "--head", "--block", "--port", str(port), "--num-cpus", str(cpus),
         "--include-dashboard", "false", "--temp-dir", temp, "--disable-usage-stats"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ray start --head did not come up")
            time.sleep(0.5)
        time.sleep(3)  # the raylet registers after the GCS port opens
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def sweep_growth_table(rows: list[dict]) -> str:
    lines = ["| models | sweep --jobs 2 | per model (overall) | marginal per model | one model in its worker (median) | "
             "RSS per worker: after its 3rd model -> after its last (peak) |", "|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    prev = None
    for r in rows:
        marginal = "" if prev is None else _ms((r["sweep_s"] - prev["sweep_s"]) / (r["size"] - prev["size"]))
        rss = "; ".join(f"{a:.0f} -> {b:.0f} MB ({c:.0f})" for a, b, c in r["worker_rss_mb"].values())
        lines.append(f"| {r['size']} | {_ms(r['sweep_s'])} | {_ms(r['sweep_s'] / r['size'])} | {marginal} | "
                     f"{_ms(r['model_s_median'])} | {rss} |")  # fmt: skip
        prev = r
    return "\n".join(lines)


CASES = {
    "cli": case_cli,
    "capture": case_capture,
    "verify": case_verify,
    "inprocess": case_inprocess,
    "save": case_save,
    "variants": case_variants,
    "locate": case_locate,
    "growth": case_growth,
    "sweep": case_sweep,
    "sweepray": case_sweepray,
    "endpoint": case_endpoint,
}


# ---------------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores, {cpu}{mem}, Python {platform.python_version()}"


def _ms(s: float | None) -> str:
    return "" if s is None else f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def _mb(v: float | None) -> str:
    return "" if v is None else f"{v:.0f} MB"


def _x(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}x"


def _verdicts(row: dict) -> str:
    return "; ".join(f"{t['label']}: {t['status']}" for t in row.get("targets", []))


def table(results: list[dict]) -> str:
    lines = [
        "| case | baseline | baseline median | envprint median | ratio (median of pairs) | CPU-time ratio | "
        "peak RSS baseline | peak RSS envprint | RSS ratio | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ratio = _x(r["ratio_median"])
        if r["case"].startswith(("envprint.verify(model)", "envprint.capture")):
            ratio += f" (adds {r['ratio_median']:.1%})"
        lines.append(
            f"| {r['case']} | {r['baseline']} | {_ms(r['baseline_median_s'])} | {_ms(r['envprint_median_s'])} | "
            f"{ratio} | {_x(r.get('cpu_ratio_median'))} | {_mb(r.get('baseline_rss_mb'))} | {_mb(r.get('envprint_rss_mb'))} | "
            f"{_x(r.get('rss_ratio_median'))} | {_verdicts(r)} |"
        )
    return "\n".join(lines)


def growth_table(rows: list[dict]) -> str:
    lines = [
        "| series | size | bare job | verify | added time | ratio | CPU-time ratio | RSS bare | RSS verify | added RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        added = r["envprint_median_s"] - r["baseline_median_s"]
        lines.append(
            f"| {r['series']} | {r['size']:,.0f} {r['unit']} | {_ms(r['baseline_median_s'])} | "
            f"{_ms(r['envprint_median_s'])} | {_ms(added)} | {_x(r['ratio_median'])} | {_x(r.get('cpu_ratio_median'))} | "
            f"{_mb(r.get('baseline_rss_mb'))} | {_mb(r.get('envprint_rss_mb'))} | "
            f"{_mb(r.get('envprint_rss_mb', 0) - r.get('baseline_rss_mb', 0))} |"
        )
    return "\n".join(lines)


def size_table(rows: list[dict]) -> str:
    lines = [
        "| model | load | load + file digest beside it | check adds to load | file digest | weights digest | "
        "both digests in sequence / load | target |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']:,.0f} MB | {_ms(r['load_s'])} | {_ms(r['load_and_file_digest_s'])} | "
            f"{r['check_added_to_load']:+.0%} | {_ms(r['file_digest_s'])} | {_ms(r['weights_digest_s'])} | "
            f"{r['sequential_share_of_load']:.0%} | {_verdicts(r)} |"
        )
    return "\n".join(lines)


def growth_summary(rows: list[dict]) -> list[str]:
    """How verify's added time and memory grow: first and last point, and the marginal cost."""
    out = []
    for series in dict.fromkeys(r["series"] for r in rows):
        pts = [r for r in rows if r["series"] == series]
        first, last = pts[0], pts[-1]
        dt = [p["envprint_median_s"] - p["baseline_median_s"] for p in (first, last)]
        dm = [p.get("envprint_rss_mb", 0) - p.get("baseline_rss_mb", 0) for p in (first, last)]
        span = last["size"] - first["size"]
        per = 10 ** math.floor(math.log10(span)) if span > 0 else 1
        out.append(
            f"{series} {first['size']:,.0f} -> {last['size']:,.0f} {first['unit']} (x{last['size'] / first['size']:.0f}): "
            f"added time {_ms(dt[0])} -> {_ms(dt[1])} ({(dt[1] - dt[0]) / span * per * 1000:+.1f} ms per {per:g} {first['unit']}), "
            f"added RSS {dm[0]:.0f} -> {dm[1]:.0f} MB ({(dm[1] - dm[0]) / span * per:+.1f} MB per {per:g} {first['unit']})"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {','.join(CASES)}")
    ap.add_argument("--runs", type=int, help="measured pairs per case (default: per case, see DEFAULT_RUNS)")
    ap.add_argument("--quick", action="store_true", help="fewer pairs per case (QUICK_RUNS): a smoke run")
    ap.add_argument("--big", action="store_true", help="growth: add the ~1 GB model")
    ap.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    args = ap.parse_args()
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    runs = dict(QUICK_RUNS if args.quick else DEFAULT_RUNS)
    if args.runs:
        runs = dict.fromkeys(runs, args.runs)

    # Bytecode for envprint's own modules, as a pip install writes it (see ENV).
    subprocess.run(
        [PY, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "envprint")],
        env=ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    results: list[dict] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envprint-bench-") as tmp:
        ctx = Context(Path(tmp), runs, big=args.big)
        for name in names:
            t0 = time.perf_counter()
            results.extend(judge(r) for r in CASES[name](ctx))
            print(f"case {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    total = time.perf_counter() - t_start

    sweep_rows = [r for r in results if r.get("series") == "sweep"]
    results = [r for r in results if r.get("series") != "sweep"]
    size_rows = [r for r in results if "trace_share" in r]
    main_rows = [r for r in results if "series" not in r and "trace_share" not in r]
    growth_rows = [r for r in results if "series" in r]
    print(f"Machine: {machine()}; {'quick' if args.quick else 'default'} runs {runs}; total {total:.0f} s\n")
    for r in size_rows:
        print(f"{r['case']}: {r['trace_bytes']:,} of {r['record_bytes']:,} bytes, "
              f"+{r['trace_share']:.1%} over the record without it | {_verdicts(r)}\n")  # fmt: skip
    if main_rows:
        print(table(main_rows))
        for r in main_rows:
            for section, seconds in r.get("sections_s", {}).items():
                print(f"  {r['case']}: {section}: {seconds * 1000:.1f} ms")
            if "warm_second_call_s" in r:
                print(f"  {r['case']}: a second (warm) call: {_ms(r['warm_second_call_s'])}")
            if "imports_s" in r:
                print(
                    f"  {r['case']}: of the first call, importing envprint and its pydantic models: "
                    f"{_ms(r['imports_s'])}"
                )
            if "gc_collect_s" in r:
                print(
                    f"  {r['case']}: the full collection the start-up left due (outside both timers): "
                    f"{_ms(r['gc_collect_s'])}"
                )
    if growth_rows:
        print("\nGrowth (envprint verify vs the bare job, whole processes):\n")
        print(growth_table(growth_rows))
        print()
        for line in growth_summary(growth_rows):
            print(f"- {line}")
        size_rows = [r for r in growth_rows if "load_s" in r]
        if size_rows:
            print(
                "\nIntegrity check vs load (in one process; the load alone, then verify's load with the file digest beside it):\n"
            )
            print(size_table(size_rows))
    for r in main_rows:
        if "ray_init_shutdown_s" in r:
            print(
                f"  {r['case']}: Ray's own start-up: import ray {_ms(r['ray_import_s'])}, "
                f"ray.init() + shutdown of a local cluster {_ms(r['ray_init_shutdown_s'])}"
            )
    if sweep_rows:
        print("\nSweep as the number of models grows (--jobs 2, workers never recycled):\n")
        print(sweep_growth_table(sweep_rows))
        results += sweep_rows
    misses = [
        f"{r['case']}: {t['label']} ({t['value']:.3g})"
        for r in results
        for t in r.get("targets", [])
        if t["status"] == "MISS"
    ]
    print("\nMissed targets:" if misses else "\nAll targets met.")
    for m in misses:
        print(f"- {m}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": machine(), "runs": runs, "big": args.big, "total_s": total, "results": results}, indent=2
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
