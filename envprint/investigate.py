"""investigate(): test each suspected cause of a verify mismatch by restoring it in a fresh process.

Owns: the restore catalogue (which saved setting a cause id maps to, and how a child process
puts it back: environment variables before TensorFlow starts, runtime calls before the model
loads), running one child per setting under a timeout, and judging each child's outputs against
the saved reference relative to a *control* child that changes nothing. explain.py ranks causes
from what differs; this module measures them.

Why child processes: oneDNN, thread pools and device visibility are fixed when TensorFlow
starts, and determinism, TF32 and dtype policy are process-global: only a fresh interpreter
can try one setting without the others, and without disturbing the caller's process.

The parent never imports TensorFlow. The child (``_child_main``, run through ``python -c``)
reaches it through ``envprint._tf`` only. Each child writes its outputs to a temporary
``.npz`` and the facts it ended up with (oneDNN on?, GPUs visible?) to JSON, so a setting that
TensorFlow ignored on this host is reported as untestable, never as ruled out.

Why one module of ~700 lines (over the house's ~400): the plan, the child and the judging
share one ``Restore`` contract, and the child's entry point is ``envprint.investigate``. The
seams for a split are the section rules: the plan (a catalogue, like explain.py's) and the
child (``_child_main``/``_child_run``, which would sit well under ``envprint._tf``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from . import compare, store
from .constraints import install_command
from .errors import EnvprintError
from .models import (
    DiffEntry,
    Fingerprint,
    InvestigationResult,
    InvestigationStatus,
    OutputComparison,
    Report,
    Tolerance,
)

# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Restore:
    """One child run: variables set before TensorFlow starts, calls made before the model loads."""

    cause: str
    setting: str
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset
    runtime: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)  # facts the child must report, or it is untestable
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decided:
    """A cause judged without a child: it cannot be restored here (or cannot matter)."""

    cause: str
    setting: str
    status: InvestigationStatus
    detail: str
    remedy: str | None = None
    fields: tuple[str, ...] = ()


Step = Restore | Decided


@dataclass(frozen=True)
class _Ctx:
    saved: Fingerprint
    fingerprint: str  # as the user should type it in a remedy
    remedies: dict[str, str]  # cause -> remedy from the report's explanations
    current_gpus: frozenset[str]


def _gpus(fp: Fingerprint) -> dict[str, str]:
    return {d.name: d.model or d.name for d in fp.devices.physical or [] if d.device_type == "GPU"}


def _current_gpus(saved: Fingerprint, entries: Iterable[DiffEntry]) -> frozenset[str]:
    """This host's GPUs, read from the diff against the saved fingerprint (the parent has no TensorFlow)."""
    gpus = {n.removeprefix("/physical_device:") for n in _gpus(saved)}
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


def _variables(entries: Iterable[DiffEntry], patterns: tuple[str, ...] = ("env.variables.*", "threads.variables.*")):
    """Saved values of the variables among ``entries``: {name: value, or None where the saved host had it unset}."""
    return {e.path.split(".", 2)[2]: e.a for e in entries if any(fnmatchcase(e.path, p) for p in patterns)}


def _span(entries: list[DiffEntry]) -> str:
    e = entries[0]
    more = f" (+{len(entries) - 1} more)" if len(entries) > 1 else ""
    return f"{e.path}: {e.a if e.a is not None else '(absent)'} -> {e.b if e.b is not None else '(absent)'}{more}"


def _paths(entries: Iterable[DiffEntry]) -> tuple[str, ...]:
    return tuple(e.path for e in entries)


def _label(env: dict[str, str | None], extra: str = "") -> str:
    parts = [f"{k}={v}" if v is not None else f"unset {k}" for k, v in sorted(env.items())]
    return " ".join(parts + ([extra] if extra else [])) or extra


def _untestable(c: _Ctx, entries: list[DiffEntry], why: str) -> list[Step]:
    cause = entries[0].topic
    return [Decided(cause, _span(entries), "untestable", why, c.remedies.get(cause), _paths(entries))]


def _onednn(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    o = c.saved.tensorflow.onednn if c.saved.tensorflow else None
    want = None if o is None else o.enabled if o.enabled is not None else o.default
    if want is None:
        return _untestable(c, entries, "the saved host's oneDNN state is unknown")
    env = {"TF_ENABLE_ONEDNN_OPTS": "1" if want else "0"}
    return [Restore("onednn", _label(env), env, expect={"onednn": want}, fields=_paths(entries))]


def _threads(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    t = c.saved.threads
    env: dict[str, str | None] = dict(_variables(entries))
    runtime = {}
    for key, var, value in (
        ("intra", "TF_NUM_INTRAOP_THREADS", t.tf_intra_op_effective),
        ("inter", "TF_NUM_INTEROP_THREADS", t.tf_inter_op_effective),
    ):
        if value:
            env[var], runtime[key] = str(value), value
    if not env:
        return _untestable(c, entries, "the saved thread counts are unknown")
    return [Restore("threads", _label(env), env, runtime, fields=_paths(entries))]


def _dtype_policy(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    policy = c.saved.tensorflow.dtype_policy if c.saved.tensorflow else None
    if policy is None:
        return _untestable(c, entries, "the saved dtype policy is unknown")
    return [
        Restore(
            "dtype_policy",
            f"global dtype policy {policy!r}",
            runtime={"dtype_policy": policy},
            expect={"dtype_policy": policy},
            fields=_paths(entries),
        )
    ]


# Sub-settings of 'determinism_settings': (name, diff paths, runtime key, fingerprint attribute).
DETERMINISM = (
    (
        "op determinism",
        ("tensorflow.op_determinism", "env.variables.TF_DETERMINISTIC_OPS", "env.variables.TF_CUDNN_DETERMINISTIC"),
        "op_determinism",
    ),
    ("TF32", ("tensorflow.tensor_float_32", "env.variables.*TF32*"), "tensor_float_32"),
    ("XLA", ("tensorflow.jit", "env.variables.*XLA_FLAGS"), "jit"),
    ("grappler", ("tensorflow.grappler.*",), "grappler"),
)


def _determinism(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    steps: list[Step] = []
    tf = c.saved.tensorflow
    for name, patterns, key in DETERMINISM:
        mine = [e for e in entries if any(fnmatchcase(e.path, p) for p in patterns)]
        if not mine:
            continue
        env = _variables(mine)
        runtime: dict[str, Any] = {}
        value = getattr(tf, key, None) if tf else None
        if key == "grappler" and value is not None:
            value = {k: v for k, v in value.items() if f"tensorflow.grappler.{k}" in _paths(mine)}
        if value is not None and (key != "op_determinism" or value):  # a fresh process starts with it off
            runtime[key] = value
        if not env and not runtime:
            steps.append(
                Decided(
                    "determinism_settings",
                    _span(mine),
                    "ruled_out",
                    f"not run: a fresh process already has {name} as the saved host had it, "
                    "and the control run still differs",
                    fields=_paths(mine),
                )
            )
            continue
        if key == "tensor_float_32" and not _gpus(c.saved) and not c.current_gpus:
            steps.append(
                Decided(
                    "determinism_settings",
                    _span(mine),
                    "ruled_out",
                    "not run: TF32 changes GPU kernels only, and neither host has a GPU",
                    fields=_paths(mine),
                )
            )
            continue
        extra = ", ".join(f"{k}={v!r}" for k, v in runtime.items())
        steps.append(
            Restore(
                "determinism_settings",
                f"{name}: " + _label(env, extra),
                env,
                runtime,
                expect={k: v for k, v in runtime.items() if k != "grappler"},
                fields=_paths(mine),
            )
        )
    return steps


def _device(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    saved = _gpus(c.saved)
    if not saved and c.current_gpus:
        env = {"CUDA_VISIBLE_DEVICES": "-1"}
        return [
            Restore(
                "device",
                _label(env, "(CPU only, like the saved host)"),
                env,
                expect={"gpus": 0},
                fields=_paths(entries),
            )
        ]
    if saved and not c.current_gpus:
        return _untestable(
            c, entries, f"the saved host ran on a GPU ({', '.join(sorted(set(saved.values())))}) and this host has none"
        )
    visible = ("env.variables.CUDA_VISIBLE_DEVICES", "devices.cuda_visible_devices")
    if all(e.path in visible for e in entries):  # the same GPUs, another selection of them
        env = {"CUDA_VISIBLE_DEVICES": c.saved.devices.cuda_visible_devices}
        return [Restore("device", _label(env), env, fields=_paths(entries))]
    return _untestable(c, entries, "the devices differ and a device cannot be swapped here")


def _seed(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    seed = c.saved.seeds.declared
    env = _variables(entries, ("env.variables.PYTHONHASHSEED",))
    if any(e.path == "seeds.pythonhashseed" for e in entries):
        env["PYTHONHASHSEED"] = c.saved.seeds.pythonhashseed
    if seed is None and not env:
        return _untestable(c, entries, "the saved host declared no seed")
    runtime = {"seed": seed} if seed is not None else {}
    return [
        Restore("seed", _label(env, f"seed {seed}" if seed is not None else ""), env, runtime, fields=_paths(entries))
    ]


def _environment(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    env = _variables(entries, ("env.variables.*",))
    if not env:
        return _untestable(c, entries, "no saved variable value to restore")
    return [Restore("environment", _label(env), env, fields=_paths(entries))]


def _cannot(why: str, remedy: Callable[[_Ctx, str], str | None]) -> Callable[[_Ctx, list[DiffEntry]], list[Step]]:
    def steps(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
        cause = entries[0].topic
        return [
            Decided(
                cause,
                _span(entries),
                "untestable",
                f"cannot be restored by a process: {why}",
                remedy(c, cause),
                _paths(entries),
            )
        ]

    return steps


def _pins(c: _Ctx, cause: str) -> str:
    return install_command(c.saved, c.fingerprint)


def _python(c: _Ctx, cause: str) -> str:
    return f"uv venv --python {c.saved.python.version}, then in it: {install_command(c.saved, c.fingerprint)}"


# Cause id (diff topic) -> the steps that test it. Topics not listed (identity, context) are not
# environment settings. Order of the report's diff (most decisive first) is the order of the runs.
# fmt: off
RESTORERS: dict[str, Callable[[_Ctx, list[DiffEntry]], list[Step]]] = {
    "dtype_policy": _dtype_policy,
    "onednn": _onednn,
    "determinism_settings": _determinism,
    "device": _device,
    "threads": _threads,
    "seed": _seed,
    "environment": _environment,
    "tensorflow_version": _cannot("another TensorFlow is installed here; a process cannot swap it", _pins),
    "keras_version": _cannot("another Keras is installed here; a process cannot swap it", _pins),
    "numpy_version": _cannot("another NumPy is installed here; a process cannot swap it", _pins),
    "other_package": _cannot("other package versions are installed here", _pins),
    "python_version": _cannot("this host runs another Python", _python),
    "cuda_stack": _cannot("the CUDA stack is part of the host", lambda c, cause: c.remedies.get(cause)),
    "cpu_isa": _cannot("the CPU is part of the host", lambda c, cause: c.remedies.get(cause)),
}
# fmt: on


def plan(saved: Fingerprint, report: Report, fingerprint: str = "FINGERPRINT") -> list[Step]:
    """What to try for each numerics-relevant difference in ``report.environment``, in the diff's order."""
    by_cause: dict[str, list[DiffEntry]] = {}
    for e in report.environment.entries:
        # A seed moves inference only through random layers (diff.py marks it not numerics-relevant).
        relevant = e.numerics or (e.topic == "seed" and bool(saved.model and saved.model.stochastic_layers))
        if relevant and e.topic in RESTORERS:
            by_cause.setdefault(e.topic, []).append(e)
    ctx = _Ctx(
        saved,
        fingerprint,
        {x.cause: x.remedy for x in report.explanations},
        _current_gpus(saved, report.environment.entries),
    )
    return [step for cause, entries in by_cause.items() for step in RESTORERS[cause](ctx, entries)]


def _remedy(r: Restore) -> str:
    env = {k: v for k, v in r.env.items() if v is not None}
    parts = [f"export {_label(env)} before TensorFlow is imported"] if env else []
    parts += [f"unset {k}" for k, v in sorted(r.env.items()) if v is None]
    calls = {
        "op_determinism": lambda v: "tf.config.experimental.enable_op_determinism()",
        "tensor_float_32": lambda v: f"tf.config.experimental.enable_tensor_float_32_execution({v})",
        "jit": lambda v: f"tf.config.optimizer.set_jit({v or False!r})",
        "grappler": lambda v: f"tf.config.optimizer.set_experimental_options({v!r})",
        "dtype_policy": lambda v: f"keras.mixed_precision.set_global_policy({v!r})",
        "seed": lambda v: f"envprint.seed_everything({v})",
    }
    made = [calls[k](v) for k, v in r.runtime.items() if k in calls]
    if made:
        parts.append("call " + " and ".join(made) + " before loading the model")
    return "; ".join(parts)


# --------------------------------------------------------------------------- numbers and verdicts


@dataclass(frozen=True)
class _Numbers:
    size: int
    n_differ: int
    n_oot: int
    max_abs: float | None
    max_ulp: int | None

    @classmethod
    def of(cls, outputs: list[OutputComparison]) -> _Numbers:
        broken = sum(1 for o in outputs if o.problem)  # a missing or reshaped output: never close
        top = lambda xs: max((x for x in xs if x is not None), default=None)  # noqa: E731
        return cls(
            sum(o.size for o in outputs) + broken,
            sum(o.n_differ for o in outputs) + broken,
            sum(o.n_out_of_tolerance for o in outputs) + broken,
            top(o.max_abs for o in outputs),
            top(o.max_ulp for o in outputs),
        )

    def __str__(self) -> str:
        if self.n_differ == 0:
            return f"bit-identical ({self.size} elements)"
        ulp = f", max {self.max_ulp} ULP" if self.max_ulp is not None else ""
        return f"{self.n_differ} / {self.size} differ, {self.n_oot} out of tolerance{ulp}"


PARTIAL = 4  # "much closer": max ULP or differing elements at least this many times fewer than the control's


def _judge(what: str, r: _Numbers, c: _Numbers, same_as_control: bool) -> tuple[InvestigationStatus, str]:
    if r.n_differ == 0:
        return "confirmed", f"{what} reproduces the reference bit for bit (control: {c})"
    if c.n_oot > 0 and r.n_oot == 0:
        return "confirmed", f"{what} brings every element within tolerance: {r} (control: {c})"
    if same_as_control:
        return "ruled_out", f"{what} changes nothing: outputs bit-identical to the control run ({c})"
    ulp_drop = c.max_ulp is not None and r.max_ulp is not None and r.max_ulp * PARTIAL <= c.max_ulp
    if (ulp_drop or r.n_differ * PARTIAL <= c.n_differ) and r.n_oot <= c.n_oot:
        return "confirmed", f"{what} accounts for part of the drift: {r} (control: {c})"
    return "ruled_out", f"{what} changes the outputs but not toward the reference: {r} (control: {c})"


def _result(
    step: Step,
    status: InvestigationStatus,
    detail: str,
    numbers: _Numbers | None = None,
    seconds: float | None = None,
    remedy: str | None = None,
) -> InvestigationResult:
    n = numbers
    return InvestigationResult(
        cause=step.cause,
        setting=step.setting,
        status=status,
        detail=detail,
        remedy=remedy,
        fields=list(step.fields),
        n_differ=n and n.n_differ,
        n_out_of_tolerance=n and n.n_oot,
        max_abs=n and n.max_abs,
        max_ulp=n and n.max_ulp,
        seconds=None if seconds is None else round(seconds, 2),
    )


# --------------------------------------------------------------------------- child processes

# The child imports the envprint that the parent runs, even from a source checkout.
_BOOT = (
    "import sys; d = sys.argv[2]; d in sys.path or sys.path.insert(0, d); "
    "from envprint.investigate import _child_main; sys.exit(_child_main(sys.argv[1]))"
)


@dataclass
class _Outcome:
    arrays: dict[str, dict[str, Any]] | None  # run name -> outputs; None when the child failed
    facts: dict[str, Any]
    seconds: float
    failure: str | None = None


def _kill(proc: subprocess.Popen) -> None:
    if hasattr(os, "killpg"):
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own group (start_new_session), nothing else
    else:  # pragma: no cover - Windows
        proc.kill()
    proc.communicate()


class _Runner:
    def __init__(self, workdir: Path, base: dict[str, Any], timeout_s: float) -> None:
        self.workdir, self.base, self.timeout_s, self.count = workdir, base, timeout_s, 0

    def run(self, r: Restore, runs: dict[str, int | None]) -> _Outcome:
        from .probes import load_arrays

        self.count += 1
        out = self.workdir / f"run{self.count}"
        out.mkdir()
        spec = {**self.base, "runtime": r.runtime, "runs": runs, "out_dir": str(out), "facts": str(out / "facts.json")}
        (out / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter; not a numerics setting
        for k, v in r.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        argv = [sys.executable, "-c", _BOOT, str(out / "spec.json"), str(Path(__file__).resolve().parent.parent)]
        start = time.monotonic()
        # Own session: on a timeout the whole group goes, whatever TensorFlow started.
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=hasattr(os, "killpg")
        )
        try:
            _, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _Outcome(None, {}, time.monotonic() - start, f"timed out after {self.timeout_s:g} s")
        except BaseException:  # Ctrl-C: leave no TensorFlow child behind
            _kill(proc)
            raise
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else "no message"
            return _Outcome(None, {}, seconds, f"the child process failed (exit {proc.returncode}): {last}")
        facts = json.loads((out / "facts.json").read_text(encoding="utf-8"))
        return _Outcome({name: load_arrays(out / f"{name}.npz") for name in runs}, facts, seconds)


def _child_main(spec_path: str) -> int:
    """Entry point of a child: apply the runtime settings, load, predict, write outputs and facts."""
    try:
        _child_run(json.loads(Path(spec_path).read_text(encoding="utf-8")))
    except EnvprintError as exc:
        sys.stderr.write(f"envprint: error: {exc}\n")
        return int(exc.exit_code)
    return 0


def _child_run(spec: dict[str, Any]) -> None:
    from . import _tf
    from ._tf import loading, runtime
    from .capturer import seed_everything
    from .probes import load_arrays, save_arrays

    tf = _tf.import_tensorflow()
    rt = spec["runtime"]
    # Thread pools are created by the first op: set them first.
    if "intra" in rt:
        tf.config.threading.set_intra_op_parallelism_threads(rt["intra"])
    if "inter" in rt:
        tf.config.threading.set_inter_op_parallelism_threads(rt["inter"])
    if rt.get("op_determinism"):
        tf.config.experimental.enable_op_determinism()
    if "tensor_float_32" in rt:
        tf.config.experimental.enable_tensor_float_32_execution(bool(rt["tensor_float_32"]))
    if "jit" in rt:
        tf.config.optimizer.set_jit(rt["jit"] or False)
    if "grappler" in rt:
        tf.config.optimizer.set_experimental_options(rt["grappler"])
    if "dtype_policy" in rt:
        keras = _tf.import_keras()
        if _tf.keras_flavor(tf) == "keras3":
            keras.config.set_dtype_policy(rt["dtype_policy"])
        else:
            keras.mixed_precision.set_global_policy(rt["dtype_policy"])
    if "seed" in rt:
        seed_everything(rt["seed"])
    loaded = loading.load_model(
        spec["model"],
        fmt=spec["format"],
        signature=spec["signature"],
        custom_objects=loading.parse_custom_objects(spec["custom_objects"]),
        safe_mode=spec["safe_mode"],
    )
    probes = load_arrays(spec["probes"])
    for name, batch_size in spec["runs"].items():
        save_arrays(Path(spec["out_dir"]) / f"{name}.npz", loaded.predict(probes, batch_size=batch_size))
    info = runtime.tensorflow_info(tf, {})
    intra, inter = runtime.thread_settings(tf)
    facts = {
        "onednn": info.onednn.enabled,
        "op_determinism": info.op_determinism,
        "tensor_float_32": info.tensor_float_32,
        "jit": info.jit,
        "dtype_policy": info.dtype_policy,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "intra": intra,
        "inter": inter,
    }
    Path(spec["facts"]).write_text(json.dumps(facts), encoding="utf-8")


# --------------------------------------------------------------------------- investigate


def _blocker(report: Report) -> str | None:
    """Why restoring settings cannot explain this report, if it cannot."""
    if report.identity.weights == "changed":
        return "the weights are not the saved model's: no setting can reproduce the reference"
    if report.identity.sidecar_files_changed:
        return "the probes or reference were edited after save: fix the record first"
    if any(x.cause == "stochastic_inference" and x.score >= 0.97 for x in report.explanations):
        return "outputs vary between identical calls on this host: fix the randomness first, then investigate"
    return None


CONTROL = Restore("control", "nothing changed (a fresh process)")
BATCH = Restore("batch_size", "one probe per call (batch size 1), which matched the full batch at save")




def _merge(steps: list[Restore]) -> Restore:
    env: dict[str, str | None] = {}
    runtime: dict[str, Any] = {}
    expect: dict[str, Any] = {}
    for s in steps:
        env, runtime, expect = env | s.env, runtime | s.runtime, expect | s.expect
    setting = "; ".join(s.setting for s in steps)
    return Restore("all_settings", setting, env, runtime, expect, tuple(p for s in steps for p in s.fields))


@dataclass
class _Session:
    """The runs of one investigation: each judged against the reference, relative to the control."""

    runner: _Runner
    reference: dict[str, Any]
    policy: Tolerance
    say: Callable[[str], None]
    total: int
    control: _Numbers | None = None
    control_arrays: dict[str, Any] = field(default_factory=dict)

    def numbers(self, arrays: dict[str, Any]) -> _Numbers:
        return _Numbers.of(compare.compare_outputs(self.reference, arrays, self.policy))

    def judge(self, step: Restore, what: str, arrays: dict[str, Any], seconds: float | None) -> InvestigationResult:
        n = self.numbers(arrays)
        status, why = _judge(what, n, self.control, compare.bit_identical(arrays, self.control_arrays))
        if step is BATCH and status == "confirmed":
            why += ": the difference lies in the kernels this host picks for the full batch"
            fix = "predict one probe per call for reference-exact outputs, or accept the drift (verify --rtol)"
        else:
            fix = _remedy(step) if status == "confirmed" else None
        return _result(step, status, why, n, seconds, fix)

    def attempt(self, r: Restore, index: int) -> InvestigationResult:
        self.say(f"investigating {index}/{self.total}: {r.setting}")
        got = self.runner.run(r, {"full": None})
        if got.arrays is None:
            return _result(r, "untestable", got.failure or "failed", seconds=got.seconds)
        ignored = [
            f"{k} is {got.facts.get(k)!r}, not the saved {v!r}" for k, v in r.expect.items() if got.facts.get(k) != v
        ]
        if ignored:
            why = f"could not be restored on this host: after {r.setting}, {', '.join(ignored)}"
            return _result(r, "untestable", why, seconds=got.seconds)
        return self.judge(r, f"restoring {r.setting}", got.arrays["full"], got.seconds)


def investigate(
    model_path: str | Path,
    fingerprint_path: str | Path | None,
    report: Report,
    *,
    timeout_s: float = 120,
    progress: Callable[[str], None] | None = None,
    fmt: str | None = None,
    signature: str | None = None,
    safe_mode: bool = True,
    custom_objects_specs: Iterable[str] = (),
    tolerance: Tolerance | None = None,
) -> list[InvestigationResult]:
    """Re-run the probes in child processes, each with one saved setting restored, and judge each.

    ``report`` is what ``verify`` returned for the same model and fingerprint (``tolerance`` the
    one it used; default: the saved one). Returns [] when the outputs were bit-identical. The
    first result is the control (a fresh process, nothing changed); when it already matches the
    reference the drift is not reproducible and nothing else runs. Then the settings that differ
    from the saved host, confirmed first, and the causes that cannot be restored here
    ('untestable', with their remedy). Raises FingerprintError when the record cannot be read.
    """
    from .probes import load_arrays

    if all(o.status == "identical" for o in report.outputs):
        return []
    fp_path = store.locate_fingerprint(model_path, fingerprint_path)
    saved = store.read_fingerprint(fp_path)
    blocked = _blocker(report)
    if blocked is None and (saved.reference_arrays is None or saved.probe_arrays is None or saved.model is None):
        blocked = f"{fp_path} records no probes"
    if blocked is not None:
        return [_result(CONTROL, "untestable", f"not investigated: {blocked}")]
    steps = plan(saved, report, str(fp_path))
    restores = [s for s in steps if isinstance(s, Restore)]
    check = saved.self_check
    batch1 = bool(check and check.batch1_max_abs and all(v == 0 for v in check.batch1_max_abs.values()))
    base = {
        "model": str(Path(model_path).resolve()),
        "format": fmt or saved.model.format,
        "signature": signature or saved.model.signature,
        "safe_mode": safe_mode,
        "custom_objects": list(custom_objects_specs),
        "probes": str(fp_path.parent / saved.probe_arrays.file),
    }
    with tempfile.TemporaryDirectory(prefix="envprint-investigate-") as tmp:
        s = _Session(
            _Runner(Path(tmp), base, timeout_s),
            load_arrays(fp_path.parent / saved.reference_arrays.file),
            tolerance or saved.tolerance or Tolerance(),
            progress or (lambda _message: None),
            total=1 + len(restores),
        )
        s.say(f"investigating 1/{s.total}: control, {CONTROL.setting}" + (", and batch size 1" if batch1 else ""))
        outcome = s.runner.run(CONTROL, {"full": None, "batch1": 1} if batch1 else {"full": None})
        if outcome.arrays is None:
            return [_result(CONTROL, "untestable", f"{outcome.failure}; nothing else was run", seconds=outcome.seconds)]
        s.control_arrays = outcome.arrays["full"]
        s.control = s.numbers(s.control_arrays)
        seen = _Numbers.of(report.outputs)
        if s.control.n_differ == 0:
            why = (
                f"a fresh process on this host matches the reference bit for bit, while verify saw {seen}: the "
                "drift did not reproduce; suspect state in the verifying process (settings changed at run time, "
                "a random layer), not the host"
            )
            return [_result(CONTROL, "not_reproduced", why, s.control, outcome.seconds)]
        why = f"a fresh process reproduces the drift: {s.control} (verify saw {seen})"
        control = _result(CONTROL, "reproduced", why, s.control, outcome.seconds)
        tried = [s.attempt(r, i) for i, r in enumerate(restores, start=2)]
        ran = [r for r, t in zip(restores, tried, strict=True) if t.status != "untestable"]
        if len(ran) > 1 and not any(t.status == "confirmed" for t in tried):
            s.total += 1  # no single setting explains it: do they together?
            tried.append(s.attempt(_merge(ran), s.total))
        if batch1:
            tried.append(s.judge(BATCH, "predicting one probe per call", outcome.arrays["batch1"], None))
    decided = [_result(d, d.status, d.detail, remedy=d.remedy) for d in steps if isinstance(d, Decided)]
    rank = {"confirmed": 0, "ruled_out": 1, "untestable": 2}
    return [control] + sorted(tried + decided, key=lambda x: rank.get(x.status, 3))
