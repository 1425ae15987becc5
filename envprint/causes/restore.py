"""Restore: from a cause's differences to the steps that put the saved setting back in a child process.

Owns: ``plan`` (from a verify report's numerics-relevant differences to the steps that test
them) and ``remedy_for`` (what to do once a setting is confirmed). Each cause's own steps are
built by the restorer its family module names (``causes.REGISTRY[cause].restorer``, gathered in
``registry.BUILDERS``); a ``causes.Cannot`` becomes an 'untestable' step with
``registry.INSTEAD``'s remedy. A ``Restore`` carries environment variables, set before
TensorFlow starts, and runtime settings, applied before the model loads (by ``envprint._tf.child``).

Pure: fingerprints and reports in, steps out. Must not import TensorFlow (nor anything that
does), nor ``investigate``, which runs and judges these steps.
"""

from __future__ import annotations

from envprint.causes.base import Cannot, Decided, Planning, Restore, Step, field_paths, label, span
from envprint.causes.gpu import current_gpus
from envprint.causes.registry import BUILDERS, CALLS, INSTEAD, REGISTRY
from envprint.models import DiffEntry, Fingerprint, Report

__all__ = ["BUILDERS", "INSTEAD", "Decided", "Restore", "Step", "plan", "remedy_for"]


def _cannot(c: Planning, entries: list[DiffEntry], cannot: Cannot) -> list[Step]:
    cause = entries[0].topic
    why = f"cannot be restored by a process: {cannot.why}"
    return [Decided(cause, span(entries), "untestable", why, INSTEAD[cannot.remedy](c, cause), field_paths(entries))]


def _steps(c: Planning, cause: str, entries: list[DiffEntry]) -> list[Step]:
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
    ctx = Planning(
        saved,
        fingerprint,
        {x.cause: x.remedy for x in report.explanations},
        current_gpus(saved, report.environment.entries),
    )
    return [step for cause, entries in by_cause.items() for step in _steps(ctx, cause, entries)]


def remedy_for(r: Restore) -> str:
    env = {k: v for k, v in r.env.items() if v is not None}
    first = "Keras" if any(k.startswith("KERAS_") for k in env) else "TensorFlow"  # what reads the variable
    parts = [f"export {label(env)} before {first} is imported"] if env else []
    parts += [f"unset {k}" for k, v in sorted(r.env.items()) if v is None]
    made = [CALLS[k].words(v) for k, v in r.runtime.items() if k in CALLS and CALLS[k].in_remedy]
    if made:
        parts.append("call " + " and ".join(made) + " before loading the model")
    return "; ".join(parts)
