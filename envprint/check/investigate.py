"""investigate(): test each suspected cause of a verify mismatch by restoring it in a fresh process.

Owns: running one child per setting under a timeout, and judging each child's outputs against
the saved reference relative to a *control* child that changes nothing. explain.py ranks causes
from what differs; this module measures them.

Why child processes: oneDNN, thread pools and device visibility are fixed when TensorFlow
starts, and determinism, TF32 and dtype policy are process-global: only a fresh interpreter
can try one setting without the others, and without disturbing the caller's process.

The parent never imports TensorFlow. The child (``envprint._tf.child._child_main``, run through
``python -c``) reaches it through ``envprint._tf`` only. Each child writes its outputs to a
temporary ``.npz`` and the facts it ended up with (oneDNN on?, GPUs visible?) to JSON, so a
setting that TensorFlow ignored on this host is reported as untestable, never as ruled out.

Elsewhere: what to try for each cause (the restore catalogue: ``plan``, ``Restore``,
``Decided``, the remedies) is in ``restore``; the child's side is in ``envprint._tf.child``,
reached only through the ``_BOOT`` string, never imported here. Neither imports this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envprint.causes.restore import Decided, Restore, Step, plan, remedy_for
from envprint.check import compare
from envprint.check.record_read import recorded_model
from envprint.models import (
    Fingerprint,
    InvestigationResult,
    InvestigationStatus,
    ModelIdentity,
    OutputComparison,
    Report,
    Tolerance,
)

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
        from envprint.render.words import counts_words

        return counts_words(self.size, self.n_differ, self.n_oot, self.max_ulp)


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


# How one restored child run is judged against the control run: a documented seam for tests and
# tools (the judging is pure; reaching it through investigate() takes child processes).
Numbers = _Numbers


def judge(what: str, restored: Numbers, control: Numbers, same_as_control: bool) -> tuple[InvestigationStatus, str]:
    """(status, why) of a run with ``what`` restored, against the control run; a seam for tests and tools."""
    return _judge(what, restored, control, same_as_control)


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
    "from envprint._tf.child import _child_main; sys.exit(_child_main(sys.argv[1]))"
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
        from envprint.record.npz import load_arrays

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
        argv = [sys.executable, "-c", _BOOT, str(out / "spec.json"), str(Path(__file__).resolve().parents[2])]
        start = time.monotonic()
        # Own session: on a timeout the whole group goes, whatever TensorFlow started.
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=hasattr(os, "killpg")
        )
        try:
            _, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _Outcome(
                None,
                {},
                time.monotonic() - start,
                f"timed out after {self.timeout_s:g} s (raise --investigate-timeout)",
            )
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


# One child per run, as investigate and ``check.variants`` (save --variants) start them.
Runner = _Runner
Outcome = _Outcome


# --------------------------------------------------------------------------- investigate


def _blocker(report: Report, model_path: str | Path | None) -> str | None:
    """Why restoring settings cannot explain this report, if it cannot (or the children cannot load the model)."""
    if report.identity.weights == "changed":
        return "the weights are not the saved model's: no setting can reproduce the reference"
    if report.identity.sidecar_files_changed:
        return "the probes or reference were edited after save: fix the record first"
    if any(x.cause == "stochastic_inference" and x.score >= 0.97 for x in report.explanations):
        return "outputs vary between identical calls on this host: fix the randomness first, then investigate"
    if model_path is None:
        return "the model was given in memory; the child processes load it from its file: pass its path"
    return None


def _child_base(
    model_path: str | Path,
    recorded: ModelIdentity,
    fmt: str | None,
    signature: str | None,
    safe_mode: bool,
    custom: list[str],
) -> dict[str, Any]:
    """What every child is told about the model: where it is and how to load it (as verify loaded it)."""
    return {
        "model": str(Path(model_path).resolve()),
        "format": fmt or recorded.format,
        "signature": signature or recorded.signature,
        "safe_mode": safe_mode,
        "custom_objects": custom,
    }


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
        if self.control is None:
            raise RuntimeError("investigate: a run was judged before the control ran")
        n = self.numbers(arrays)
        status, why = _judge(what, n, self.control, compare.bit_identical(arrays, self.control_arrays))
        fix: str | None
        if step is BATCH and status == "confirmed":
            why += ": the difference lies in the kernels this host picks for the full batch"
            fix = "predict one probe per call for reference-exact outputs, or accept the drift (verify --rtol)"
        else:
            fix = remedy_for(step) if status == "confirmed" else None
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

    def run_all(self, restores: list[Restore], batch1: bool, seen: _Numbers) -> list[InvestigationResult]:
        """The control, then each restore (all of them together when none alone explains the drift),
        then batch size 1; only the control's result when it failed or did not reproduce the drift."""
        from envprint.render.words import control_words

        self.say(f"investigating 1/{self.total}: control, {CONTROL.setting}" + (", and batch size 1" if batch1 else ""))
        outcome = self.runner.run(CONTROL, {"full": None, "batch1": 1} if batch1 else {"full": None})
        if outcome.arrays is None:
            return [_result(CONTROL, "untestable", f"{outcome.failure}; nothing else was run", seconds=outcome.seconds)]
        self.control_arrays = outcome.arrays["full"]
        self.control = self.numbers(self.control_arrays)
        if self.control.n_differ == 0:
            why = control_words(False, str(self.control), str(seen))
            return [_result(CONTROL, "not_reproduced", why, self.control, outcome.seconds)]
        control = _result(
            CONTROL, "reproduced", control_words(True, str(self.control), str(seen)), self.control, outcome.seconds
        )
        tried = [self.attempt(r, i) for i, r in enumerate(restores, start=2)]
        ran = [r for r, t in zip(restores, tried, strict=True) if t.status != "untestable"]
        if len(ran) > 1 and not any(t.status == "confirmed" for t in tried):
            self.total += 1  # no single setting explains it: do they together?
            tried.append(self.attempt(_merge(ran), self.total))
        if batch1:
            tried.append(self.judge(BATCH, "predicting one probe per call", outcome.arrays["batch1"], None))
        return [control, *tried]


def investigate(
    model_path: str | Path | None,
    report: Report,
    *,
    saved: Fingerprint,
    fp_path: Path,
    probes: Mapping[str, Any],
    reference: Mapping[str, Any],
    timeout_s: float = 120,
    progress: Callable[[str], None] | None = None,
    fmt: str | None = None,
    signature: str | None = None,
    safe_mode: bool = True,
    custom_objects_specs: Iterable[str] = (),
    tolerance: Tolerance | None = None,
) -> list[InvestigationResult]:
    """Re-run the probes in child processes, each with one saved setting restored, and judge each.

    ``report`` is what ``verify`` returned for the model at ``model_path``; ``saved``, ``probes``
    and ``reference`` the record it read from ``fp_path`` and checked (signature, digests, shapes):
    the children predict exactly these probes. ``tolerance`` is the one verify used (default: the
    saved one); ``envprint.verify(..., investigate=True)`` is the public way in. Returns [] when the outputs were bit-identical. The
    first result is the control (a fresh process, nothing changed); when it already matches the
    reference the drift is not reproducible and nothing else runs. Then the settings that differ
    from the saved host, confirmed first, and the causes that cannot be restored here
    ('untestable', with their remedy).
    """
    from envprint.record.npz import save_arrays

    if all(o.status == "identical" for o in report.outputs):
        return []
    blocked = _blocker(report, model_path)
    if blocked is not None or model_path is None:  # _blocker says why when the model has no path
        return [_result(CONTROL, "untestable", f"not investigated: {blocked}")]
    steps = plan(saved, report, str(fp_path))
    restores = [s for s in steps if isinstance(s, Restore)]
    check = saved.self_check
    batch1 = bool(check and check.batch1_max_abs and all(v == 0 for v in check.batch1_max_abs.values()))
    recorded = recorded_model(saved, Path(fp_path))
    base = _child_base(model_path, recorded, fmt, signature, safe_mode, list(custom_objects_specs))
    with tempfile.TemporaryDirectory(prefix="envprint-investigate-") as tmp:
        base["probes"] = str(Path(tmp) / "probes.npz")  # the arrays verify checked, not the file again
        save_arrays(Path(base["probes"]), dict(probes))
        s = _Session(
            _Runner(Path(tmp), base, timeout_s),
            dict(reference),
            tolerance or saved.tolerance or Tolerance(),
            progress or (lambda _message: None),
            total=1 + len(restores),
        )
        control, *tried = s.run_all(restores, batch1, _Numbers.of(report.outputs))
    if control.status != "reproduced":  # the control failed, or the drift is not reproducible: nothing else ran
        return [control]
    decided = [_result(d, d.status, d.detail, remedy=d.remedy) for d in steps if isinstance(d, Decided)]
    rank = {"confirmed": 0, "ruled_out": 1, "untestable": 2}
    return [control] + sorted(tried + decided, key=lambda x: rank.get(x.status, 3))
