"""Restore: from a cause's differences to the steps that put the saved setting back in a child process.

Owns: ``plan`` (from a verify report's numerics-relevant differences to the steps that test
them), the ``Restore`` and ``Decided`` steps, ``BUILDERS`` (the restorer named by each cause's
registry entry, ``causes.REGISTRY[cause].restorer`` -> the function that builds its steps; a
``causes.Cannot`` becomes an 'untestable' step with ``INSTEAD``'s remedy), ``DETERMINISM`` (the
sub-settings of 'determinism_settings') and ``remedy_for`` (what to do once a setting is
confirmed). A ``Restore`` carries environment variables, set before TensorFlow starts, and
runtime settings, applied before the model loads (by ``envprint._tf.child``).

Pure: fingerprints and reports in, steps out. Must not import TensorFlow (nor anything that
does), nor ``investigate``, which runs and judges these steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from envprint._tf.settings import SETTINGS
from envprint.causes.registry import REGISTRY, Cannot, absent
from envprint.host.constraints import install_command
from envprint.models import DiffEntry, Fingerprint, InvestigationStatus, Report


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
    return (
        f"{e.path}: {e.a if e.a is not None else absent(e.path)} -> {e.b if e.b is not None else absent(e.path)}{more}"
    )


def _paths(entries: Iterable[DiffEntry]) -> tuple[str, ...]:
    return tuple(e.path for e in entries)


def _label(env: Mapping[str, str | None], extra: str = "") -> str:
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
    env: dict[str, str | None] = {"TF_ENABLE_ONEDNN_OPTS": "1" if want else "0"}
    return [Restore("onednn", _label(env), env, expect={"onednn": want}, fields=_paths(entries))]


def _threads(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    env: dict[str, str | None] = dict(_variables(entries))
    runtime = {}
    # Only the counts that differ: a count this host already has is not a setting to restore.
    for key, var in (("intra", "TF_NUM_INTRAOP_THREADS"), ("inter", "TF_NUM_INTEROP_THREADS")):
        value = next((e.a for e in entries if e.path == SETTINGS[key].path), None)
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
        env: dict[str, str | None] = {"CUDA_VISIBLE_DEVICES": "-1"}
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


def _environment(c: _Ctx, entries: list[DiffEntry]) -> list[Step]:
    env = _variables(entries, ("env.variables.*",))
    if not env:
        return _untestable(c, entries, "no saved variable value to restore")
    return [Restore("environment", _label(env), env, fields=_paths(entries))]


def _pins(c: _Ctx, cause: str) -> str:
    return install_command(c.saved, c.fingerprint)


def _python(c: _Ctx, cause: str) -> str:
    return f"uv venv --python {c.saved.python.version}, then in it: {install_command(c.saved, c.fingerprint)}"


# What a cause that no process can restore offers instead (causes.Cannot.remedy).
INSTEAD: dict[str, Callable[[_Ctx, str], str | None]] = {
    "pins": _pins,
    "python": _python,
    "explanation": lambda c, cause: c.remedies.get(cause),
}


def _cannot(c: _Ctx, entries: list[DiffEntry], cannot: Cannot) -> list[Step]:
    cause = entries[0].topic
    why = f"cannot be restored by a process: {cannot.why}"
    return [Decided(cause, _span(entries), "untestable", why, INSTEAD[cannot.remedy](c, cause), _paths(entries))]


# A cause's restorer (causes.REGISTRY[cause].restorer) -> the function that builds its steps.
# fmt: off
BUILDERS: dict[str, Callable[[_Ctx, list[DiffEntry]], list[Step]]] = {
    "dtype_policy": _dtype_policy,
    "onednn": _onednn,
    "determinism": _determinism,
    "device": _device,
    "threads": _threads,
    "environment": _environment,
}
# fmt: on


def _steps(c: _Ctx, cause: str, entries: list[DiffEntry]) -> list[Step]:
    restorer = REGISTRY[cause].restorer
    return _cannot(c, entries, restorer) if isinstance(restorer, Cannot) else BUILDERS[restorer](c, entries)


def _restorable(cause: str) -> bool:
    """A cause with steps to build: a builder, or a reason no process can restore it (not 'not a setting')."""
    restorer = REGISTRY[cause].restorer if cause in REGISTRY else None
    return isinstance(restorer, Cannot) or restorer in BUILDERS


def plan(saved: Fingerprint, report: Report, fingerprint: str = "FINGERPRINT") -> list[Step]:
    """What to try for each numerics-relevant difference in ``report.environment``, in the diff's order."""
    by_cause: dict[str, list[DiffEntry]] = {}
    for e in report.environment.entries:
        if e.numerics and _restorable(e.topic):
            by_cause.setdefault(e.topic, []).append(e)
    ctx = _Ctx(
        saved,
        fingerprint,
        {x.cause: x.remedy for x in report.explanations},
        _current_gpus(saved, report.environment.entries),
    )
    return [step for cause, entries in by_cause.items() for step in _steps(ctx, cause, entries)]


def remedy_for(r: Restore) -> str:
    env = {k: v for k, v in r.env.items() if v is not None}
    parts = [f"export {_label(env)} before TensorFlow is imported"] if env else []
    parts += [f"unset {k}" for k, v in sorted(r.env.items()) if v is None]
    made = [SETTINGS[k].words(v) for k, v in r.runtime.items() if k in SETTINGS and SETTINGS[k].in_remedy]
    if made:
        parts.append("call " + " and ".join(made) + " before loading the model")
    return "; ".join(parts)
