"""What a cause family module is made of, and the contexts its functions read.

Owns: the ``Cause`` entry (data: title, paths, fit, remedy template, preflight ``Rule`` s, restorer
or ``Cannot``), the ``Family`` a module exports (its causes and the functions its entries name:
remedy values, preflight conditions, restorers, the process calls it words), the two contexts
those functions read (``Scoring`` for a remedy or a condition, ``Planning`` for a restorer), the
``Restore`` and ``Decided`` steps, and the helpers every family shares (how a value and a
missing value read, how far a version moved, an environment variable's restore words).

Pure: must not import TensorFlow, Keras or NumPy, nor any cause family, scoring or restore.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from packaging.version import InvalidVersion, Version

from envprint.models import DiffEntry, EndpointFacts, Fingerprint, IdentityCheck, InvestigationStatus, OutputComparison

# Observed signatures a fit row scores, in this column order.
FIT_KINDS = ("reduction_order", "precision", "semantic", "dtype", "stochastic")


@dataclass(frozen=True)
class Rule:
    """A preflight prediction: for a difference on ``paths`` when ``when`` holds, ``text`` with this score."""

    paths: str  # fnmatch pattern, alternatives with '|'
    when: str  # a condition of the cause's family (Family.when), or a shared one (registry.WHEN)
    score: float  # how likely the outputs change (x the version grade when ``graded``)
    text: str  # {a} {b} {path} {change} {moved} {a_onoff} {b_onoff} {format}
    graded: bool = False
    # What the change would be: 'noise' (ULP-level, within the default tolerance: never fails
    # preflight), 'precision' (beyond tolerance, top-1 mostly agrees), 'semantic' (changed results
    # or a load failure). Only a change beyond tolerance fails verify --preflight.
    predicts: str = "noise"


@dataclass(frozen=True)
class Cannot:
    """No process can restore this cause here: why, and the remedy to give instead."""

    why: str
    remedy: str  # 'pins' (env-export + pip), 'python' (another interpreter), 'explanation' (the explained remedy)


@dataclass(frozen=True)
class Cause:
    title: str
    signature: str  # what it typically does: semantic, reduction_order, precision, stochastic or identity
    fit: tuple[float, ...] | str  # per FIT_KINDS; a str says why the diff does not score it
    remedy: tuple[str, ...]  # parts joined by '; ', {names} filled from the values, empty parts dropped
    preflight: tuple[Rule, ...] | str  # first match per entry; a str says why it predicts nothing
    restorer: str | Cannot  # a restorer of its family, a Cannot, or why it is not restored at all
    paths: tuple[str, ...] = ()  # fingerprint paths (fnmatch) whose differences are this cause
    # Paths that hold the cause's effective state: known and equal on both sides, the cause's other
    # differences (a variable, a library) changed nothing here and are listed only.
    effective: tuple[str, ...] = ()
    # Paths that only ask for the effective state (a variable, a default): when the effective state
    # is recorded on both sides, it alone is counted; these are listed only.
    follows: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()  # paths that are this cause's differences but cannot change numerics
    graded: bool = False  # a version: fit is scaled by the grade of the change (major, minor, patch)
    decisive: str | None = None  # the path that grades a version when both sides have it
    path_fit: tuple[tuple[str, tuple[float, ...]], ...] = ()  # fit overrides for some paths


@dataclass(frozen=True)
class Call:
    """A process setting envprint can put back, in words: the path recording it and the call that sets it.

    ``envprint._tf.settings`` makes the same call on a ``tf`` (keyed alike); this is what a remedy says.
    """

    path: str  # the fingerprint path (fnmatch pattern) that records the setting
    words: Callable[[Any], str]  # the call that sets ``value``, for a remedy
    in_remedy: bool = True  # False: the remedy names an environment variable instead


NOT_FROM_DIFF = "identity evidence (the identity rules of its family), not a fingerprint difference"
NOT_A_SETTING = "not a setting of the host: nothing to restore"


# --------------------------------------------------------------------------- contexts


@dataclass(frozen=True)
class Scoring:
    """What a remedy value or a preflight condition reads: the saved record and what differs from it."""

    saved: Fingerprint
    identity: IdentityCheck
    current: Fingerprint | None = None
    stochastic_now: bool = False
    observed: str = "identical"
    changed: tuple[DiffEntry, ...] = ()  # every difference from the saved host, to read this host's values
    record: str | None = None  # the saved record as the diff names it, for a remedy to quote
    endpoint: EndpointFacts | None = None  # verify --endpoint: what the server said and how it encoded
    outputs: tuple[OutputComparison, ...] = ()  # each output's comparison, for evidence read from numbers

    def now(self, path: str, saved: object) -> object:
        """This host's value at ``path``: the diff's when it differs, else the saved one."""
        return next((e.b for e in self.changed if e.path == path), saved)


@dataclass(frozen=True)
class Planning:
    """What a restorer reads: the saved record, how to name it, the explained remedies, this host's GPUs."""

    saved: Fingerprint
    fingerprint: str  # as the user should type it in a remedy
    remedies: dict[str, str]  # cause -> remedy from the report's explanations
    current_gpus: frozenset[str]


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

Value = Callable[[Scoring, list[DiffEntry]], str]
Condition = Callable[[Scoring, DiffEntry], bool]
Restorer = Callable[[Planning, list[DiffEntry]], list[Step]]


@dataclass(frozen=True)
class Family:
    """One cause family module: its causes and the functions their entries name, nowhere else."""

    causes: dict[str, Cause]
    values: dict[str, Value] = field(default_factory=dict)  # remedy template {name} -> value
    when: dict[str, Condition] = field(default_factory=dict)  # preflight condition -> test
    restorers: dict[str, Restorer] = field(default_factory=dict)  # Cause.restorer -> steps
    calls: dict[str, Call] = field(default_factory=dict)  # runtime key -> the call, in words
    # Cannot.remedy -> what a cause no process can restore offers instead.
    instead: dict[str, Callable[[Planning, str], str | None]] = field(default_factory=dict)
    # Identity and randomness evidence, not differences: (cause, score, applies, reasoning).
    identity_rules: tuple[tuple[str, float, Callable[[Scoring], bool], str], ...] = ()
    facts: tuple[str, ...] = ()  # facts its restore steps expect a child to report (envprint._tf.child)


# --------------------------------------------------------------------------- shared helpers


def absent(path: str) -> str:
    """How a missing value reads, everywhere: an environment variable (or the value of one, as
    ``tensorflow.onednn.env`` holds TF_ENABLE_ONEDNN_OPTS) is '(unset)', any other fact '(absent)'."""
    variable = path.startswith(("env.variables.", "threads.variables.")) or path == "tensorflow.onednn.env"
    return "(unset)" if variable else "(absent)"


def fmt(v: object, path: str = "") -> str:
    return absent(path) if v is None else ", ".join(v) if isinstance(v, list) else str(v)


def moved_to(e: DiffEntry) -> str:
    """'a -> b'; for two lists (CPU flags) only what was gained and lost."""
    if isinstance(e.a, list) and isinstance(e.b, list):
        return ", ".join([f"+{x}" for x in e.b if x not in e.a] + [f"-{x}" for x in e.a if x not in e.b])
    return f"{fmt(e.a, e.path)} -> {fmt(e.b, e.path)}"


def matches(path: str, patterns: str | Iterable[str]) -> bool:
    """fnmatch with alternatives: 'a.b|*X*', or any of several patterns."""
    alternatives = patterns.split("|") if isinstance(patterns, str) else patterns
    return any(fnmatchcase(path, p) for p in alternatives)


GRADE = {"major": 1.0, "minor": 0.7, "patch": 0.4, "other": 0.3}


def change(a: object, b: object) -> str:
    """How far a version moved: 'major', 'minor', 'patch' or 'other' (build, pre-release, unparsable)."""
    if a is None or b is None:
        return "major"  # installed on one side only
    try:
        ra, rb = Version(str(a)).release + (0, 0), Version(str(b)).release + (0, 0)
    except InvalidVersion:
        return "other"
    for part, x, y in zip(("major", "minor", "patch"), ra, rb, strict=False):
        if x != y:
            return part
    return "other"


def major(v: object) -> int | None:
    try:
        return Version(str(v)).major
    except InvalidVersion:
        return None


def minor(version: object) -> tuple[int, int] | None:
    try:
        return Version(str(version)).release[:2] if version is not None else None  # type: ignore[return-value]
    except InvalidVersion:
        return None


def variable_words(name: str, saved: object) -> str:
    """Put an environment variable back as the saved host had it."""
    return f"unset {name}" if saved is None else f"export {name}={shlex.quote(str(saved))}"


def saved_variables(
    entries: Iterable[DiffEntry], patterns: tuple[str, ...] = ("env.variables.*", "threads.variables.*")
) -> dict[str, str | None]:
    """Saved values of the variables among ``entries``: {name: value, or None where the saved host had it unset}."""
    return {e.path.split(".", 2)[2]: e.a for e in entries if matches(e.path, patterns)}  # type: ignore[misc]


def span(entries: list[DiffEntry]) -> str:
    e = entries[0]
    more = f" (+{len(entries) - 1} more)" if len(entries) > 1 else ""
    a, b = (v if v is not None else absent(e.path) for v in (e.a, e.b))
    return f"{e.path}: {a} -> {b}{more}"


def field_paths(entries: Iterable[DiffEntry]) -> tuple[str, ...]:
    return tuple(e.path for e in entries)


def label(env: Mapping[str, str | None], extra: str = "") -> str:
    parts = [f"{k}={v}" if v is not None else f"unset {k}" for k, v in sorted(env.items())]
    return " ".join(parts + ([extra] if extra else [])) or extra


def untestable(c: Planning, entries: list[DiffEntry], why: str) -> list[Step]:
    cause = entries[0].topic
    return [Decided(cause, span(entries), "untestable", why, c.remedies.get(cause), field_paths(entries))]
